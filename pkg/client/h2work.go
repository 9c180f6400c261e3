package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// h2Req is what every request of a run on the HTTP/2 core sends.
type h2Req struct {
	blocks     h2Blocks
	body       []byte // the DATA payload (for gRPC, the length-prefixed message)
	grpc       bool
	backendKey string // lower-case
}

// h2Worker is one connection slot on the HTTP/2 core: its goroutine drives
// the connection, up to per streams at once.
type h2Worker struct {
	r       *run
	st      *Stats
	req     *h2Req
	per     int
	cn      *h2Conn
	pending held // the last result on cn, until we know whether cn ended after it
	retry   []*h2Stream
	free    []*h2Stream
}

// maxH2Tries bounds how often one request is sent again after the server
// refused it unprocessed (GOAWAY, REFUSED_STREAM).
const maxH2Tries = 3

func (r *run) workH2Core(st *Stats, quota int64, req *h2Req) {
	w := &h2Worker{r: r, st: st, req: req, per: max(r.cfg.Streams, 1)}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	defer func() {
		if w.cn != nil {
			w.closeConn(w.cn.endReason())
		}
	}()
	more := true
	for {
		for (more || len(w.retry) > 0) && (w.cn == nil || len(w.cn.streams) < w.slots()) {
			if w.cn != nil && !w.cn.usable() {
				if len(w.cn.streams) > 0 {
					break // let it drain before dialling the next
				}
				w.closeConn(w.cn.endReason())
			}
			var s *h2Stream
			if len(w.retry) > 0 {
				s, w.retry = w.retry[0], w.retry[1:]
			} else {
				if w.cn != nil && len(w.cn.streams) > 0 && r.cfg.Rate > 0 {
					break // the open model claims only with nothing in flight
				}
				seq, intended, ok := r.claim(timer, &quota)
				if !ok {
					more = false
					break
				}
				s = w.stream()
				s.res = Result{Seq: uint64(seq), Start: intended, Delay: r.sendDelay(intended), ServerTotal: -1}
				s.deadline = time.Now().Add(r.cfg.Timeout)
				s.tries = 0
			}
			if w.cn == nil {
				if err := w.dial(s.deadline); err != nil {
					w.dialFailed(s, err)
					continue
				}
			}
			s.body = req.body
			w.cn.start(s, &req.blocks)
			// One deadline on the connection serves its streams: set anew
			// only when a stream's comes first, or when less than half a
			// Timeout is left (a write must not inherit a stale deadline).
			// Reads that hit it early re-arm it (expire).
			if s.deadline.Before(w.cn.deadline) || w.cn.deadline.Before(s.deadline.Add(-r.cfg.Timeout/2)) {
				w.setDeadline(s.deadline)
			}
		}
		if w.cn == nil || len(w.cn.streams) == 0 {
			if !more && len(w.retry) == 0 {
				return
			}
			continue
		}
		w.step()
		w.collect()
	}
}

// slots is how many streams the current connection may carry at once.
func (w *h2Worker) slots() int {
	if w.cn != nil && w.cn.maxConc > 0 && int(w.cn.maxConc) < w.per {
		return int(w.cn.maxConc)
	}
	return w.per
}

func (w *h2Worker) stream() *h2Stream {
	if n := len(w.free); n > 0 {
		s := w.free[n-1]
		w.free = w.free[:n-1]
		return s
	}
	return &h2Stream{}
}

// setDeadline sets the connection's deadline, keeping an abort's deadline
// in the past if the abort came first.
func (w *h2Worker) setDeadline(t time.Time) {
	w.cn.c.SetDeadline(t)
	w.cn.deadline = t
	if w.r.abort.Err() != nil {
		w.cn.c.SetDeadline(time.Unix(1, 0))
	}
}

func (w *h2Worker) dial(deadline time.Time) error {
	r := w.r
	c, err := r.dialBounded(deadline)
	if err != nil {
		w.st.DialErrors++
		return err
	}
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
		c.Close()
		w.st.DialErrors++
		return fmt.Errorf("%s did not negotiate h2 via ALPN", r.tgt.addr)
	}
	w.st.Connections++
	w.cn = newH2Conn(c, r.connID.Add(1), &w.req.blocks, w.req.grpc, w.req.backendKey)
	w.cn.limit = uint32(r.cfg.MaxRequestsPerConn)
	w.cn.unwatch = afterAbort(r, c)
	return nil
}

