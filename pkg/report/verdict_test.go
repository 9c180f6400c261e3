package report

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

// The verdict rules in one table: every outcome, the cause named, and the
// figures behind each computed by hand.
func TestVerdictRules(t *testing.T) {
	type load struct {
		backend  string
		from     time.Duration
		span     time.Duration
		n        int
		perConn  uint32
		failDial bool
	}
	// decaying: pod-c appears at 5s and gets 9, 8, 6, 4, 3 of 30 requests per
	// second: 30 of 150 = 20% against a fair 33.3%; in the last half
	// (intervals 7..9 of 5..9) 13 of 90 = 14.4%.
	decaying := []load{{"pod-a", 0, 5 * time.Second, 75, 0, false}, {"pod-b", 0, 5 * time.Second, 75, 0, false}}
	for k, c := range []int{9, 8, 6, 4, 3} {
		from := time.Duration(5+k) * time.Second
		decaying = append(decaying, load{"pod-c", from, time.Second, c, 0, false},
			load{"pod-a", from, time.Second, (30 - c + 1) / 2, 0, false}, load{"pod-b", from, time.Second, (30 - c) / 2, 0, false})
	}
	tests := []struct {
		name    string
		known   []string
		loads   []load
		want    Outcome
		verdict []string
	}{
		{"even", nil, []load{{"pod-a", 0, 10 * time.Second, 100, 0, false}, {"pod-b", 0, 10 * time.Second, 100, 0, false}, {"pod-c", 0, 10 * time.Second, 90, 0, false}},
			// 90/290 = 31.0% >= 80% of 33.3% = 26.7%
			OutcomeEven, []string{"3 backends; shares 31.0%–34.5%", "even: every backend within 20% of an even share"}},
		{"99.5% on one of three", nil, []load{{"pod-a", 0, 10 * time.Second, 995, 0, false}, {"pod-b", 0, 10 * time.Second, 3, 0, false}, {"pod-c", 0, 10 * time.Second, 2, 0, false}},
			OutcomeConcentrated, []string{"concentrated: pod-a got 99.5% of requests"}},
		{"uneven", nil, []load{{"pod-a", 0, 10 * time.Second, 60, 0, false}, {"pod-b", 0, 10 * time.Second, 30, 0, false}, {"pod-c", 0, 10 * time.Second, 10, 0, false}},
			OutcomeUneven, []string{"uneven: the smallest share 10.0% is under 80% of an even 33.3%"}},
		{"one backend, none known", nil, []load{{"pod-a", 0, 10 * time.Second, 100, 0, false}},
			OutcomeNoData, []string{"1 backend (pod-a) received all requests; fairness not judged: " + NoDataOneBackend}},
		{"all failed", nil, []load{{"", 0, 10 * time.Second, 7, 0, true}},
			OutcomeNoData, []string{"no data: no backend answered; all 7 requests failed"}},
		{"known idle backend while servers recycle", []string{"web-u", "web-v", "web-w"},
			[]load{{"web-u", 0, 10 * time.Second, 500, 5, false}, {"web-v", 0, 10 * time.Second, 500, 5, false}},
			// 100 connections of 5 requests each per backend, every last one closed by the server
			OutcomeStuck, []string{"web-w never received a connection although the servers closed 200: is it behind the balancer?"}},
		{"known idle backend, no recycling", []string{"web-u", "web-v"}, []load{{"web-u", 0, 10 * time.Second, 500, 0, false}},
			OutcomeStuck, []string{"web-v received no requests and no server closed a connection: keep-alive connections are not being rebalanced"}},
		{"scale-up, decaying share", nil, decaying,
			OutcomePartial, []string{"pod-c appeared at 5.0s but received only 20.0% of requests after that (fair share 33.3%), falling to 14.4% in the last half: partial"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Options{Backends: tt.known})
			feeders := map[uint32]*feeder{}
			for _, l := range tt.loads {
				if l.failDial {
					for i := range l.n {
						a.addT(&client.Result{Start: l.from + l.span*time.Duration(i)/time.Duration(l.n), Err: "dial tcp: connect: connection refused", ServerTotal: -1})
					}
					continue
				}
				f := feeders[l.perConn]
				if f == nil {
					f = newFeeder(a, l.perConn)
					feeders[l.perConn] = f
				}
				f.add(l.backend, l.from, l.span, l.n)
			}
			s := a.Summary()
			if s.Outcome != tt.want {
				t.Errorf("outcome %q, want %q; verdict %q", s.Outcome, tt.want, s.Verdict)
			}
			for _, w := range tt.verdict {
				if !strings.Contains(s.Verdict, w) {
					t.Errorf("verdict %q lacks %q", s.Verdict, w)
				}
			}
			if tt.want != OutcomeRebalanced && strings.Contains(s.Verdict, "reached its fair share") {
				t.Errorf("verdict %q claims a rebalance", s.Verdict)
			}
		})
	}
}

