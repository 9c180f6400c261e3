package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/kaload/kaload/internal/h2frame"
)

// HTTP/2 limits against hostile clients.
const (
	// maxConcurrentStreams caps the streams (and handler goroutines) one
	// HTTP/2 connection may have open; Go's default is 250, nginx's 128.
	maxConcurrentStreams = 100
	// resetFloodMin is how many streams a client may reset on one
	// connection before the reset ratio applies (Envoy's premature-reset
	// check works the same way).
	resetFloodMin = 200
	// floodGrace is how long a flooding client may keep its connection
	// after the GOAWAY before it is closed.
	floodGrace = 2 * time.Second
	// floodAfter is how many new streams a flooding client may still open
	// (the server ignores them once it sent GOAWAY) before it is closed.
	floodAfter = 2 * maxConcurrentStreams
	// floodPause is how long the reading stops before such a connection
	// closes.
	floodPause = 100 * time.Millisecond
)

// errResetFlood ends a connection whose client resets most of its streams.
var errResetFlood = errors.New("http2: client reset more than half of its streams (rapid reset)")

// serveHTTP2 makes srv serve HTTP/2 (TLS h2 and h2c) through x/net's
// server on connections it watches for rapid reset (CVE-2023-44487):
// HEADERS then RST_STREAM in a loop costs the server a request each while
// the client pays two frames. Go's servers bound the handlers running at
// once, not the rate, so a client resetting as fast as it writes keeps a
// core busy and the requests count up. The watch reads the frame headers
// the client sends (the server does not expose them); once the client reset
// at least resetFloodMin streams and more than half of those it opened, the
// next answer on the connection says "Connection: close", which makes the
// server send GOAWAY and refuse new streams (their handlers never run), and
// the connection ends when its open streams did: from then on each
// connection costs the attacker a new handshake. (Closing the socket at
// once would leave streams open, and the HTTP/2 server then re-arms its
// idle timer on the dead connection, keeping it in memory for
// IdleTimeout.) A client that keeps opening streams after the GOAWAY
// (floodAfter of them) or keeps the connection floodGrace longer is cut off. x/net's Server is deprecated in favour of
// http.Server.Protocols, but only it serves HTTP/2 on a net.Conn of ours.
func (s *Server) serveHTTP2(srv *http.Server) error {
	h2s := &http2.Server{}
	if err := http2.ConfigureServer(srv, h2s); err != nil {
		return err
	}
	serve := func(hs *http.Server, c net.Conn, h http.Handler, sawPreface bool) {
		var ctx context.Context
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		w := &watchedConn{Conn: c, s: s}
		if !sawPreface {
			w.scan.preface = len(http2.ClientPreface)
		}
		var conn net.Conn = w
		if tc, ok := c.(*tls.Conn); ok {
			conn = &watchedTLSConn{watchedConn: w, tc: tc}
		}
		if ctx == nil {
			ctx = context.Background()
		}
		ctx = context.WithValue(ctx, watchKey{}, w)
		h2s.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: hs, SawClientPreface: sawPreface})
	}
	srv.TLSNextProto["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) { serve(hs, c, h, false) }
	srv.TLSNextProto["unencrypted_http2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		// net/http hands over an h2c connection, its preface read, inside
		// a placeholder tls.Conn.
		u, ok := c.NetConn().(interface{ UnencryptedNetConn() net.Conn })
		if !ok {
			c.Close()
			return
		}
		serve(hs, u.UnencryptedNetConn(), h, true)
	}
	// The HTTP/2 server reports ConnState with the connection it serves;
	// hooks keyed by the accepted connection need that one.
	if hook := srv.ConnState; hook != nil {
		srv.ConnState = func(c net.Conn, st http.ConnState) {
			switch w := c.(type) {
			case *watchedConn:
				c = w.Conn
			case *watchedTLSConn:
				c = w.tc
			}
			hook(c, st)
		}
	}
	return nil
}

// watchedConn is an HTTP/2 connection whose client frames are counted.
type watchedConn struct {
	net.Conn
	s       *Server
	scan    frameScan   // owned by the reading goroutine
	reset   atomic.Bool // the client reset a stream: handlers check their answer went out
	flood   atomic.Bool // rapid reset: answers end the connection
	floodAt time.Time   // owned by the reading goroutine
	floodN  uint32      // streams the client had opened at floodAt
}

type watchKey struct{}

// resetting reports whether the HTTP/2 connection of ctx saw its client
// reset a stream.
func resetting(ctx context.Context) bool {
	w, _ := ctx.Value(watchKey{}).(*watchedConn)
	return w != nil && w.reset.Load()
}

// endFlood makes every answer on an HTTP/2 connection caught in a rapid
// reset say "Connection: close": the server then sends GOAWAY.
func endFlood(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			if wc, _ := r.Context().Value(watchKey{}).(*watchedConn); wc != nil && wc.flood.Load() {
				w.Header()["Connection"] = closeValue
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	if !w.floodAt.IsZero() {
		w.scan.feed(p[:n])
		if w.scan.streams-w.floodN > floodAfter || time.Since(w.floodAt) > floodGrace {
			// Stop reading a moment first, so that the streams already
			// open end (their handlers see the resets or answer) and none
			// is left when the connection closes.
			time.Sleep(floodPause)
			w.Conn.Close()
			return 0, errResetFlood
		}
		return n, err
	}
	resets := w.scan.resets
	ok := w.scan.feed(p[:n])
	if d := w.scan.resets - resets; d > 0 {
		w.s.h2Resets.Add(uint64(d))
		w.reset.Store(true)
	}
	if !ok {
		w.floodAt, w.floodN = time.Now(), w.scan.streams
		w.flood.Store(true)
		w.s.resetFloods.Add(1)
	}
	return n, err
}

// watchedTLSConn keeps the TLS state visible to the HTTP/2 server.
type watchedTLSConn struct {
	*watchedConn
	tc *tls.Conn
}

func (w *watchedTLSConn) ConnectionState() tls.ConnectionState { return w.tc.ConnectionState() }

// frameScan counts the streams a client opens (HEADERS on a new stream) and
// resets (RST_STREAM) from the frame headers it sends. It never looks inside
// a payload.
type frameScan struct {
	preface int // preface bytes still to skip
	sc      h2frame.Scanner
	maxID   uint32 // highest stream the client opened
	streams uint32
	resets  uint32
	flood   bool // at least resetFloodMin resets, more than half of the streams
}

// Frame types this scan counts (RFC 9113 section 6).
const (
	frameHeaders   = 0x1
	frameRSTStream = 0x3
)

func (f *frameScan) onFrame(h h2frame.Header) {
	switch h.Type {
	case frameHeaders:
		if h.StreamID > f.maxID {
			f.maxID = h.StreamID
			f.streams++
		}
	case frameRSTStream:
		f.resets++
		if f.resets >= resetFloodMin && f.resets > f.streams/2 {
			f.flood = true
		}
	}
}

// feed scans p and reports false once the client reset at least
// resetFloodMin streams and more than half of the streams it opened (and
// from then on).
func (f *frameScan) feed(p []byte) bool {
	if f.sc.OnFrame == nil {
		f.sc.OnFrame = f.onFrame
	}
	if f.preface > 0 {
		n := min(f.preface, len(p))
		f.preface -= n
		p = p[n:]
	}
	f.sc.Scan(p)
	return !f.flood
}
