package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// WebSocket defaults applied by Run.
const (
	DefaultMessage      = "kaload"
	DefaultPingInterval = 20 * time.Second
	whoAmI              = "whoami"
	// wsCloseGrace bounds our wait for the peer's close frame.
	wsCloseGrace = 2 * time.Second
	// reconnectJitter spreads reconnects after a server close even with no
	// ReconnectDelay, so a drained pod's clients do not all dial at once.
	reconnectJitter = 20 * time.Millisecond
)

// isWebSocket reports whether the URL scheme selects the WebSocket worker.
func (t target) isWebSocket() bool { return t.u != nil && (t.u.Scheme == "ws" || t.u.Scheme == "wss") }

// pacer hands out dial slots at a fixed rate in arrival order (ConnectRate).
type pacer struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

// wait blocks until the caller's slot; false when stop closed first.
func (p *pacer) wait(stop <-chan struct{}, timer *time.Timer) bool {
	if p == nil {
		return true
	}
	now := time.Now()
	p.mu.Lock()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	return sleep(stop, timer, at.Sub(now))
}

// sleep waits d unless stop closes first.
func sleep(stop <-chan struct{}, timer *time.Timer, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-stop:
		timer.Stop()
		return false
	}
}

// wsSetup prepares what every WebSocket worker of the run shares.
func (r *run) wsSetup() {
	d := &websocket.Dialer{
		NetDialContext:   r.dial,
		HandshakeTimeout: r.cfg.Timeout,
		ReadBufferSize:   2048,
		WriteBufferSize:  2048,
		// An idle socket holds no write buffer.
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: r.cfg.Compression,
	}
	if r.cfg.Idle {
		// Pings, pongs and close frames only: 125 bytes at most each.
		d.ReadBufferSize = 512
	}
	if r.cfg.Subprotocol != "" {
		d.Subprotocols = []string{r.cfg.Subprotocol}
	}
	if r.tgt.tls {
		d.TLSClientConfig = &tls.Config{ServerName: r.tgt.u.Hostname(), InsecureSkipVerify: r.cfg.Insecure, NextProtos: []string{"http/1.1"}}
	}
	r.wsDialer = d
	r.wsHeader = r.cfg.Header.Clone()
	if r.wsHeader == nil {
		r.wsHeader = http.Header{}
	}
	if r.wsHeader.Get("User-Agent") == "" {
		r.wsHeader.Set("User-Agent", "kaload")
	}
	r.wsMsg = r.cfg.Message
	if len(r.wsMsg) == 0 {
		r.wsMsg = []byte(DefaultMessage)
	}
	r.wsType = websocket.BinaryMessage
	if utf8.Valid(r.wsMsg) {
		r.wsType = websocket.TextMessage
	}
	if r.cfg.Idle {
		r.startIdlePinger()
	}
	if r.cfg.ConnectRate > 0 {
		r.pacer = &pacer{interval: time.Duration(float64(time.Second) / r.cfg.ConnectRate)}
	}
}

// wsConn is one socket slot's current socket.
type wsConn struct {
	c       *websocket.Conn
	id      uint64
	opened  time.Duration // offset from the run's start
	msgs    uint32
	backend string
}

// wsEnd is how a socket ended.
type wsEnd struct {
	reason CloseReason
	code   uint16
}

// openWS dials and upgrades, paced by ConnectRate; it names the backend from
// the handshake header, else by asking whoami, else by the peer's address.
func (r *run) openWS(cn *wsConn, st *Stats, timer *time.Timer) (status int, err error) {
	if !r.pacer.wait(r.stop, timer) {
		return 0, errStopped
	}
	return r.dialWS(cn, st)
}

// dialWS is openWS without the pacing.
func (r *run) dialWS(cn *wsConn, st *Stats) (status int, err error) {
	ctx, cancel := context.WithTimeout(r.abort, r.cfg.Timeout)
	defer cancel()
	c, resp, err := r.wsDialer.DialContext(ctx, r.cfg.URL, r.wsHeader)
	if err != nil {
		st.DialErrors++
		if resp != nil {
			resp.Body.Close()
			return resp.StatusCode, fmt.Errorf("websocket handshake with %s: HTTP %d", r.tgt.addr, resp.StatusCode)
		}
		return 0, fmt.Errorf("websocket handshake with %s: %w", r.tgt.addr, err)
	}
	st.Connections++
	*cn = wsConn{c: c, id: r.connID.Add(1), opened: time.Since(r.start)}
	cn.backend = resp.Header.Get(r.cfg.BackendHeader)
	if cn.backend == "" {
		cn.backend = r.askWhoAmI(c)
	}
	if cn.backend == "" {
		cn.backend = c.NetConn().RemoteAddr().String()
	}
	return resp.StatusCode, nil
}

