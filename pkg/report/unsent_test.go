package report

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

// openRunFile writes the results file of an open-model run at 100 req/s for
// 1 s whose server stalled: seqs 0..29 were sent, each 2 s late past 0.2 s,
// and the other 70 due requests were never sent; the writer closed 1.3 s
// after the start.
func openRunFile(t *testing.T, unsent int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "open.kres")
	h := results.Header{Kaload: "test", URL: "http://x/", Start: t0, Connections: 2, Rate: 100, Duration: time.Second}
	w, err := results.CreateFile(path, h)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range int64(30) {
		r := client.Result{Seq: uint64(seq), Start: client.Intended(seq, 100), Latency: 50 * time.Millisecond,
			Status: 200, Backend: "pod-a", Conn: 1, ConnReq: uint32(seq + 1), ServerTotal: -1}
		if seq >= 20 {
			// Due at 0.2 s or later, sent at 0.7 s: the slots were busy.
			r.Delay = 700*time.Millisecond - r.Start
			r.Backend = "pod-b"
			r.Latency += r.Delay
		}
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	w.SetUnsent(unsent)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func summarizeFile(t *testing.T, path string, opts Options) *Summary {
	t.Helper()
	rd, err := results.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	a := NewAggregator(opts)
	run, err := a.AddRun(rd.Header())
	if err != nil {
		t.Fatal(err)
	}
	if err := run.AddAll(context.Background(), rd); err != nil {
		t.Fatal(err)
	}
	return a.Summary()
}

// The unsent count travels from the trailer into the summary, restricted to
// the window by the requests' due times (seq/100 s): the unsent seqs are
// 30..99, due at 0.30..0.99 s.
func TestUnsentFromResultsFile(t *testing.T) {
	path := openRunFile(t, 70)
	for _, tc := range []struct {
		name     string
		from, to time.Duration
		want     uint64
	}{
		{"whole run", 0, 0, 70},
		{"from 0.5s", 500 * time.Millisecond, 0, 50}, // seqs 50..99
		{"to 0.5s", 0, 500 * time.Millisecond, 20},   // seqs 30..49
		{"0.4s to 0.6s", 400 * time.Millisecond, 600 * time.Millisecond, 20},
		{"before any unsent", 0, 300 * time.Millisecond, 0}, // seq 30 is due at 0.30 s
		{"after the run", 2 * time.Second, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := summarizeFile(t, path, Options{From: tc.from, To: tc.to, Interval: 250 * time.Millisecond})
			if s.Unsent == nil || *s.Unsent != tc.want {
				t.Fatalf("unsent %v, want %d", s.Unsent, tc.want)
			}
			if len(s.Runs) != 1 || s.Runs[0].Unsent == nil || *s.Runs[0].Unsent != tc.want || s.Runs[0].Rate != 100 {
				t.Fatalf("runs %+v", s.Runs)
			}
			if s.TargetRPS != 100 {
				t.Errorf("target %v req/s, want 100", s.TargetRPS)
			}
		})
	}
}

// The timeline places requests at their send time and spans the whole run
// (1 s: the trailer's 1.3 s cut at the duration limit), with the unsent
// requests in the intervals they were due in.
func TestUnsentTimeline(t *testing.T) {
	s := summarizeFile(t, openRunFile(t, 70), Options{Interval: 250 * time.Millisecond})
	type iv struct{ requests, due, unsent uint64 }
	want := []iv{
		{20, 25, 0},  // seqs 0..19, on time at 0..0.19 s
		{0, 25, 20},  // seqs 30..49 due at 0.30..0.49 s; 20..29 were due here but sent at 0.7 s
		{10, 25, 25}, // seqs 20..29 sent at 0.7 s; unsent 50..74
		{0, 25, 25},  // unsent 75..99: the stuck tail
	}
	if len(s.Timeline.Intervals) != len(want) {
		t.Fatalf("%d intervals, want %d: %+v", len(s.Timeline.Intervals), len(want), s.Timeline.Intervals)
	}
	for i, w := range want {
		if got := s.Timeline.Intervals[i]; got.Requests != w.requests || got.Due != w.due || got.Unsent != w.unsent {
			t.Errorf("interval %d: %d requests, %d due, %d unsent; want %+v", i, got.Requests, got.Due, got.Unsent, w)
		}
	}
	// pod-b answered only requests sent at 0.7 s, though they were due from 0.2 s.
	for _, b := range s.Backends {
		if b.Name == "pod-b" && (b.FirstSeenSeconds == nil || *b.FirstSeenSeconds != 0.7 || *b.LastSeenSeconds != 0.7) {
			t.Errorf("pod-b first seen %v, last %v; want 0.7s (sent), not the due time", b.FirstSeenSeconds, b.LastSeenSeconds)
		}
	}
	// Latency still runs from the due time: the 20 late ones waited 0.41..0.5 s.
	if s.Latency == nil || s.Latency.Max < 500 {
		t.Errorf("max latency %vms hides the wait for a slot", s.Latency.Max)
	}
}

