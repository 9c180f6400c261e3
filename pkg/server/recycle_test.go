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
