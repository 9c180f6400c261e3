package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNumberValue(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 99, 100, 999, 1000, numberTableSize - 1, numberTableSize, 123456789, 1<<64 - 1} {
		v := numberValue(n)
		if len(v) != 1 || cap(v) != 1 || v[0] != strconv.FormatUint(n, 10) {
			t.Errorf("numberValue(%d) = %q (cap %d)", n, v, cap(v))
		}
		// A handler appending to the value must not disturb the shared table.
		_ = append(v, "x")
		if w := numberValue(n); w[0] != strconv.FormatUint(n, 10) {
			t.Errorf("after append, numberValue(%d) = %q", n, w)
		}
	}
	if n := testing.AllocsPerRun(100, func() { numberValue(numberTableSize - 1) }); n != 0 {
		t.Errorf("numberValue below the table size allocates %v times", n)
	}
}

// TestDrainClosesLateIdleConnection: a connection that turns idle with no
// request after the drain began is closed (it missed the shutdown GOAWAY);
// one that carried requests is left to close after its response.
func TestDrainClosesLateIdleConnection(t *testing.T) {
	rc, err := NewRecycler(RecycleConfig{})
	if err != nil {
		t.Fatal(err)
	}
	late, lateClient := net.Pipe()
	defer lateClient.Close()
	busy, busyClient := net.Pipe()
	defer busyClient.Close()
	defer busy.Close()
	rc.ConnContext(context.Background(), late)
	rc.ConnState(busy, http.StateActive)
	ctx := rc.ConnContext(context.Background(), busy)
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rc.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), req)

	rc.Drain()
	rc.ConnState(late, http.StateIdle)
	rc.ConnState(busy, http.StateIdle)
	lateClient.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := lateClient.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("late idle connection: read err %v, want EOF (closed)", err)
	}
	busyClient.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := busyClient.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection with requests: read err %v, want it left open", err)
	}
	if got := rc.Stats().RecycledBy(ReasonShutdown); got != 2 {
		t.Errorf("shutdown recycles %d, want 2", got)
	}
}

// Past the shared table, HTTP/1 number headers live in a slot of the
// connection's state that its next request rewrites: the values on the wire
// must still be right, request after request, on interleaved connections.
func TestLargeNumberHeadersHTTP1(t *testing.T) {
	ts := startWith(t, Config{}, func(s *Server) { s.requests.Store(numberTableSize - 3) })
	a, b := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	want := uint64(numberTableSize - 3)
	for i := range 8 {
		c := a
		if i%3 == 2 {
			c = b
		}
		want++
		resp, body := c.get(t, "/")
		if got := resp.Header.Get(TotalHeader); got != strconv.FormatUint(want, 10) {
			t.Fatalf("request %d: %s %q, want %d", i, TotalHeader, got, want)
		}
		if !strings.Contains(body, "request="+strconv.FormatUint(want, 10)+" ") {
			t.Fatalf("request %d: body %q does not match the header", i, body)
		}
	}
}

// The slot path allocates nothing; HTTP/2 (concurrent streams on one
// connection) never uses it.
func TestHeaderNumberSlots(t *testing.T) {
	st := &connState{}
	h1 := &http.Request{ProtoMajor: 1}
	h2 := &http.Request{ProtoMajor: 2}
	v := headerNumber(st, slotTotal, h1, 123456)
	if v[0] != "123456" {
		t.Fatalf("headerNumber = %q", v)
	}
	if n := testing.AllocsPerRun(100, func() { headerNumber(st, slotTotal, h1, 987654321) }); n != 0 {
		t.Errorf("HTTP/1 slot path allocates %v times", n)
	}
	p := headerNumber(st, slotPosition, h1, 55555)
	if v[0] != "987654321" || p[0] != "55555" {
		t.Errorf("slots overlap: total %q position %q", v[0], p[0])
	}
	x := headerNumber(st, slotTotal, h2, 424242)
	y := headerNumber(st, slotTotal, h2, 434343)
	if x[0] != "424242" || y[0] != "434343" {
		t.Errorf("HTTP/2 values share storage: %q %q", x[0], y[0])
	}
}
