package report

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

// The backend lookup caches names by the address of their bytes. Fed the
// same results once with interned names (one address per name, as the
// decoders hand them out) and once with a fresh copy of every name (every
// address new), the summaries must be the same, with few and many backends
// and with names folded past the cap.
func TestBackendAddressCacheSameSummary(t *testing.T) {
	for _, tc := range []struct {
		backends, max int
	}{
		{1, 0}, {3, 0}, {16, 0}, {17, 0}, {40, 0}, {300, 100}, {40, 2}, {10, -1},
	} {
		t.Run(strconv.Itoa(tc.backends)+"-max"+strconv.Itoa(tc.max), func(t *testing.T) {
			names := make([]string, tc.backends)
			for i := range names {
				names[i] = "pod-" + strconv.Itoa(i)
			}
			names[0] = "" // no backend header: the remote address row
			var sums [2]string
			for pass, fresh := range []bool{false, true} {
				a := NewAggregator(Options{MaxBackends: tc.max})
				for i := range 5000 {
					// Mostly alternating, sometimes repeating, sometimes far.
					k := (i * 7 / 3) % tc.backends
					if i%11 == 0 {
						k = (i * 13) % tc.backends
					}
					name := names[k]
					if fresh {
						name = strings.Clone(name)
					}
					a.addT(&client.Result{
						Seq: uint64(i), Start: time.Duration(i) * time.Millisecond, Latency: time.Duration(1+i%50) * time.Millisecond,
						Status: 200, Backend: name, Conn: uint64(1 + i%64), ConnReq: uint32(1 + i/64), ServerTotal: -1,
					})
				}
				j, err := json.Marshal(a.Summary())
				if err != nil {
					t.Fatal(err)
				}
				sums[pass] = string(j)
			}
			if sums[0] != sums[1] {
				t.Fatalf("interned and copied names give different summaries:\n%s\n%s", sums[0], sums[1])
			}
		})
	}
}

// Requests go to the interval (Start+shift+Delay-From)/Interval even when
// offsets jump back and forth across interval boundaries, which the
// aggregator's cache of the last interval must not blur. Expected counts
// and latencies computed by hand: From 1s, intervals of 700ms, so interval
// k covers [1s+0.7k s, 1.7s+0.7k s); each request's latency is (k+1) ms, so
// every interval's p50 and p99 is exactly its k+1.
func TestIntervalOfOutOfOrderOffsets(t *testing.T) {
	a := NewAggregator(Options{From: time.Second, Interval: 700 * time.Millisecond})
	for i, c := range []struct {
		off time.Duration
		k   int
	}{
		{1000 * time.Millisecond, 0},
		{1700*time.Millisecond - 1, 0},
		{1700 * time.Millisecond, 1},
		{1650 * time.Millisecond, 0},
		{2400 * time.Millisecond, 2},
		{2400*time.Millisecond - 1, 1},
		{1000 * time.Millisecond, 0},
		{3500 * time.Millisecond, 3},
		{3099 * time.Millisecond, 2},
		{999 * time.Millisecond, -1}, // before From: not counted
	} {
		a.addT(&client.Result{
			Seq: uint64(i), Start: c.off - time.Duration(c.k+1)*time.Microsecond, Delay: time.Duration(c.k+1) * time.Microsecond,
			Latency: time.Duration(c.k+1) * time.Millisecond, Status: 200, Backend: "b", Conn: 1, ConnReq: uint32(i + 1), ServerTotal: -1,
		})
	}
	s := a.Summary()
	want := []uint64{4, 2, 2, 1}
	if len(s.Timeline.Intervals) < len(want) {
		t.Fatalf("%d intervals, want at least %d", len(s.Timeline.Intervals), len(want))
	}
	for k, n := range want {
		iv := s.Timeline.Intervals[k]
		if iv.Requests != n {
			t.Errorf("interval %d: %d requests, want %d", k, iv.Requests, n)
		}
		ms := float64(k + 1)
		if iv.LatencyP50 == nil || iv.LatencyP99 == nil || *iv.LatencyP50 != ms || *iv.LatencyP99 != ms {
			t.Errorf("interval %d: p50 %v p99 %v, want %v ms", k, iv.LatencyP50, iv.LatencyP99, ms)
		}
	}
	if s.Requests != 9 {
		t.Errorf("%d requests, want 9", s.Requests)
	}
}

// Error kinds are remembered by gRPC code, text or status; mixed and
// repeated, each still counts under its own kind (counted by hand), texts
// past maxKindText included.
func TestErrorKindsRemembered(t *testing.T) {
	long := strings.Repeat("x", maxKindText) + " connection reset by peer"
	cases := []struct {
		r    client.Result
		kind string
	}{
		{client.Result{Status: 200, GRPCCode: 14}, "grpc Unavailable"},
		{client.Result{Status: 503}, "http 503"},
		{client.Result{Status: 500}, "http 500"},
		{client.Result{Err: "dial tcp 127.0.0.1:9: connect: connection refused"}, "connection refused"},
		{client.Result{Err: "read: i/o timeout", Status: 503}, "timeout"},
		{client.Result{Err: "unexpected EOF"}, "eof"},
		{client.Result{Err: long}, "connection reset"},
		{client.Result{Err: client.ErrInterrupted}, "interrupted"},
	}
	a := NewAggregator(Options{})
	want := map[string]uint64{}
	for i := range 200 {
		c := cases[(i*5+i/7)%len(cases)]
		r := c.r
		r.Seq, r.Start, r.Backend, r.ServerTotal = uint64(i), time.Duration(i)*time.Millisecond, "b", -1
		a.addT(&r)
		want[c.kind]++
	}
	got := a.Summary().ErrorKinds
	if len(got) != len(want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
