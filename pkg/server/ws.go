package server

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocketPath is where the server upgrades to a WebSocket echo.
const WebSocketPath = "/ws"

// WhoAmI is the text message the server answers with its backend name, for
// clients that cannot read handshake headers (browsers).
const WhoAmI = "whoami"

// DefaultWebSocketCloseGrace is how long the server waits for the client's
// close frame after sending its own when Config.WebSocketCloseGrace is 0.
const DefaultWebSocketCloseGrace = 2 * time.Second

// wsWriteTimeout bounds one write to a socket, so a client that stopped
// reading cannot hold a handler forever.
const wsWriteTimeout = 10 * time.Second

// SocketClose says why a WebSocket ended; each has its close status.
type SocketClose uint8

const (
	SocketMaxRequests SocketClose = iota // the server's message limit: 1012
	SocketMaxAge                         // the server's age limit: 1012
	SocketShutdown                       // the server is draining: 1001
	SocketClient                         // the client closed first (any status)
	SocketAbnormal                       // the TCP connection ended without a close handshake: 1006
	numSocketCloses
)

var socketCloseNames = [numSocketCloses]string{"max_requests", "max_age", "shutdown", "client", "abnormal"}

// String returns the metric label, e.g. "max_requests".
func (c SocketClose) String() string {
	if c < numSocketCloses {
		return socketCloseNames[c]
	}
	return "socket_close(" + strconv.Itoa(int(c)) + ")"
}

// Code returns the close status the server sends (or, for SocketClient,
// 0: the client chose it; for SocketAbnormal, 1006 as RFC 6455 reports it).
func (c SocketClose) Code() int {
	switch c {
	case SocketMaxRequests, SocketMaxAge:
		return websocket.CloseServiceRestart
	case SocketShutdown:
		return websocket.CloseGoingAway
	case SocketAbnormal:
		return websocket.CloseAbnormalClosure
	}
	return 0
}

// closeText is the reason sent in the close frame.
func (c SocketClose) closeText() string {
	switch c {
	case SocketMaxRequests:
		return "kaload: max requests per connection"
	case SocketMaxAge:
		return "kaload: max connection age"
	case SocketShutdown:
		return "kaload: server shutting down"
	}
	return ""
}

// sockets tracks the open WebSockets: for recycling, the drain, and metrics.
type sockets struct {
	mu       sync.Mutex
	open     map[*socket]struct{}
	draining bool
	wg       sync.WaitGroup // one per socket handler

	active   atomic.Int64
	total    atomic.Uint64
	messages atomic.Uint64
	closed   [numSocketCloses]atomic.Uint64
}

// socket is one upgraded connection.
type socket struct {
	c       *websocket.Conn
	closing atomic.Uint32 // 0 while open, else 1 + the SocketClose the server closed it for
	timer   *time.Timer   // age limit or drain slot; guarded by sockets.mu
	grace   time.Duration
}

func (s *Server) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		// Not the HTTP server's 4 KiB reader: an idle socket keeps its read
		// buffer for life; writes borrow from a pool, so it holds no write
		// buffer. Messages of any size still pass (bench/ws-scale.sh).
		ReadBufferSize:    1024,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: true,
		// A load-test server answers every origin: browsers may be clients.
		CheckOrigin: func(*http.Request) bool { return true },
	}
}