// askWhoAmI asks the server its name; "" when it only echoes (or fails,
// which the next message will show).
func (r *run) askWhoAmI(c *websocket.Conn) string {
	c.SetWriteDeadline(time.Now().Add(r.cfg.Timeout))
	c.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
	defer r.watchAbort(c)()
	if r.abort.Err() != nil {
		return ""
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(whoAmI)); err != nil {
		return ""
	}
	typ, b, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(b) == whoAmI || !utf8.Valid(b) {
		return ""
	}
	return string(b)
}

var errStopped = errors.New("run stopped")

// closeWS ends our side of a socket: when we start the close, send 1000
// and wait (briefly) for the peer's answer, whose code tells whether the
// peer had closed first. It returns how the socket ended.
func (r *run) closeWS(cn *wsConn, initiate bool) wsEnd {
	end := wsEnd{reason: CloseNone}
	if initiate {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if cn.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) == nil {
			cn.c.SetReadDeadline(time.Now().Add(wsCloseGrace))
			for {
				_, _, err := cn.c.ReadMessage()
				if err == nil {
					continue // an answer that crossed our close
				}
				if e, ok := peerClose(err); ok && e.code != websocket.CloseNormalClosure {
					end = e // the peer had closed (e.g. 1012 after our last message)
				}
				break
			}
		}
	}
	cn.c.Close()
	cn.c = nil
	return end
}

// peerClose maps a read error to how the peer ended the socket: a close
// frame (CloseServer and its code) or a dropped connection (CloseEOF, 1006).
func peerClose(err error) (wsEnd, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.CloseAbnormalClosure {
			return wsEnd{CloseEOF, websocket.CloseAbnormalClosure}, true
		}
		return wsEnd{CloseServer, uint16(ce.Code)}, true
	}
	if isSilentClose(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, websocket.ErrCloseSent) {
		return wsEnd{CloseEOF, websocket.CloseAbnormalClosure}, true
	}
	return wsEnd{}, false
}

// recordSocket emits the socket's KindSocket record.
func (r *run) recordSocket(cn *wsConn, end wsEnd) {
	res := Result{
		Kind: KindSocket, Start: cn.opened, Latency: time.Since(r.start) - cn.opened,
		Status: http.StatusSwitchingProtocols, Backend: cn.backend, Conn: cn.id,
		ConnReq: cn.msgs, Close: end.reason, CloseCode: end.code, ServerTotal: -1,
	}
	r.sinkMu.Lock()
	r.sink.Record(&res)
	r.sinkMu.Unlock()
}

// reconnectDelay is ReconnectDelay plus up to a tenth of it (and 20ms) of jitter.
func (r *run) reconnectDelay() time.Duration {
	d := r.cfg.ReconnectDelay
	return d + rand.N(d/10+reconnectJitter)
}

