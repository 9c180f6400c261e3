package abuse

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// h2cServer is a plain net/http h2c server counting its handler runs.
func h2cServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var runs atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &runs
}

// TestRapidResetBounds: the attack stops at its stream bound and reports
// what it wrote; the server saw streams (handlers ran for some of them).
func TestRapidResetBounds(t *testing.T) {
	addr, runs := h2cServer(t)
	res, err := RapidResetAttack(context.Background(), addr, "/", 500, 3, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Streams != 500 || res.Conns < 1 || res.MaxPerConn == 0 {
		t.Errorf("attack %+v, want 500 streams", res)
	}
	if runs.Load() == 0 {
		t.Error("the server ran no handler for the attack's streams")
	}
}

// TestStallH2Body: the stalled stream reaches a handler whose body read
// blocks until the server gives up on it.
func TestStallH2Body(t *testing.T) {
	addr, runs := h2cServer(t)
	h, err := DialH2C(context.Background(), addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	id, err := StallH2Body(h)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); h.Status(id) == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no answer on the stalled stream's handler")
		}
	}
	if got := h.Status(id); got != "204" || runs.Load() != 1 {
		t.Errorf("status %q after %d handler runs, want 204 after 1", got, runs.Load())
	}
}
