package report

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// socket makes a KindSocket record held from open to end (open at the
// run's end when code is 0).
func socket(backend string, open, end float64, code uint16) *client.Result {
	r := &client.Result{Kind: client.KindSocket, Start: sec(open), Latency: sec(end - open), Status: 101, Backend: backend, ServerTotal: -1}
	if code != 0 {
		r.Close, r.CloseCode = client.CloseServer, code
		if code == 1006 {
			r.Close = client.CloseEOF
		}
	}
	return r
}

// TestSocketSummaryByHand checks every socket figure against values
// computed by hand (1s intervals, run ends at 5.0s):
//
//	pod-a: 4 sockets opened at 0.1s; 2 closed with 1012 at 2.5s, 2 open at the end
//	pod-b: 2 sockets opened at 2.6s, open at the end
//	pod-c: known (--backends), never got a socket
//
// Held at interval ends (1s..5s): pod-a 4,4,2,2,2; pod-b 0,0,2,2,2; pod-c 0.
func TestSocketSummaryByHand(t *testing.T) {
	a := NewAggregator(Options{Backends: []string{"pod-a", "pod-b", "pod-c"}})
	for range 2 {
		a.addT(socket("pod-a", 0.1, 2.5, 1012))
		a.addT(socket("pod-a", 0.1, 5.0, 0))
		a.addT(socket("pod-b", 2.6, 5.0, 0))
	}
	a.addT(&client.Result{Kind: client.KindSocket, Start: sec(3), Status: 503, Err: "websocket handshake: HTTP 503", ServerTotal: -1})
	s := a.Summary()
	if s.Requests != 0 || s.Sockets == nil {
		t.Fatalf("requests %d, sockets %+v", s.Requests, s.Sockets)
	}
	got := s.Sockets
	f := func(v float64) *float64 { return &v }
	want := &SocketSummary{
		Opened: 6, FailedHandshakes: 1, HeldAtEnd: 4,
		Closed: map[string]uint64{"1012": 2},
		Backends: []SocketBackend{
			{Name: "pod-a", Opened: 4, HeldAtEnd: 2, Share: 0.5, Peak: 4, FirstOpenSeconds: f(0.1)},
			{Name: "pod-b", Opened: 2, HeldAtEnd: 2, Share: 0.5, Peak: 2, FirstOpenSeconds: f(2.6)},
			{Name: "pod-c"},
		},
		MinShare: f(0),
		Timeline: SocketTimeline{IntervalSeconds: 1, Backends: []string{"pod-a", "pod-b", "pod-c"}, Intervals: []SocketInterval{
			{StartSeconds: 0, Held: []uint64{4, 0, 0}, Opened: 4},
			{StartSeconds: 1, Held: []uint64{4, 0, 0}},
			{StartSeconds: 2, Held: []uint64{2, 2, 0}, Opened: 2, Closed: map[string]uint64{"1012": 2}},
			{StartSeconds: 3, Held: []uint64{2, 2, 0}},
			{StartSeconds: 4, Held: []uint64{2, 2, 0}},
		}},
		// pod-b at 3.0s: 2 of 4 held >= 0.8*4/3, 0.4s after it appeared.
		Rebalance: []SocketRebalance{{Backend: "pod-b", AppearedSeconds: 2.6, FairShareAfterSeconds: f(0.4), HeldAtEnd: 2, TotalAtEnd: 4, FairShare: 0.333333}},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
	wantV := "sockets held at the end: pod-a 2, pod-b 2, pod-c 0 of 4; pod-c holds 0 of 4 sockets; pod-b appeared at 2.6s and held its fair share of sockets after 0.4s: sockets stay pinned to the pods they first reached"
	if s.Verdict != wantV {
		t.Errorf("verdict\n%s\nwant\n%s", s.Verdict, wantV)
	}
	for _, tt := range []struct {
		expr  string
		value float64
		ok    bool
	}{
		{"sockets(pod-a)==2", 2, true},
		{"socket_share(pod-b)>=0.5", 0.5, true},
		{"min_socket_share>=0.2", 0, false},
	} {
		x, err := ParseExpectation(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		r := x.Evaluate(s)
		if r.OK != tt.ok || r.Value == nil || *r.Value != tt.value {
			t.Errorf("%s: %+v", tt.expr, r)
		}
	}
}

// TestSocketVerdictPinned: the pattern the issue names, a pod that appeared
// and holds nothing a minute later.
func TestSocketVerdictPinned(t *testing.T) {
	a := NewAggregator(Options{})
	for range 2000 {
		a.addT(socket("pod-a", 0, 61.5, 0))
	}
	a.addT(socket("pod-3", 1.5, 1.7, 1006))
	s := a.Summary()
	want := "sockets held at the end: pod-a 2,000, pod-3 0 of 2,000; pod-3 holds 0 of 2,000 sockets 60 s after it appeared (fair share 50%): sockets stay pinned to the pods they first reached"
	if s.Verdict != want {
		t.Errorf("verdict\n%s\nwant\n%s", s.Verdict, want)
	}
	if s.Sockets.Closed["1006"] != 1 || s.Sockets.Rebalance[0].FairShareAfterSeconds != nil {
		t.Errorf("sockets %+v", s.Sockets)
	}
}

// TestSocketMetricsNoData: every socket metric without data fails with a reason.
func TestSocketMetricsNoData(t *testing.T) {
	httpOnly := NewAggregator(Options{})
	newFeeder(httpOnly, 0).add("pod-a", 0, time.Second, 10)
	one := NewAggregator(Options{})
	one.addT(socket("pod-a", 0, 2, 0))
	allClosed := NewAggregator(Options{})
	allClosed.addT(socket("pod-a", 0, 2, 1012))
	allClosed.addT(socket("pod-b", 0, 2, 1012))
	noRecords := "no WebSocket socket records in the window (a ws:// run records them)"
	for _, tt := range []struct {
		expr string
		s    *Summary
		why  string
	}{
		{"sockets(pod-a)>=1", httpOnly.Summary(), noRecords},
		{"socket_share(pod-a)>=0.1", httpOnly.Summary(), noRecords},
		{"min_socket_share>=0.1", httpOnly.Summary(), noRecords},
		{"min_socket_share>=0.1", one.Summary(), "only 1 backend holds sockets; idle pods are invisible without --watch or --backends"},
		{"sockets(pod-x)>=1", one.Summary(), "no backend named pod-x holds or held a socket; backends: pod-a"},
		{"socket_share(pod-a)>=0.1", allClosed.Summary(), "no socket was open at the end of the window"},
		{"min_socket_share>=0.1", allClosed.Summary(), "no socket was open at the end of the window"},
	} {
		x, err := ParseExpectation(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		r := x.Evaluate(tt.s)
		if r.Status != StatusNoData || r.OK || r.Reason != tt.why {
			t.Errorf("%s: %+v, want NO DATA because %q", tt.expr, r, tt.why)
		}
	}
}

// TestSocketTimelineDropsPartialInterval: a run that ends 0.2s into an
// interval shows no row for it; the sockets held at the end still count.
func TestSocketTimelineDropsPartialInterval(t *testing.T) {
	a := NewAggregator(Options{})
	a.addT(socket("pod-a", 0.1, 3.2, 0))
	a.addT(socket("pod-a", 0.1, 3.1, 1012))
	s := a.Summary().Sockets
	if len(s.Timeline.Intervals) != 3 || s.HeldAtEnd != 1 || s.Closed["1012"] != 1 {
		t.Errorf("%d intervals, %d held at the end, closed %v; want 3, 1, 1012: 1", len(s.Timeline.Intervals), s.HeldAtEnd, s.Closed)
	}
	if got := s.Timeline.Intervals[2].Held[0]; got != 2 {
		t.Errorf("held at 3.0s: %d, want 2", got)
	}
}