// workWS is one socket slot sending messages: closed loop, or at its share
// of Rate. A socket the server closes ends with its last message's Result
// carrying the close (CloseServer + status, or CloseEOF + 1006); a message
// sent into a closing socket is sent again on a new one, once.
//
// paced says the slot's first socket already had its ConnectRate turn.
func (r *run) workWS(st *Stats, quota int64, paced bool) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		cn      wsConn
		res     Result
		pending held
		waitFor time.Duration // before the next dial, after a server close
	)
	// flush with a code: held.flush knows only the reason.
	flushCode := func(code uint16) {
		if pending.ok {
			pending.res.CloseCode = code
		}
	}
	defer func() {
		if cn.c != nil {
			e := r.closeWS(&cn, true)
			flushCode(e.code)
			pending.flush(r, st, e.reason)
			st.Closes[e.reason]++
			r.recordSocket(&cn, e)
		}
		pending.flush(r, st, CloseNone)
	}()
	for {
		seq, intended, ok := r.claim(timer, &quota)
		if !ok {
			return
		}
		res = Result{Seq: uint64(seq), Start: intended, Delay: r.sendDelay(intended), ServerTotal: -1}
		var (
			err    error
			status int
			n      int
		)
		for attempt := 0; ; attempt++ {
			if cn.c == nil {
				if waitFor > 0 && !sleep(r.stop, timer, waitFor) {
					// The run ended while we waited to reconnect: the
					// claimed message was never sent.
					err = errors.New("run ended before the socket reopened")
					break
				}
				waitFor = 0
				if paced {
					paced = false
					status, err = r.dialWS(&cn, st)
				} else {
					status, err = r.openWS(&cn, st, timer)
				}
				if err != nil {
					if err == errStopped {
						err = errors.New("run ended before the socket reopened")
					}
					break
				}
			}
			var end wsEnd
			var closed bool
			n, end, closed, err = r.roundTripWS(&cn)
			if closed {
				// The peer closed the socket before answering: record how,
				// then send the message again on a new socket (once).
				flushCode(end.code)
				pending.flush(r, st, end.reason)
				st.Closes[end.reason]++
				cn.c.Close()
				cn.c = nil
				r.recordSocket(&cn, end)
				waitFor = r.reconnectDelay()
				if attempt == 0 {
					st.Retries++
					continue
				}
				err = fmt.Errorf("socket closed before the answer (%d)", end.code)
			}
			break
		}
		flushCode(0)
		pending.flush(r, st, CloseNone)
		res.Latency = time.Since(r.start) - intended
		if err != nil {
			res.Err = err.Error()
			res.Status = status
			res.Backend = cn.backend
			if cn.c != nil {
				res.Conn, res.ConnReq = cn.id, cn.msgs
				res.Close, res.CloseCode = CloseError, websocket.CloseAbnormalClosure
				cn.c.Close()
				cn.c = nil
				st.Closes[CloseError]++
				r.recordSocket(&cn, wsEnd{CloseError, websocket.CloseAbnormalClosure})
			}
			r.record(&res, st)
			continue
		}
		res.Status = http.StatusSwitchingProtocols
		res.Backend = cn.backend
		res.Conn, res.ConnReq = cn.id, cn.msgs
		res.Bytes = int64(n)
		if lim := r.cfg.MaxRequestsPerConn; lim > 0 && cn.msgs >= uint32(lim) {
			// Client-side recycling: we close (1000) and reopen.
			e := r.closeWS(&cn, true)
			reason, code := CloseClientLimit, uint16(websocket.CloseNormalClosure)
			if e.reason != CloseNone {
				reason, code = e.reason, e.code // the server had closed first
			}
			res.Close, res.CloseCode = reason, code
			r.record(&res, st)
			st.Closes[reason]++
			r.recordSocket(&cn, wsEnd{reason, code})
			continue
		}
		pending.hold(&res)
	}
}

// roundTripWS sends the message and reads one answer. closed reports that
// the peer ended the socket instead of answering (end says how).
func (r *run) roundTripWS(cn *wsConn) (n int, end wsEnd, closed bool, err error) {
	deadline := time.Now().Add(r.cfg.Timeout)
	cn.c.SetWriteDeadline(deadline)
	cn.c.SetReadDeadline(deadline)
	defer r.watchAbort(cn.c)()
	if r.abort.Err() != nil {
		return 0, wsEnd{}, false, errAborted
	}
	if err := cn.c.WriteMessage(r.wsType, r.wsMsg); err != nil {
		if e, ok := peerClose(err); ok {
			return 0, e, true, nil
		}
		return 0, wsEnd{}, false, err
	}
	_, b, err := cn.c.ReadMessage()
	if err != nil {
		if e, ok := peerClose(err); ok {
			return 0, e, true, nil
		}
		return 0, wsEnd{}, false, err
	}
	cn.msgs++
	return len(b), wsEnd{}, false, nil
}

// workIdle holds one socket open with pings only, reopening it when the
// server closes it, until the run ends. Each socket yields a KindSocket
// record; a failed handshake is a KindSocket record with Err.
// paced says the slot's first socket already had its ConnectRate turn.
func (r *run) workIdle(st *Stats, paced bool) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var cn wsConn
	for !r.stopped.Load() {
		if !paced && !r.pacer.wait(r.stop, timer) {
			return
		}
		paced = false
		began := time.Since(r.start)
		// The handshake runs on a goroutine of its own: its deep stack dies
		// with it, and the slot's goroutine, which holds the socket for the
		// rest of its life, stays small (bench/ws-scale.sh).
		var status int
		var err error
		opened := make(chan struct{})
		go func() {
			defer close(opened)
			status, err = r.dialWS(&cn, st)
		}()
		<-opened
		if err != nil {
			res := Result{Kind: KindSocket, Start: began, Latency: time.Since(r.start) - began, Status: status, Err: err.Error(), ServerTotal: -1}
			r.record(&res, st)
			if !sleep(r.stop, timer, r.reconnectDelay()+100*time.Millisecond) {
				return
			}
			continue
		}
		end := r.holdIdle(&cn)
		cn.c.Close()
		cn.c = nil
		st.Closes[end.reason]++
		r.recordSocket(&cn, end)
		if end.reason == CloseNone || !sleep(r.stop, timer, r.reconnectDelay()) {
			return
		}
	}
}