// dialFailed records s as failed to connect.
func (w *h2Worker) dialFailed(s *h2Stream, err error) {
	res := &s.res
	res.Latency = time.Since(w.r.start) - res.Start
	if w.req.grpc {
		res.GRPCCode = uint16(codes.Unavailable)
		res.Err = grpcErrText(codes.Unavailable, "connection error: "+err.Error())
	} else {
		res.Err = err.Error()
	}
	w.r.record(res, w.st)
	w.free = append(w.free, s)
}

// closeConn ends the connection and records the result held on it.
func (w *h2Worker) closeConn(reason CloseReason) {
	cn := w.cn
	w.pending.flush(w.r, w.st, reason)
	cn.unwatch()
	cn.c.Close()
	w.st.Closes[reason]++
	if cn.goaway != nil {
		if w.st.GoAways == nil {
			w.st.GoAways = map[string]int64{}
		}
		w.st.GoAways[goAwayKey(cn.goaway)]++
	}
	w.cn = nil
}

// endReason is why a connection that can take no more streams ended.
func (cn *h2Conn) endReason() CloseReason {
	switch {
	case cn.goaway != nil:
		return CloseGoAway
	case cn.eof:
		return CloseEOF
	case cn.err != nil:
		return CloseError
	case cn.limit > 0 && cn.started >= cn.limit:
		return CloseClientLimit
	}
	return CloseNone // open, or out of stream ids
}

// step writes what is queued and reads until a stream ended or the
// connection failed.
func (w *h2Worker) step() {
	cn := w.cn
	for {
		if cn.flush() != nil {
			return
		}
		for {
			h, p, ok, err := cn.nextFrame()
			if err == nil && ok {
				err = cn.process(h, p)
			}
			if err != nil {
				cn.fail(err)
				return
			}
			if !ok {
				break
			}
		}
		if cn.anyEnded() {
			return // acknowledgements queued meanwhile go with the next request
		}
		if cn.flush() != nil {
			return
		}
		err := cn.fill()
		if err == nil {
			continue
		}
		if w.r.abort.Err() != nil {
			cn.fail(errors.New("context canceled"))
			cn.aborted = true
			return
		}
		if isTimeout(err) && w.expire() {
			return
		}
		if isTimeout(err) {
			continue // re-armed for the earliest stream
		}
		if errors.Is(err, io.EOF) {
			cn.eof = true
			cn.fail(errors.New("error reading from server: EOF"))
			return
		}
		cn.fail(fmt.Errorf("error reading from server: %w", err))
		return
	}
}

// expire ends the streams whose deadline passed and re-arms the deadline
// for the rest; it reports whether one ended.
func (w *h2Worker) expire() bool {
	cn := w.cn
	now := time.Now()
	var next time.Time
	ended := false
	for _, s := range cn.streams {
		if s.ended {
			continue
		}
		if !s.deadline.After(now) {
			s.ended = true
			s.err, s.errCode = "context deadline exceeded", uint16(codes.DeadlineExceeded)
			cn.reset(s, h2ErrCancel)
			ended = true
			continue
		}
		if next.IsZero() || s.deadline.Before(next) {
			next = s.deadline
		}
	}
	if next.IsZero() {
		next = now.Add(w.r.cfg.Timeout)
	}
	w.setDeadline(next)
	return ended
}

func (cn *h2Conn) anyEnded() bool {
	for _, s := range cn.streams {
		if s.ended {
			return true
		}
	}
	return false
}