func TestJudgeShare(t *testing.T) {
	for _, tt := range []struct {
		share, fair float64
		held        bool
		want        Outcome
	}{
		{0.227, 0.333, false, OutcomePartial}, // lab --max-requests 0,5,50, scenario 50
		{0.227, 0.333, true, OutcomePartial},  // 68% of fair: under 80% even if steady
		{0.30, 0.333, true, OutcomeRebalanced},
		{0.30, 0.333, false, OutcomePartial},
		{0.05, 0.333, false, OutcomeStuck},
		{0.0, 0.5, false, OutcomeStuck},
		{0.5, 0, false, OutcomeNoData},
	} {
		if got := JudgeShare(tt.share, tt.fair, tt.held); got != tt.want {
			t.Errorf("JudgeShare(%v, %v, %v) = %s, want %s", tt.share, tt.fair, tt.held, got, tt.want)
		}
	}
}

// A run that ends mid-interval: pod-a and pod-b from 0s, pod-c from 2s, all
// even (10 requests per backend per second), the last requests starting at
// 4.05s, so the run ends at 4.06s. The spill-over interval 4s–4.06s holds
// one request, pod-c's, and is not drawn; pod-c's fair share over 2s..end
// is about 1/3, not the 100% of the partial bucket where it alone answered.
func TestRunEndingMidInterval(t *testing.T) {
	a := NewAggregator(Options{})
	f := newFeeder(a, 0)
	f.add("pod-a", 0, 4*time.Second, 40)
	f.add("pod-b", 0, 4*time.Second, 40)
	f.add("pod-c", 2*time.Second, 2*time.Second, 20)
	// Latencies 1..10ms; one late request at 4.05s with 10ms.
	a.addT(&client.Result{Start: 4050 * time.Millisecond, Latency: 10 * time.Millisecond, Status: 200, Backend: "pod-c", Conn: 99, ConnReq: 2, ServerTotal: -1})
	s := a.Summary()
	tl := s.Timeline
	if len(tl.Intervals) != 5 || tl.EndSeconds != 4.06 || tl.Intervals[4].EndSeconds != 4.06 || tl.Intervals[3].EndSeconds != 4 || !tl.Partial(4) || tl.Partial(3) {
		t.Fatalf("timeline end %v, intervals %+v", tl.EndSeconds, tl.Intervals)
	}
	if len(s.Rebalance) != 1 {
		t.Fatalf("rebalance %+v", s.Rebalance)
	}
	r := s.Rebalance[0]
	// 2s..end: pod-c 21 of 61 requests; fair = 30/3 + 30/3 (2s..4s, three
	// active) + 1/1 (the late request, pod-c alone active) = 21 of 61.
	if !near(r.ShareAfter, round(21.0/61, 6)) || !near(r.FairShare, round(21.0/61, 6)) || r.Outcome != OutcomeRebalanced ||
		r.FairShareAfterSeconds == nil || *r.FairShareAfterSeconds != 1 {
		t.Errorf("rebalance %+v (reached after %v)", r, r.FairShareAfterSeconds)
	}
	var buf bytes.Buffer
	if err := renderTimeline(&buf, tl, 60); err != nil {
		t.Fatal(err)
	}
	want := "Share per 1.0s (█ = 100%, blank = none):\n" +
		"  pod-a │▄▄▃▃│\n" +
		"  pod-b │▄▄▃▃│\n" +
		"  pod-c │  ▃▃│\n" +
		"        0.0s 4.0s\n" +
		"  (not drawn: 4.0s–4.06s, the last 0.06s of the window, 1 request: shorter than half an interval)\n\n"
	if buf.String() != want {
		t.Errorf("timeline:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := renderHTML(&buf, &Report{Summary: s}); err != nil {
		t.Fatal(err)
	}
	if h := buf.String(); strings.Contains(h, "4.0s–5.0s") || strings.Contains(h, "4.0s–4.1s") || !strings.Contains(h, "not drawn: 4.0s–4.06s") {
		t.Errorf("HTML draws the partial interval or does not say it left it out")
	}
}

// Each hint comes from a message seen for real (kaload hammer against a
// kaload server: --h2c to an HTTP/1 server, https:// to plain HTTP, a
// closed port; Go's x509 message for a self-signed certificate).
func TestErrorHints(t *testing.T) {
	for _, tt := range []struct{ kind, msg, hint string }{
		{"http2", "http2: failed reading the frame payload: http2: frame too large, note that the frame header looked like an HTTP/1.1 header", "drop --h2c"},
		{"tls", "tls handshake with 127.0.0.1:18581: tls: first record does not look like a TLS handshake", "use an http:// URL"},
		{"tls", "Get \"https://x/\": tls: failed to verify certificate: x509: certificate signed by unknown authority", "--insecure"},
		{"connection refused", "dial tcp 127.0.0.1:9: connect: connection refused", "is anything listening"},
		{"timeout", "read tcp: i/o timeout", ""},
	} {
		if k := errorKind(&client.Result{Err: tt.msg}); k != tt.kind {
			t.Errorf("%q: kind %q, want %q", tt.msg, k, tt.kind)
		}
		if h := errorHint(tt.msg); (tt.hint == "") != (h == "") || !strings.Contains(h, tt.hint) {
			t.Errorf("%q: hint %q, want one with %q", tt.msg, h, tt.hint)
		}
	}
}

// The server count delta is explained when this run alone does not explain
// it: another client, a restart; within the slack of requests in flight it
// says nothing.
func TestServerCountNotes(t *testing.T) {
	d := func(v int64) *int64 { return &v }
	s := &Summary{PerfectConnections: 4, Backends: []BackendSummary{
		{Name: "alone", ServerTotalDelta: d(232), ServerTotalSeen: 240},  // 239 expected, 7 off: in flight (slack 2 x 4)
		{Name: "shared", ServerTotalDelta: d(500), ServerTotalSeen: 240}, // 261 more than this run
		{Name: "restarted", ServerTotalDelta: d(-40), ServerTotalSeen: 240, Restarted: true},
		{Name: "no-header"},
	}}
	got := serverCountNotes(s)
	want := []string{
		"shared: the server counted 261 more requests than this run sent it between its first and last response: other clients used it, or requests were sent again",
		"restarted: the server's count went down by 40: it restarted during the run",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Issue 17: pods the watch saw Ready are known backends, so a sticky run
// (ten Ready pods, one answering) shows its nine idle pods and fails the
// documented gate min_share>=0.05 on data, while a recycled run passes it;
// no fairness figure claims 1.000 for the sticky run.
func TestReadyPodsAreKnownBackends(t *testing.T) {
	gate, err := ParseExpectation("min_share>=0.05")
	if err != nil {
		t.Fatal(err)
	}
	build := func(answering int) *Summary {
		a := NewAggregator(Options{})
		run, err := a.AddRun(results.Header{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			pod := "web-" + strconv.Itoa(i)
			run.AddEvent(results.Event{T: time.Duration(i) * 100 * time.Millisecond, Kind: results.EventPodReady, Object: "pod/" + pod, Detail: "ip=10.0.0." + strconv.Itoa(i)})
		}
		// A pod deleted before the window is not expected to answer.
		run.AddEvent(results.Event{T: -time.Second, Kind: results.EventPodReady, Object: "pod/old", Detail: "backend=old"})
		run.AddEvent(results.Event{T: -500 * time.Millisecond, Kind: results.EventPodDeleted, Object: "pod/old", Detail: "backend=old"})
		f := newSinkFeeder(run.Add, 5)
		for i := range answering {
			f.add("web-"+strconv.Itoa(i), 0, 10*time.Second, 100)
		}
		return a.Summary()
	}
	sticky := build(1)
	if len(sticky.Backends) != 10 || sticky.Fairness == nil || !near(sticky.Fairness.Jain, 0.1) || sticky.Fairness.MinShare != 0 {
		t.Fatalf("sticky: %d backends, fairness %+v (%s)", len(sticky.Backends), sticky.Fairness, sticky.FairnessNoData)
	}
	if r := gate.Evaluate(sticky); r.Status != StatusFail {
		t.Errorf("sticky gate: %+v, want FAIL", r)
	}
	if !strings.Contains(sticky.Verdict, "web-1 never received a connection although the servers closed 20: is it behind the balancer?") {
		t.Errorf("sticky verdict %q", sticky.Verdict)
	}
	recycled := build(10)
	if r := gate.Evaluate(recycled); r.Status != StatusPass || len(recycled.Backends) != 10 {
		t.Errorf("recycled gate: %+v with %d backends, want PASS over 10", r, len(recycled.Backends))
	}
}

// A pod known from a Ready event counts in the fair share from then on, not
// from the start: pod-c (from 5s, 7 of 20 a second) shares intervals 5..7
// with two others (20/3 each) and 8..9 with three (20/4): fair 30 of 100.
func TestKnownPodCountsFromReady(t *testing.T) {
	a := NewAggregator(Options{})
	run, err := a.AddRun(results.Header{})
	if err != nil {
		t.Fatal(err)
	}
	run.AddEvent(results.Event{T: 8 * time.Second, Kind: results.EventPodReady, Object: "pod/pod-d"})
	scaleUpWith(newSinkFeeder(run.Add, 0), []int{7, 7, 7, 7, 7})
	s := a.Summary()
	if len(s.Rebalance) != 1 || !near(s.Rebalance[0].FairShare, 0.3) || len(s.Backends) != 4 {
		t.Errorf("rebalance %+v, %d backends", s.Rebalance, len(s.Backends))
	}
}

// An open-model run that could not keep its rate says so in the verdict.
func TestVerdictSaysUnsent(t *testing.T) {
	a := NewAggregator(Options{})
	run, err := a.AddRun(results.Header{Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	f := newSinkFeeder(run.Add, 0)
	f.add("pod-a", 0, 2*time.Second, 150)
	f.add("pod-b", 0, 2*time.Second, 150)
	run.Finish(2*time.Second, 50)
	s := a.Summary()
	if s.Unsent == nil || *s.Unsent != 50 || !strings.HasSuffix(s.Verdict, "; 50 requests were due but never sent (target 100/s not reached)") {
		t.Errorf("unsent %v, verdict %q", s.Unsent, s.Verdict)
	}
}

// A client that falls behind drops timed-out connections and dials again:
// the report counts those redials and says the spread does not prove
// server-side recycling (issue 17: a sticky control must not silently turn
// into a recycling client).
func TestTimeoutRedials(t *testing.T) {
	a := NewAggregator(Options{})
	run, err := a.AddRun(results.Header{})
	if err != nil {
		t.Fatal(err)
	}
	f := newSinkFeeder(run.Add, 0)
	f.add("pod-a", 0, 2*time.Second, 100)
	f.add("pod-b", time.Second, time.Second, 50)
	timedOut := func(conn uint64, c client.CloseReason) {
		run.Add(&client.Result{Start: 1500 * time.Millisecond, Latency: 5 * time.Second, Backend: "pod-a",
			Conn: conn, ConnReq: 1, ServerTotal: -1, Err: "read tcp 127.0.0.1:1: i/o timeout", Close: c})
	}
	timedOut(100, client.CloseError)
	timedOut(101, client.CloseError)
	timedOut(102, client.CloseError)
	timedOut(103, client.CloseNone) // a timeout that left its connection alone is no redial
	s := a.Summary()
	if s.TimeoutRedials != 3 {
		t.Errorf("timeout_redials = %d, want 3", s.TimeoutRedials)
	}
	want := "3 connections were re-dialled after a request timed out (the client fell behind)"
	if !strings.Contains(s.Verdict, want) {
		t.Errorf("verdict %q does not say %q", s.Verdict, want)
	}
	var b strings.Builder
	if err := Render(&b, &Report{Summary: s}, "table"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Re-dialled after a timeout: 3\n") {
		t.Errorf("table lacks the redial line:\n%s", b.String())
	}

	quiet := NewAggregator(Options{})
	qrun, _ := quiet.AddRun(results.Header{})
	newSinkFeeder(qrun.Add, 0).add("pod-a", 0, time.Second, 10)
	if s := quiet.Summary(); s.TimeoutRedials != 0 || strings.Contains(s.Verdict, "re-dialled") {
		t.Errorf("no timeouts: redials %d, verdict %q", s.TimeoutRedials, s.Verdict)
	}
}