// idlePinger is one goroutine per idle run that pings every held socket
// each PingInterval and, when the run ends, sends each our close: a helper
// goroutine per socket would cost a stack per socket, and idle runs hold
// tens of thousands.
type idlePinger struct {
	mu       sync.Mutex
	socks    map[*websocket.Conn]struct{}
	stopping bool
	done     sync.WaitGroup
}

func (r *run) startIdlePinger() {
	p := &idlePinger{socks: map[*websocket.Conn]struct{}{}}
	r.idle = p
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(r.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				for _, c := range p.snapshot(false) {
					c.WriteControl(websocket.PingMessage, nil, time.Now().Add(r.cfg.Timeout))
				}
			case <-r.stop:
				for _, c := range p.snapshot(true) {
					sayGoodbye(c)
				}
				return
			}
		}
	}()
}

func (p *idlePinger) wait() { p.done.Wait() }

// snapshot copies the held sockets; stopping marks the run's end, after
// which add says goodbye itself.
func (p *idlePinger) snapshot(stopping bool) []*websocket.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stopping {
		p.stopping = true
	}
	out := make([]*websocket.Conn, 0, len(p.socks))
	for c := range p.socks {
		out = append(out, c)
	}
	return out
}

func (p *idlePinger) add(c *websocket.Conn) {
	p.mu.Lock()
	stopping := p.stopping
	if !stopping {
		p.socks[c] = struct{}{}
	}
	p.mu.Unlock()
	if stopping {
		sayGoodbye(c)
	}
}

func (p *idlePinger) remove(c *websocket.Conn) (runEnded bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.socks, c)
	return p.stopping
}

// sayGoodbye sends our close (1000); the peer's answer ends the socket's read.
func sayGoodbye(c *websocket.Conn) {
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.SetReadDeadline(time.Now().Add(wsCloseGrace))
}

// holdIdle reads (answering the server's pings, receiving its close) until
// the server closes the socket or the run ends (the pinger sends our close).
func (r *run) holdIdle(cn *wsConn) wsEnd {
	c := cn.c
	c.SetReadDeadline(time.Time{})
	r.idle.add(c)
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		byUs := r.idle.remove(c)
		e, ok := peerClose(err)
		switch {
		case byUs && (!ok || e.code == websocket.CloseNormalClosure):
			return wsEnd{reason: CloseNone}
		case ok:
			return e
		default:
			return wsEnd{CloseError, websocket.CloseAbnormalClosure}
		}
	}
}

// validateWS checks the WebSocket-only fields and headers.
func (c *Config) validateWS(add func(name, format string, a ...any)) {
	for name := range c.Header {
		switch strings.ToLower(name) {
		case "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol":
			add("Header", "%s is set by the WebSocket handshake (Subprotocol sets Sec-WebSocket-Protocol)", http.CanonicalHeaderKey(name))
		}
	}
	if c.HTTP2 {
		add("HTTP2", "WebSocket runs over HTTP/1.1")
	}
	if c.H2C {
		add("H2C", "WebSocket runs over HTTP/1.1")
	}
	if c.Method != "" && c.Method != http.MethodGet {
		add("Method", "a WebSocket handshake is a GET")
	}
	if c.Idle && c.Rate != 0 {
		add("Idle", "sends no messages, so the rate must be 0")
	}
	if c.Idle && c.Duration == 0 {
		add("Idle", "needs a duration (an idle run sends no messages to count)")
	}
	if c.Idle && c.Requests != 0 {
		add("Idle", "sends no messages; drop the request count")
	}
	if len(c.Body) > 0 {
		add("Body", "WebSocket payloads come from Message")
	}
}

// watchAbort makes an abort end c's I/O at once with a deadline in the past.
// Call it after setting the call's own deadlines, then check r.abort (an
// abort before the watch is not undone by them); call the result when done.
func (r *run) watchAbort(c *websocket.Conn) (stop func() bool) {
	return context.AfterFunc(r.abort, func() { c.NetConn().SetDeadline(time.Unix(1, 0)) })
}
