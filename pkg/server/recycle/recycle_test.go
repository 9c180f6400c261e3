package recycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
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

// TestPositionPastTable: positions past the shared table come from
// per-connection chunks: right values across chunk boundaries, a capped
// one-element slice that an append cannot spill into the next value, and
// two allocations per chunk rather than per response.
func TestPositionPastTable(t *testing.T) {
	st := &connState{}
	for n := uint64(numberTableSize - 5); n < numberTableSize+3*posChunkSize+7; n++ {
		v := st.position(n)
		if len(v) != 1 || cap(v) != 1 || v[0] != strconv.FormatUint(n, 10) {
			t.Fatalf("position(%d) = %q (cap %d)", n, v, cap(v))
		}
		_ = append(v, "x")
	}
	// Far past the table, across a power of ten, and backwards (HTTP/2
	// streams may count out of order).
	for _, n := range []uint64{99_999, 100_000, 100_001, 1 << 40, 12_345, 1<<64 - 1, 12_344} {
		if v := st.position(n); v[0] != strconv.FormatUint(n, 10) {
			t.Errorf("position(%d) = %q", n, v[0])
		}
	}
	next := uint64(posChunkSize * 4000) // a chunk boundary
	allocs := testing.AllocsPerRun(10, func() {
		for range 4 * posChunkSize {
			st.position(next)
			next++
		}
	})
	if allocs > 4*2 {
		t.Errorf("%v allocations per %d positions, want at most 8 (two per chunk)", allocs, 4*posChunkSize)
	}
}

// TestDrainKeepsNewConnections: an HTTP/2 connection that arrives during
// the drain turns idle after its preface, before its first request. It must
// stay open (it used to be closed, resetting the request its client was
// sending: issue 16); that request then closes it.
func TestDrainKeepsNewConnections(t *testing.T) {
	rc, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	rc.Drain()
	late, lateClient := net.Pipe()
	defer lateClient.Close()
	defer late.Close()
	ctx := rc.ConnContext(context.Background(), late)
	rc.ConnState(late, http.StateActive)
	rc.ConnState(late, http.StateIdle) // the HTTP/2 preface was read
	lateClient.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := lateClient.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection during the drain: read err %v, want it left open", err)
	}
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	rc.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Errorf("its first response says Connection %q, want close", got)
	}
	if got := rc.Stats().RecycledBy(ReasonShutdown); got != 1 {
		t.Errorf("shutdown recycles %d, want 1", got)
	}
}

func TestJitterBounds(t *testing.T) {
	tests := []struct {
		n      int
		j      float64
		lo, hi uint64
	}{
		{100, 0.1, 90, 110},
		{5, 0.5, 3, 7},  // ceil(2.5), floor(7.5)
		{1, 1, 1, 2},    // never below 1
		{10, 0, 10, 10}, // no jitter
		{3, 0.2, 3, 3},  // [2.4, 3.6] holds only 3
		{1000, 1, 1, 2000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d±%v", tt.n, tt.j), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			seen := map[uint64]bool{}
			for range 20000 {
				v := jitterInt(r, tt.n, tt.j)
				if v < tt.lo || v > tt.hi {
					t.Fatalf("jitterInt(%d, %v) = %d, outside [%d, %d]", tt.n, tt.j, v, tt.lo, tt.hi)
				}
				seen[v] = true
			}
			if !seen[tt.lo] || !seen[tt.hi] {
				t.Errorf("never drew an end of [%d, %d]: lo %v hi %v", tt.lo, tt.hi, seen[tt.lo], seen[tt.hi])
			}
		})
	}
	r := rand.New(rand.NewPCG(1, 1))
	var minD, maxD time.Duration = time.Hour, 0
	for range 20000 {
		d := jitterDuration(r, 10*time.Second, 0.1)
		minD, maxD = min(minD, d), max(maxD, d)
	}
	if minD < 9*time.Second || maxD > 11*time.Second || minD > 9100*time.Millisecond || maxD < 10900*time.Millisecond {
		t.Errorf("jitterDuration(10s, 0.1) drew [%v, %v], want spread over [9s, 11s]", minD, maxD)
	}
}

// FuzzJitterInt: every draw lies within [n(1-j), n(1+j)] and is at least 1.
func FuzzJitterInt(f *testing.F) {
	f.Add(100, 0.1, uint64(1))
	f.Add(1, 1.0, uint64(2))
	f.Add(7, 0.33, uint64(3))
	f.Fuzz(func(t *testing.T, n int, j float64, seed uint64) {
		if n <= 0 || n > 1<<40 || !(j >= 0 && j <= 1) {
			t.Skip()
		}
		r := rand.New(rand.NewPCG(seed, seed))
		v := float64(jitterInt(r, n, j))
		lo, hi := max(float64(n)*(1-j), 1), max(float64(n)*(1+j), 1)
		if v < lo-1e-6*lo || v > hi+1e-6*hi {
			t.Fatalf("jitterInt(%d, %v) = %v outside [%v, %v]", n, j, v, lo, hi)
		}
	})
}

// TestKeptHeadersStayPut: a handler or middleware may keep a response's
// headers (Header.Clone, a log, a cache). The position header of an earlier
// request must not change when later requests on the same connection are
// served, past the shared table of small numbers too.
func TestKeptHeadersStayPut(t *testing.T) {
	rc, err := New(Config{PositionHeader: "X-Pos"})
	if err != nil {
		t.Fatal(err)
	}
	const start = numberTableSize - 3 // the first request is numberTableSize-2
	var mu sync.Mutex
	var kept []http.Header
	keep := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		kept = append(kept, w.Header()) // the live map, as a careless cache would
		mu.Unlock()
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: rc.Wrap(keep)}
	rc.Install(srv)
	inner := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		ctx = inner(ctx, c)
		ctx.Value(connKey{}).(*connState).requests.Store(start)
		return ctx
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	const n = 6
	for i := range n {
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got, want := resp.Header.Get("X-Pos"), strconv.Itoa(start+1+i); got != want {
			t.Fatalf("request %d: X-Pos on the wire %s, want %s", i, got, want)
		}
	}
	if rc.Stats().TotalConns != 1 {
		t.Fatalf("requests used %d connections, want 1", rc.Stats().TotalConns)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, h := range kept {
		if got, want := h.Get("X-Pos"), strconv.Itoa(start+1+i); got != want {
			t.Errorf("kept header of request %d reads %s after later requests, want %s", i, got, want)
		}
	}
}

// TestNewNamesFields: every problem with Config is a *FieldError naming the
// Config field.
func TestNewNamesFields(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{MaxRequests: -1}, "MaxRequests: must not be negative, got -1"},
		{Config{MaxRequestsJitter: 2}, "MaxRequestsJitter: must be within 0..1, got 2"},
		{Config{MaxConnAge: -time.Second}, "MaxConnAge: must not be negative, got -1s"},
		{Config{MaxConnAgeJitter: -1}, "MaxConnAgeJitter: must be within 0..1, got -1"},
		{Config{MaxConnAgeGrace: -time.Second}, "MaxConnAgeGrace: must not be negative, got -1s"},
		{Config{PositionHeader: "a b"}, `PositionHeader: "a b" is not a valid header name`},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(tt.want, fe.Field+": ") {
			t.Errorf("New(%+v): %v is not a *FieldError for its field", tt.cfg, err)
		}
	}
}
