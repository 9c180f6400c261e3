package report

import (
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// feeder hands out results with plausible connection bookkeeping: each
// backend keeps one connection, closed by the server every perConn requests.
type feeder struct {
	sink    func(*client.Result)
	perConn uint32
	nextID  uint64
	conns   map[string]*struct {
		id  uint64
		req uint32
	}
}

// addT folds r into the aggregator's first run, added on first use: a
// shorthand for tests of one run.
func (a *Aggregator) addT(r *client.Result) {
	if len(a.runs) == 0 {
		if _, err := a.AddRun(results.Header{}); err != nil {
			panic(err)
		}
	}
	a.add(a.runs[0], r)
}

func newFeeder(a *Aggregator, perConn uint32) *feeder { return newSinkFeeder(a.addT, perConn) }

func newSinkFeeder(sink func(*client.Result), perConn uint32) *feeder {
	return &feeder{sink: sink, perConn: perConn, conns: map[string]*struct {
		id  uint64
		req uint32
	}{}}
}

// add feeds n requests to backend spread evenly over [from, from+span).
func (f *feeder) add(backend string, from, span time.Duration, n int) {
	for i := range n {
		c := f.conns[backend]
		if c == nil || (f.perConn > 0 && c.req >= f.perConn) {
			f.nextID++
			c = &struct {
				id  uint64
				req uint32
			}{id: f.nextID}
			f.conns[backend] = c
		}
		c.req++
		r := client.Result{
			Start:   from + span*time.Duration(i)/time.Duration(n),
			Latency: time.Duration(1+i%10) * time.Millisecond,
			Status:  200, Backend: backend, Conn: c.id, ConnReq: c.req, ServerTotal: -1,
		}
		if f.perConn > 0 && c.req == f.perConn {
			r.Close = client.CloseServer
		}
		f.sink(&r)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestFairness(t *testing.T) {
	tests := []struct {
		name                  string
		counts                []int
		jain, minS, maxS, mmr float64
		cv                    float64
	}{
		{"even", []int{100, 100, 100, 100}, 1, 0.25, 0.25, 1, 0},
		{"three to one", []int{300, 100}, 0.8, 0.25, 0.75, 3, 0.5},
		{"all on one of four", []int{400, 1, 1, 1}, 403.0 * 403 / (4 * (160000 + 3)), 1.0 / 403, 400.0 / 403, 400, math.Sqrt((160000+3)/4.0-(403/4.0)*(403/4.0)) / (403 / 4.0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Options{})
			f := newFeeder(a, 0)
			for i, n := range tt.counts {
				f.add(string(rune('a'+i)), 0, time.Second, n)
			}
			got := a.Summary().Fairness
			if got == nil || !near(got.Jain, tt.jain) || !near(got.MinShare, tt.minS) || !near(got.MaxShare, tt.maxS) ||
				got.MaxMinRatio == nil || !near(*got.MaxMinRatio, tt.mmr) || !near(got.CV, tt.cv) {
				t.Errorf("fairness = %+v, want jain %v min %v max %v max/min %v cv %v", got, tt.jain, tt.minS, tt.maxS, tt.mmr, tt.cv)
			}
		})
	}
}

func TestTotalsAndConnections(t *testing.T) {
	a := NewAggregator(Options{})
	f := newFeeder(a, 4)
	f.add("pod-a", 0, 2*time.Second, 10) // connections of 4,4,2 requests
	f.add("pod-b", 0, 2*time.Second, 8)  // 4,4
	// a refused dial: no backend, no connection
	a.addT(&client.Result{Start: time.Second, Err: "dial tcp: connect: connection refused", ServerTotal: -1})
	// a 503 from pod-b on a new connection
	a.addT(&client.Result{Start: 1500 * time.Millisecond, Latency: time.Millisecond, Status: 503, Backend: "pod-b", Conn: 99, ConnReq: 1, ServerTotal: -1})

	s := a.Summary()
	if s.Requests != 20 || s.Errors != 2 || s.Connections != 6 || s.Unattributed != 1 {
		t.Fatalf("requests %d errors %d connections %d unattributed %d; want 20 2 6 1", s.Requests, s.Errors, s.Connections, s.Unattributed)
	}
	if s.CloseReasons["server-close"] != 4 {
		t.Errorf("close reasons = %v, want 4 server-close", s.CloseReasons)
	}
	if s.ErrorKinds["connection refused"] != 1 || s.ErrorKinds["http 503"] != 1 {
		t.Errorf("error kinds = %v", s.ErrorKinds)
	}
	if len(s.Backends) != 2 || s.Backends[0].Name != "pod-a" || s.Backends[0].Connections != 3 || s.Backends[1].Connections != 3 {
		t.Fatalf("backends = %+v", s.Backends)
	}
	if b := s.Backends[1]; b.Requests != 9 || b.Errors != 1 || !near(b.Share, 9.0/19) || b.RequestsPerConnection == nil || !near(*b.RequestsPerConnection, 3) {
		t.Errorf("pod-b = %+v", b)
	}
	if s.RequestsPerConnection == nil || *s.RequestsPerConnection != 3.333 {
		t.Errorf("requests per connection = %v", s.RequestsPerConnection)
	}
	// Latencies 1..10ms (refused dial excluded): p50 5ms, max 10ms; HDR
	// reports the top of a bucket, within 0.1%.
	if math.Abs(s.Latency.P50-5) > 0.005 || math.Abs(s.Latency.P99-10) > 0.01 || s.Latency.Max != 10 {
		t.Errorf("latency = %+v", s.Latency)
	}
	if s.DurationSeconds <= 1.8 || s.DurationSeconds > 2 || !near(s.RPS, round(20/s.DurationSeconds, 3)) {
		t.Errorf("duration %v rps %v", s.DurationSeconds, s.RPS)
	}
}

func TestServerTotal(t *testing.T) {
	a := NewAggregator(Options{})
	for i, tot := range []int64{100, 105, 110, 3} {
		a.addT(&client.Result{Start: time.Duration(i) * time.Second, Status: 200, Backend: "p", Conn: 1, ConnReq: uint32(i + 1), ServerTotal: tot})
	}
	a.addT(&client.Result{Start: 10 * time.Second, Status: 200, Backend: "q", Conn: 2, ConnReq: 1, ServerTotal: -1})
	s := a.Summary()
	if d := s.Backends[0].ServerTotalDelta; d == nil || *d != -97 || !s.Backends[0].Restarted {
		t.Errorf("p: delta %v restarted %v, want -97 true", d, s.Backends[0].Restarted)
	}
	if s.Backends[1].ServerTotalDelta != nil {
		t.Errorf("q without header has delta %v", *s.Backends[1].ServerTotalDelta)
	}
}

// scaleUp feeds 10s of traffic: pod-a and pod-b from 0s, pod-c from 5s with
// the given per-interval counts for pod-c (pod-a and pod-b share the rest of 20).
func scaleUp(a *Aggregator, cCounts []int) { scaleUpWith(newFeeder(a, 0), cCounts) }

func scaleUpWith(f *feeder, cCounts []int) {
	for k := range 10 {
		from := time.Duration(k) * time.Second
		c := 0
		if k >= 5 {
			c = cCounts[k-5]
		}
		rest := 20 - c
		f.add("pod-a", from, time.Second, (rest+1)/2)
		f.add("pod-b", from, time.Second, rest/2)
		if c > 0 {
			f.add("pod-c", from, time.Second, c)
		}
	}
}

func TestRebalance(t *testing.T) {
	tests := []struct {
		name    string
		c       []int
		after   float64 // -1: never
		share   float64
		verdict string
	}{
		// 80% of 1/3 is 0.2667 of 20 requests = 5.33: 6 requests reach it.
		{"reaches in third interval", []int{2, 5, 6, 7, 7}, 3, 27.0 / 100, "3 backends; shares 13.5%–44.0% (Jain 0.85); pod-c appeared at 5.0s and reached its fair share after 3.0s"},
		{"reaches at once", []int{7, 7, 7, 7, 7}, 1, 35.0 / 100, "pod-c appeared at 5.0s and reached its fair share after 1.0s"},
		{"never", []int{1, 1, 1, 1, 1}, -1, 5.0 / 100, "pod-c appeared at 5.0s but received only 5.0% of requests after that (fair share 33.3%): stuck: connections are not being rebalanced (no server closed a connection)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Options{})
			scaleUp(a, tt.c)
			s := a.Summary()
			if len(s.Rebalance) != 1 {
				t.Fatalf("rebalance = %+v, want one entry for pod-c", s.Rebalance)
			}
			r := s.Rebalance[0]
			if r.Backend != "pod-c" || r.AppearedSeconds != 5 || !near(r.ShareAfter, tt.share) || !near(r.FairShare, 1.0/3) {
				t.Errorf("rebalance = %+v", r)
			}
			switch {
			case tt.after < 0 && r.FairShareAfterSeconds != nil:
				t.Errorf("reached after %v, want never", *r.FairShareAfterSeconds)
			case tt.after >= 0 && (r.FairShareAfterSeconds == nil || *r.FairShareAfterSeconds != tt.after):
				t.Errorf("reached after %v, want %v", r.FairShareAfterSeconds, tt.after)
			}
			if !strings.Contains(s.Verdict, tt.verdict) {
				t.Errorf("verdict = %q, want it to contain %q", s.Verdict, tt.verdict)
			}
			want := time.Duration(tt.after * float64(time.Second))
			if tt.after < 0 {
				want = math.MaxInt64
			}
			if got := s.RebalanceWorst(); got != want {
				t.Errorf("RebalanceWorst = %v, want %v", got, want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	c := []int{7, 7, 7, 7, 7}
	t.Run("from after the scale-up", func(t *testing.T) {
		a := NewAggregator(Options{From: 5 * time.Second})
		scaleUp(a, c)
		s := a.Summary()
		if s.Requests != 100 || len(s.Backends) != 3 || len(s.Rebalance) != 0 {
			t.Fatalf("requests %d backends %d rebalance %v; want 100 3 none", s.Requests, len(s.Backends), s.Rebalance)
		}
		if !near(s.Fairness.MinShare, 0.3) || !near(s.Fairness.MaxShare, 0.35) || *s.Backends[0].FirstSeenSeconds != 5 {
			t.Errorf("fairness %+v, first seen %v", s.Fairness, s.Backends[0].FirstSeenSeconds)
		}
		if s.Timeline.StartSeconds != 5 || len(s.Timeline.Intervals) != 5 || s.Timeline.Intervals[0].StartSeconds != 5 {
			t.Errorf("timeline starts %v with %d intervals", s.Timeline.StartSeconds, len(s.Timeline.Intervals))
		}
		// The last request started at 9+6/7s and took 7ms.
		if want := round(9+6.0/7+0.007-5, 6); s.DurationSeconds != want {
			t.Errorf("duration = %v, want %v", s.DurationSeconds, want)
		}
		// A connection that began before the window counts once inside it.
		if s.Connections != 3 {
			t.Errorf("connections = %d, want 3", s.Connections)
		}
	})
	t.Run("to before the scale-up", func(t *testing.T) {
		a := NewAggregator(Options{To: 5 * time.Second})
		scaleUp(a, c)
		s := a.Summary()
		if s.Requests != 100 || len(s.Backends) != 2 || !near(s.Fairness.Jain, 1) || s.DurationSeconds != 5 {
			t.Fatalf("requests %d backends %d jain %v duration %v", s.Requests, len(s.Backends), s.Fairness.Jain, s.DurationSeconds)
		}
	})
	t.Run("between", func(t *testing.T) {
		a := NewAggregator(Options{From: 2 * time.Second, To: 3500 * time.Millisecond})
		scaleUp(a, c)
		if s := a.Summary(); s.Requests != 30 || s.DurationSeconds != 1.5 || s.RPS != 20 {
			t.Fatalf("requests %d duration %v rps %v; want 30 1.5 20", s.Requests, s.DurationSeconds, s.RPS)
		}
	})
}

func TestMerge(t *testing.T) {
	a := NewAggregator(Options{})
	run0, err := a.AddRun(results.Header{Label: "hammer-0", URL: "http://x/", Start: t0, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	run1, err := a.AddRun(results.Header{Label: "hammer-1", URL: "http://x/", Start: t0.Add(-2 * time.Second), Connections: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Run 0 started 2s after run 1: its offset 0 is the merged 2s.
	newSinkFeeder(run0.Add, 0).add("pod-a", 0, time.Second, 10)
	newSinkFeeder(run1.Add, 0).add("pod-b", 0, time.Second, 10)
	// Connection ids repeat across runs but are different connections.
	s := a.Summary()
	if s.Connections != 2 || s.PerfectConnections != 5 || len(s.Runs) != 2 || s.Runs[0].Label != "hammer-0" || s.Runs[1].Requests != 10 {
		t.Fatalf("connections %d perfect %d runs %+v", s.Connections, s.PerfectConnections, s.Runs)
	}
	if s.Backends[0].Name != "pod-b" || *s.Backends[0].FirstSeenSeconds != 0 || *s.Backends[1].FirstSeenSeconds != 2 {
		t.Errorf("backends = %+v", s.Backends)
	}
	if iv := s.Timeline.Intervals; len(iv) != 3 || iv[0].Counts[0] != 10 || iv[1].Requests != 0 || iv[2].Counts[1] != 10 {
		t.Errorf("timeline = %+v", iv)
	}
	if len(s.Rebalance) != 1 || s.Rebalance[0].Backend != "pod-a" {
		t.Errorf("rebalance = %+v", s.Rebalance)
	}
	if _, err := a.AddRun(results.Header{Label: "late", Start: t0.Add(-time.Hour)}); !errors.Is(err, ErrEarlierRunAfterResults) {
		t.Errorf("adding an earlier run after results: %v, want ErrEarlierRunAfterResults", err)
	}
	later, err := a.AddRun(results.Header{Label: "later", Start: t0.Add(time.Hour)})
	if err != nil {
		t.Fatalf("adding a later run after results: %v", err)
	}
	// Each run's handle counts towards its own run, whatever the order of calls.
	later.Add(&client.Result{Status: 200, Backend: "pod-a", Conn: 1, ConnReq: 1, ServerTotal: -1})
	run0.Add(&client.Result{Start: 500 * time.Millisecond, Status: 200, Backend: "pod-a", Conn: 77, ConnReq: 1, ServerTotal: -1})
	s = a.Summary()
	if got := []uint64{s.Runs[0].Requests, s.Runs[1].Requests, s.Runs[2].Requests}; got[0] != 11 || got[1] != 10 || got[2] != 1 {
		t.Errorf("requests per run = %v, want [11 10 1]", got)
	}
}

func TestEmpty(t *testing.T) {
	s := NewAggregator(Options{}).Summary()
	if s.Requests != 0 || s.Verdict != "no data: no requests in the window 0s..end" || s.Outcome != OutcomeNoData || s.Backends == nil {
		t.Fatalf("empty summary = %+v", s)
	}
}

func TestTimelineBounded(t *testing.T) {
	a := NewAggregator(Options{Interval: time.Millisecond})
	a.addT(&client.Result{Start: 1000 * time.Hour, Status: 200, Backend: "x", Conn: 1 << 40, ConnReq: 1, ServerTotal: -1})
	a.addT(&client.Result{Start: -time.Second, Status: 200, Backend: "x", Conn: 1, ConnReq: 1, ServerTotal: -1})
	s := a.Summary()
	// The negative offset is before the window; the far one counts but stays
	// off the timeline, and its huge connection id costs no bitset.
	if s.Requests != 1 || s.Connections != 1 || len(s.Timeline.Intervals) != 0 || cap(a.runs[0].connSeen) != 0 {
		t.Fatalf("requests %d connections %d intervals %d", s.Requests, s.Connections, len(s.Timeline.Intervals))
	}
}

// Past linearScanBackends the lookup goes through the pointer cache and the
// map; names that are equal but live at different addresses, and names that
// share an address prefix, must still land on the right backend.
func TestManyBackendsLookup(t *testing.T) {
	a := NewAggregator(Options{})
	const n = 40
	base := "pod-" + strings.Repeat("x", 40)
	for round := range 3 {
		for i := range n {
			var name string
			switch round {
			case 0:
				name = "pod-" + strconv.Itoa(i) // a fresh allocation
			case 1:
				name = strings.Clone("pod-" + strconv.Itoa(i))
			default:
				name = base[:4+i%20] // same address, different lengths: 20 names
			}
			a.addT(&client.Result{Status: 200, Backend: name, Conn: uint64(round*n + i + 1), ConnReq: 1, ServerTotal: -1})
		}
	}
	s := a.Summary()
	if len(s.Backends) != n+20 || s.Requests != 3*n {
		t.Fatalf("%d backends, %d requests; want %d, %d", len(s.Backends), s.Requests, n+20, 3*n)
	}
	for _, b := range s.Backends {
		// Every name came twice: rounds 0 and 1 for pod-N, round 2 cycles 20 prefixes over 40 results.
		const want = 2
		if b.Requests != want || b.Connections != want {
			t.Errorf("%s: %d requests on %d connections, want %d", b.Name, b.Requests, b.Connections, want)
		}
	}
}

// A known backend that answered nothing is invisible to the client; listed in
// Options.Backends it counts with zero requests.
func TestKnownIdleBackends(t *testing.T) {
	a := NewAggregator(Options{Backends: []string{"pod-a", "pod-c", "pod-b", "pod-c", ""}})
	f := newFeeder(a, 0)
	f.add("pod-a", 0, time.Second, 300)
	f.add("pod-b", 0, time.Second, 100)
	s := a.Summary()
	var names []string
	for _, b := range s.Backends {
		names = append(names, b.Name+":"+strconv.FormatUint(b.Requests, 10))
	}
	if got := strings.Join(names, " "); got != "pod-a:300 pod-b:100 pod-c:0" {
		t.Fatalf("backends %s, want pod-a:300 pod-b:100 pod-c:0", got)
	}
	// Jain over (300, 100, 0): 400² / (3 · 100000).
	if f := s.Fairness; !near(f.Jain, 400.0*400/(3*100000)) || f.MinShare != 0 || !near(f.MaxShare, 0.75) {
		t.Errorf("fairness %+v", f)
	}
	if !strings.Contains(s.Verdict, "pod-c received no requests") {
		t.Errorf("verdict %q does not name the idle backend", s.Verdict)
	}
	if len(s.Timeline.Backends) != 3 || s.Timeline.Backends[2] != "pod-c" {
		t.Errorf("timeline backends %v", s.Timeline.Backends)
	}
	for _, format := range Formats {
		if err := Render(io.Discard, &Report{Summary: s}, format); err != nil {
			t.Errorf("render %s: %v", format, err)
		}
	}
}

func TestFamily(t *testing.T) {
	for _, tt := range []struct {
		h    results.Header
		want string
	}{
		{results.Header{Label: "hammer-0", URL: "http://svc/"}, "hammer http://svc/"},
		{results.Header{Label: "hammer-12", URL: "http://svc/"}, "hammer http://svc/"},
		{results.Header{Label: "h0", URL: "http://svc/"}, "h http://svc/"},
		{results.Header{Label: "3", URL: "http://svc/"}, "http://svc/"},
		{results.Header{URL: "http://svc/"}, "http://svc/"},
		{results.Header{Label: "max-requests=5", Meta: map[string]string{"lab.scenario": "max-requests=5"}}, "lab scenario max-requests=5"},
	} {
		if got := Family(tt.h); got != tt.want {
			t.Errorf("Family(%+v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}