// collect records the streams that ended (or queues them to be sent again)
// and closes a connection that failed.
func (w *h2Worker) collect() {
	cn := w.cn
	kept := cn.streams[:0]
	for _, s := range cn.streams {
		if !s.ended && cn.err == nil {
			kept = append(kept, s)
			continue
		}
		if !s.ended {
			s.ended = true
			switch {
			case cn.aborted:
				s.err, s.errCode = "context canceled", uint16(codes.Canceled)
			case isTimeout(cn.err) && !s.deadline.After(time.Now()):
				// a write blocked past the request's deadline (the server reads nothing)
				s.err, s.errCode = "context deadline exceeded", uint16(codes.DeadlineExceeded)
			default:
				s.err, s.errCode = cn.err.Error(), uint16(codes.Unavailable)
			}
		}
		if !s.sent && s.err == "" && cn.err == nil {
			cn.reset(s, h2ErrCancel) // answered before its body was all sent: close our side
		}
		if s.unprocessed && s.tries+1 < maxH2Tries && w.r.abort.Err() == nil {
			s.tries++
			w.st.Retries++
			w.retry = append(w.retry, s)
			continue
		}
		w.finish(s)
	}
	for i := len(kept); i < len(cn.streams); i++ {
		cn.streams[i] = nil
	}
	cn.streams = kept
	if cn.err != nil {
		w.closeConn(cn.endReason())
	}
}

// finish fills in s's Result, holds it as the connection's latest, and
// frees s.
func (w *h2Worker) finish(s *h2Stream) {
	r, cn, res := w.r, w.cn, &s.res
	res.Latency = time.Since(r.start) - res.Start
	cn.reqs++
	res.Conn, res.ConnReq = cn.id, cn.reqs
	res.ServerTotal = s.total
	switch {
	case s.backend != "":
		res.Backend = s.backend
	case s.backendT != "":
		res.Backend = s.backendT
	case w.req.grpc || s.headers:
		res.Backend = cn.remote
	default: // HTTP without an answer: the connection's last backend (as before the core)
		res.Backend = cn.last
	}
	cn.last = res.Backend
	if s.headers {
		res.Status = s.status
	}
	if w.req.grpc {
		if code, msg := grpcOutcome(s); code != codes.OK {
			res.GRPCCode = uint16(code)
			res.Err = grpcErrText(code, msg)
		} else {
			res.Bytes = s.bytes
		}
	} else if s.err != "" {
		res.Err = s.err
	} else if !s.headers {
		res.Err = "http2: the server ended the stream without a response"
	} else {
		res.Bytes = s.bytes
	}
	w.pending.flush(r, w.st, CloseNone)
	w.pending.hold(res)
	w.free = append(w.free, s)
}

// afterAbort sets c's deadline in the past when the run is aborted; the
// returned function stops that.
func afterAbort(r *run, c net.Conn) func() bool {
	return context.AfterFunc(r.abort, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// newHTTPH2Req is an HTTP/2 run's request: the fields x/net/http2's
// Transport would send for cfg (no connection-specific headers,
// content-length for a body), encoded once.
func newHTTPH2Req(cfg *Config, tgt target) *h2Req {
	scheme := "http"
	if tgt.tls {
		scheme = "https"
	}
	authority := tgt.host
	if h := cfg.Header.Get("Host"); h != "" {
		authority = h
	}
	fields := []h2Field{{":method", cfg.Method}, {":scheme", scheme}, {":path", tgt.reqPath}, {":authority", authority}}
	ua := false
	names := make([]string, 0, len(cfg.Header))
	for k := range cfg.Header {
		names = append(names, k)
	}
	sort.Strings(names) // the same block every run
	for _, k := range names {
		lk := strings.ToLower(k)
		switch lk {
		case "host", "connection", "proxy-connection", "transfer-encoding", "upgrade", "keep-alive", "content-length":
			continue
		case "user-agent":
			ua = true
		}
		for _, v := range cfg.Header[k] {
			if lk == "te" && v != "trailers" {
				continue
			}
			fields = append(fields, h2Field{lk, v})
		}
	}
	if !ua {
		fields = append(fields, h2Field{"user-agent", "kaload"})
	}
	if len(cfg.Body) > 0 || cfg.Method == "POST" || cfg.Method == "PUT" || cfg.Method == "PATCH" {
		fields = append(fields, h2Field{"content-length", strconv.Itoa(len(cfg.Body))})
	}
	return &h2Req{blocks: newH2Blocks(fields), body: cfg.Body, backendKey: strings.ToLower(cfg.BackendHeader)}
}
