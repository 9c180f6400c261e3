package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/abuse"
)

// stalled is a raw HTTP/1.1 connection whose request body stalls.
type stalled struct {
	c  net.Conn
	br *bufio.Reader
}

func dialStalled(t *testing.T, addr string, chunked bool) *stalled {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, abuse.StalledBody(chunked)); err != nil {
		t.Fatal(err)
	}
	return &stalled{c: c, br: bufio.NewReader(c)}
}

// answer reads the server's answer and then expects the connection's end.
func (s *stalled) answer(t *testing.T, within time.Duration) {
	t.Helper()
	s.c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body within %v: %v", within, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("stalled body answered %d close=%v, want 408 and close", resp.StatusCode, resp.Close)
	}
	if n, err := s.br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the 408: read %d bytes, err %v; want EOF", n, err)
	}
}

// TestStalledBodyReadTimeout: a POST announcing 100 bytes that sends 10,
// and a chunked body that stops after one chunk, used to hold their
// connection forever (issue 16). ReadTimeout bounds the whole request: the
// client gets 408 and the connection closes.
func TestStalledBodyReadTimeout(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			ts := start(t, Config{ReadTimeout: 300 * time.Millisecond})
			dialStalled(t, ts.addr, chunked).answer(t, 5*time.Second)
			if s := ts.Stats(); s.BodyTimeouts != 1 || s.Requests != 0 {
				t.Errorf("BodyTimeouts %d Requests %d, want 1 and 0", s.BodyTimeouts, s.Requests)
			}
			waitFor(t, "the connection to close", func() bool { return ts.Stats().ActiveConns == 0 })
		})
	}
}

// TestDrainCutsStalledBodies: five clients whose bodies stall (and an h2c
// stream whose body stalls) used to make the drain run out its grace and
// fail (issue 16). With the default ReadTimeout (longer than the grace)
// the drain must still end cleanly, well within the grace, and answer each
// stalled request 408.
func TestDrainCutsStalledBodies(t *testing.T) {
	const grace = 5 * time.Second
	ts := start(t, Config{ShutdownGrace: grace, H2C: true})
	var conns []*stalled
	for i := range 5 {
		conns = append(conns, dialStalled(t, ts.addr, i%2 == 1))
	}
	h, err := abuse.DialH2C(context.Background(), ts.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	id, err := abuse.StallH2Body(h)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "six stalled requests in their handlers", func() bool { return ts.rc.Stats().Requests == 6 })
	began := time.Now()
	if err := ts.stop(t); err != nil {
		t.Fatalf("drain with stalled bodies: %v", err)
	}
	took := time.Since(began)
	t.Logf("drain took %v with 6 stalled bodies", took)
	// bodyStall to cut the bodies, then the second net/http keeps an idle
	// HTTP/2 connection open after its GOAWAY, then slack.
	if limit := bodyStall + 2*time.Second; took > limit {
		t.Errorf("drain took %v, want at most %v (grace %v)", took, limit, grace)
	}
	for _, c := range conns {
		c.answer(t, time.Second)
	}
	select {
	case <-h.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("h2c connection still open after the drain")
	}
	if got := h.Status(id); got != "408" {
		t.Errorf("stalled h2c stream answered %q, want 408", got)
	}
	if s := ts.Stats(); s.BodyTimeouts != 6 {
		t.Errorf("BodyTimeouts %d, want 6", s.BodyTimeouts)
	}
}

// TestLateHTTP2ConnGetsGoAway: a connection accepted just before the
// listener closed whose HTTP/2 preface arrives after Shutdown began missed
// Shutdown's GOAWAY; it must get one (and close) instead of holding the
// drain until the grace runs out.
func TestLateHTTP2ConnGetsGoAway(t *testing.T) {
	ts := start(t, Config{H2C: true, Delay: 1500 * time.Millisecond, ShutdownGrace: 5 * time.Second})
	// A slow request keeps Shutdown polling, so the late connection's
	// preface arrives while it runs.
	slow := dialRaw(t, ts.addr)
	fmt.Fprintf(slow.c, "GET / HTTP/1.1\r\nHost: kaload\r\n\r\n")
	late, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	waitFor(t, "both connections accepted", func() bool { return ts.ln.n.Load() == 2 && ts.rc.Stats().Requests == 1 })
	stopped := make(chan error, 1)
	began := time.Now()
	go func() { stopped <- ts.stop(t) }()
	waitFor(t, "the listener to close", func() bool { return ts.stopping.Load() })
	time.Sleep(100 * time.Millisecond)
	h, err := abuse.WrapH2C(late, false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Ended():
	case <-time.After(4 * time.Second):
		t.Fatal("late HTTP/2 connection still open 4s into the drain")
	}
	if g := h.GoAway(); g == nil {
		t.Error("late HTTP/2 connection closed without GOAWAY")
	}
	if err := <-stopped; err != nil {
		t.Errorf("drain: %v", err)
	}
	t.Logf("drain took %v", time.Since(began))
}