// serveWS upgrades, then echoes until a limit, the drain, or the client ends the socket.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	hdr := http.Header{s.backend: s.hostValue}
	if p := websocket.Subprotocols(r); len(p) > 0 {
		hdr.Set("Sec-WebSocket-Protocol", p[0]) // echo servers speak anything
	}
	c, err := s.wsUp.Upgrade(w, r, hdr)
	if err != nil {
		return // Upgrade answered the client with the HTTP error
	}
	c.EnableWriteCompression(true)
	limit, age := s.rc.Limits()
	sk := &socket{c: c, grace: s.cfg.WebSocketCloseGrace}
	ws := &s.ws
	ws.mu.Lock()
	if ws.open == nil {
		ws.open = make(map[*socket]struct{})
	}
	ws.open[sk] = struct{}{}
	ws.wg.Add(1)
	draining := ws.draining
	if age > 0 && !draining {
		sk.timer = time.AfterFunc(age, func() { s.closeSocket(sk, SocketMaxAge) })
	}
	ws.mu.Unlock()
	ws.active.Add(1)
	ws.total.Add(1)
	// The socket gets a goroutine of its own and the handler returns:
	// net/http's connection goroutine, with its deep stack and its
	// connection state, ends, which halves the memory an idle socket holds
	// (bench/ws-scale.sh).
	remote := r.RemoteAddr
	go func() {
		start := time.Now()
		var n uint64
		defer func() {
			ws.mu.Lock()
			delete(ws.open, sk)
			if sk.timer != nil {
				sk.timer.Stop()
			}
			ws.mu.Unlock()
			c.Close()
			ws.active.Add(-1)
			ws.wg.Done()
		}()
		if draining {
			// Accepted during the drain delay: send the client elsewhere at once.
			s.closeSocket(sk, SocketShutdown)
		}
		why, code := s.echo(sk, limit, &n)
		ws.closed[why].Add(1)
		if s.cfg.Logger != nil {
			s.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "websocket",
				slog.String("remote", remote),
				slog.Uint64("messages", n),
				slog.String("close", why.String()),
				slog.Int("close_code", code),
				slog.Duration("duration", time.Since(start)),
			)
		}
	}()
}

// echo is the socket's read loop. It returns why the socket ended and the
// close status seen on the wire.
func (s *Server) echo(sk *socket, limit uint64, n *uint64) (SocketClose, int) {
	c := sk.c
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			isClose := errors.As(err, &ce)
			switch st := sk.closing.Load(); {
			case st != 0:
				// Our close frame went out; the client's answer (or the
				// grace running out) ends the socket.
				why := SocketClose(st - 1)
				return why, why.Code()
			case isClose && ce.Code != websocket.CloseAbnormalClosure:
				return SocketClient, ce.Code
			default:
				return SocketAbnormal, websocket.CloseAbnormalClosure
			}
		}
		if sk.closing.Load() != 0 {
			continue // no data after our close frame (RFC 6455 5.5.1)
		}
		*n++
		s.ws.messages.Add(1)
		if mt == websocket.TextMessage && string(msg) == WhoAmI {
			msg = []byte(s.hostname)
		}
		c.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		if err := c.WriteMessage(mt, msg); err != nil {
			if sk.closing.Load() != 0 {
				continue // the close frame won the race; wait for the client's
			}
			return SocketAbnormal, websocket.CloseAbnormalClosure
		}
		if limit > 0 && *n >= limit {
			// Right after the limit's echo, so a closed-loop client sees the
			// answer first and loses nothing.
			s.closeSocket(sk, SocketMaxRequests)
		}
	}
}

// closeSocket starts the close handshake once: the close frame with the
// reason's status, then up to the grace for the client's close frame, which
// the read loop receives; TCP closes when it returns.
func (s *Server) closeSocket(sk *socket, why SocketClose) {
	if !sk.closing.CompareAndSwap(0, uint32(why)+1) {
		return
	}
	now := time.Now()
	msg := websocket.FormatCloseMessage(why.Code(), why.closeText())
	if err := sk.c.WriteControl(websocket.CloseMessage, msg, now.Add(time.Second)); err != nil {
		sk.c.SetReadDeadline(now) // cannot say goodbye: end it now
		return
	}
	sk.c.SetReadDeadline(now.Add(sk.grace))
}

// drainSockets closes every open socket with 1001, each at a random moment
// within spread so that thousands of clients do not reconnect at once;
// sockets accepted later are closed as soon as they open.
func (s *Server) drainSockets(spread time.Duration) {
	ws := &s.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.draining = true
	for sk := range ws.open {
		if sk.timer != nil {
			sk.timer.Stop()
		}
		at := time.Duration(0)
		if spread > 0 {
			at = time.Duration(rand.Int64N(int64(spread)))
		}
		sk.timer = time.AfterFunc(at, func() { s.closeSocket(sk, SocketShutdown) })
	}
}

// waitSockets waits until every socket handler returned or ctx ends; then
// it closes what is left.
func (s *Server) waitSockets(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.ws.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.ws.mu.Lock()
	for sk := range s.ws.open {
		sk.c.NetConn().Close()
	}
	s.ws.mu.Unlock()
	<-done
	return ctx.Err()
}