// A run stopped early (Ctrl-C at 1 s of a 10 s run at 100/s) sent seqs
// 0..99 and its trailer ends at 1.3 s, when the last answers came: the
// timeline still spans 1.3 s, but only the 100 requests due before the stop
// were due. By hand, intervals of 250 ms: 25 due in each of the first four,
// none after 1 s (the rate times 1.3 s would make 130, 30 of them after the
// stop, neither sent nor unsent).
func TestDueStopsAtTheStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sent   int64
		unsent int64
		want   []uint64 // due per interval
		unsIv  []uint64 // unsent per interval
	}{
		{"every due request sent", 100, 0, []uint64{25, 25, 25, 25, 0, 0}, []uint64{0, 0, 0, 0, 0, 0}},
		// Seqs 0..89 sent, 90..99 (due 0.90..0.99 s) never: still 100 due.
		{"the last ten unsent", 90, 10, []uint64{25, 25, 25, 25, 0, 0}, []uint64{0, 0, 0, 10, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAggregator(Options{Interval: 250 * time.Millisecond})
			run, err := a.AddRun(results.Header{Start: t0, Rate: 100, Duration: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for seq := range tc.sent {
				run.Add(&client.Result{Seq: uint64(seq), Start: client.Intended(seq, 100), Latency: time.Millisecond,
					Status: 200, Backend: "a", ServerTotal: -1})
			}
			run.Finish(1300*time.Millisecond, tc.unsent)
			ivs := a.Summary().Timeline.Intervals
			if len(ivs) != len(tc.want) {
				t.Fatalf("%d intervals, want %d (the run's 1.3 s)", len(ivs), len(tc.want))
			}
			var due uint64
			for i, iv := range ivs {
				due += iv.Due
				if iv.Due != tc.want[i] || iv.Unsent != tc.unsIv[i] {
					t.Errorf("interval %d: %d due, %d unsent; want %d, %d", i, iv.Due, iv.Unsent, tc.want[i], tc.unsIv[i])
				}
			}
			if due != uint64(tc.sent+tc.unsent) {
				t.Errorf("%d due over the timeline, want sent + unsent = %d", due, tc.sent+tc.unsent)
			}
		})
	}
}

// A closed-model run, and a file of an older kaload, have no unsent count:
// null in JSON, and an expectation on it fails for want of data.
func TestUnsentNotCounted(t *testing.T) {
	closed := NewAggregator(Options{})
	run, err := closed.AddRun(results.Header{Start: t0, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	run.Add(&client.Result{Status: 200, Backend: "a", ServerTotal: -1})
	run.Finish(time.Second, 0) // the engine's 0: nothing is due in the closed model
	for name, s := range map[string]*Summary{
		"closed model":   closed.Summary(),
		"no count":       summarizeFile(t, openRunFile(t, -1), Options{}),
		"version 1 file": summarizeFile(t, filepath.Join("results", "testdata", "codec", "small-v1.kres"), Options{}),
	} {
		if s.Unsent != nil || s.Runs[0].Unsent != nil {
			t.Errorf("%s: unsent %v, runs %+v; want not counted", name, s.Unsent, s.Runs)
		}
		x, err := ParseExpectation("unsent==0")
		if err != nil {
			t.Fatal(err)
		}
		if r := x.Evaluate(s); r.OK || r.Status != StatusNoData || r.Value != nil || r.Actual[:7] != "no data" {
			t.Errorf("%s: unsent==0 gives %+v; want not met, no data", name, r)
		}
	}
}

func TestExpectUnsent(t *testing.T) {
	n := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		expr   string
		unsent *uint64
		ok     bool
		actual string
	}{
		{"unsent==0", n(0), true, "0"},
		{"unsent==0", n(13267), false, "13267"},
		{"unsent<100", n(70), true, "70"},
		{"unsent<=0", nil, false, "no data: unsent requests are counted only with --rate, by kaload versions that count them"},
	} {
		x, err := ParseExpectation(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		r := x.Evaluate(&Summary{Unsent: tc.unsent})
		if r.OK != tc.ok || r.Actual != tc.actual {
			t.Errorf("%s with unsent %v: ok %v actual %q; want %v %q", tc.expr, tc.unsent, r.OK, r.Actual, tc.ok, tc.actual)
		}
	}
}

// The text report says the target was missed, with the count, and the
// timeline draws the unsent tail.
func TestRenderUnsent(t *testing.T) {
	s := summarizeFile(t, openRunFile(t, 70), Options{Interval: 250 * time.Millisecond})
	var b strings.Builder
	if err := Render(&b, &Report{Summary: s}, "table"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Rate: target 100/s not reached: 70 requests due but not sent; raise -c\n",
		// per interval 0/25, 20/25, 25/25, 25/25 of what was due went unsent
		"  unsent │ ▇██│\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"markdown", "html"} {
		var b strings.Builder
		if err := Render(&b, &Report{Summary: s}, f); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "Rate: target 100/s not reached: 70 requests due but not sent; raise -c") {
			t.Errorf("%s lacks the rate line:\n%s", f, b.String())
		}
	}
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 13267: "13,267", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// The run's end stretches the timeline only up to its limit: a file whose
// clock says it ran for weeks (a fixed start, a jumped clock) does not make
// millions of empty intervals; a run without a limit ends at its last request.
func TestFinishBoundsTheTimeline(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    results.Header
		want int
	}{
		{"duration limit", results.Header{Start: t0, Duration: 3 * time.Second}, 3},
		{"open model -n", results.Header{Start: t0, Rate: 10, Requests: 25}, 3}, // -n 25 at 10/s ends at 2.5s
		{"no limit", results.Header{Start: t0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAggregator(Options{})
			run, err := a.AddRun(tc.h)
			if err != nil {
				t.Fatal(err)
			}
			run.Add(&client.Result{Start: 100 * time.Millisecond, Latency: time.Millisecond, Status: 200, Backend: "a", ServerTotal: -1})
			run.Finish(30*24*time.Hour, -1)
			if n := len(a.Summary().Timeline.Intervals); n != tc.want {
				t.Errorf("%d intervals, want %d", n, tc.want)
			}
		})
	}
}

// Messages of one gRPC stream share its seq, and results arrive out of
// order: the unsent requests follow the highest seq sent, not the count of
// results. Seqs 0 and 1 were sent (five messages); 2..4 were due at
// 0.2, 0.3 and 0.4 s but never sent.
func TestUnsentFollowsHighestSeq(t *testing.T) {
	a := NewAggregator(Options{From: 300 * time.Millisecond})
	run, err := a.AddRun(results.Header{Start: t0, Rate: 10, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 0, 0, 1, 0} {
		run.Add(&client.Result{Seq: seq, Start: client.Intended(int64(seq), 10), Status: 200, Backend: "a", ServerTotal: -1})
	}
	run.Finish(time.Second, 3)
	if s := a.Summary(); s.Unsent == nil || *s.Unsent != 2 {
		t.Errorf("unsent from 0.3s: %v, want 2 (seqs 3 and 4)", s.Unsent)
	}
}
