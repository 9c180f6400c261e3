package report

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/report/results"
)

// scaleUpRun: web-1 and web-2 serve 100 req/s each for 20s. The HPA asks
// for 3 pods at 5s: web-3 is created at 6s, Ready at 8s, its endpoint ready
// at 8.5s, and takes 100 req/s from 10s. At 11s the HPA asks for 4: web-4 is
// created at 12s, Ready at 14s, endpoint ready at 14.5s, and never gets a
// request (its connections were never opened).
func scaleUpRun(t *testing.T) *Summary {
	a := NewAggregator(Options{})
	run, err := a.AddRun(results.Header{Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	f := newSinkFeeder(run.Add, 0)
	f.add("web-1", 0, 20*time.Second, 2000)
	f.add("web-2", 0, 20*time.Second, 2000)
	f.add("web-3", 10*time.Second, 10*time.Second, 1000)
	s := time.Second
	for _, e := range []results.Event{
		{T: -30 * s, Kind: results.EventPodCreated, Object: "pod/web-1", Detail: "backend=web-1"},
		{T: -30 * s, Kind: results.EventPodCreated, Object: "pod/web-2", Detail: "backend=web-2"},
		{T: 0, Kind: results.EventHPA, Object: "hpa/web", Detail: "desired=2 current=2"},
		{T: 5 * s, Kind: results.EventHPA, Object: "hpa/web", Detail: "desired=3 current=2 was=2 metric=cpu:80%/50%"},
		{T: 5100 * time.Millisecond, Kind: results.EventScale, Object: "deployment/web", Detail: "replicas=3 was=2"},
		{T: 6 * s, Kind: results.EventPodCreated, Object: "pod/web-3", Detail: "backend=web-3"},
		{T: 8 * s, Kind: results.EventPodReady, Object: "pod/web-3", Detail: "backend=web-3 ip=10.0.0.3"},
		{T: 8500 * time.Millisecond, Kind: results.EventEndpointReady, Object: "pod/web-3", Detail: "ip=10.0.0.3 backend=web-3"},
		{T: 11 * s, Kind: results.EventHPA, Object: "hpa/web", Detail: "desired=4 current=3 was=3"},
		{T: 12 * s, Kind: results.EventPodCreated, Object: "pod/web-4", Detail: "backend=web-4"},
		{T: 14 * s, Kind: results.EventPodReady, Object: "pod/web-4", Detail: "backend=web-4 ip=10.0.0.4"},
		{T: 14500 * time.Millisecond, Kind: results.EventEndpointReady, Object: "pod/web-4", Detail: "ip=10.0.0.4 backend=web-4"},
	} {
		run.AddEvent(e)
	}
	return a.Summary()
}

func f64(v float64) *float64 { return &v }

func TestStages(t *testing.T) {
	s := scaleUpRun(t)
	want := []PodStages{
		{Pod: "web-3", Backend: "web-3", DecisionSeconds: f64(5), CreatedSeconds: 6, ReadySeconds: f64(8), EndpointReadySeconds: f64(8.5),
			FirstRequestSeconds: f64(10), FairShareSeconds: f64(11), SlowStage: "pod created -> Ready"},
		{Pod: "web-4", Backend: "web-4", DecisionSeconds: f64(11), CreatedSeconds: 12, ReadySeconds: f64(14), EndpointReadySeconds: f64(14.5),
			SlowStage: "endpoint ready -> first request", NeverArrived: true},
	}
	if len(s.Stages) != len(want) {
		t.Fatalf("stages %+v", s.Stages)
	}
	for i, w := range want {
		g := s.Stages[i]
		if g.Pod != w.Pod || g.Backend != w.Backend || g.CreatedSeconds != w.CreatedSeconds || g.SlowStage != w.SlowStage || g.NeverArrived != w.NeverArrived {
			t.Errorf("pod %d: %+v, want %+v", i, g, w)
		}
		gp, wp := g.points(), w.points()
		for k := range gp {
			if (gp[k] == nil) != (wp[k] == nil) || gp[k] != nil && !near(*gp[k], *wp[k]) {
				t.Errorf("%s point %d: got %v, want %v", w.Pod, k, deref(gp[k]), deref(wp[k]))
			}
		}
	}
	for _, sub := range []string{
		"web-3: created at 6.0s (1.0s after the scale decision), Ready 2.0s later, endpoint ready 0.5s later, first request 1.5s later, fair share 1.0s later; the slow stage is pod created -> Ready",
		"web-4: created at 12.0s (1.0s after the scale decision), Ready 2.0s later, endpoint ready 0.5s later, first request never within the run: capacity that never arrived (Ready, but no request reached it); the slow stage is endpoint ready -> first request: connections are pinned",
	} {
		if !strings.Contains(s.Verdict, sub) {
			t.Errorf("verdict %q lacks %q", s.Verdict, sub)
		}
	}

	// The --expect metrics, by hand: web-3 takes 8-5=3s decision->Ready,
	// web-4 14-11=3s; endpoint->first request is 10-8.5=1.5s for web-3 and
	// never for web-4.
	tests := []struct {
		expr   string
		status Status
		value  float64
	}{
		{"decision_to_ready<=3s", StatusPass, 3},
		{"ready_to_endpoint<1s", StatusPass, 0.5},
		{"endpoint_to_first_request<5s", StatusFail, math.Inf(1)},
		{"ready_to_fair_share<30s", StatusFail, math.Inf(1)},
		{"decision_to_fair_share<30s", StatusFail, math.Inf(1)},
	}
	for _, tt := range tests {
		x, err := ParseExpectation(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		r := x.Evaluate(s)
		if r.Status != tt.status || (math.IsInf(tt.value, 1) && (r.Value != nil || r.Actual != "never")) || (!math.IsInf(tt.value, 1) && (r.Value == nil || !near(*r.Value, tt.value))) {
			t.Errorf("%s: %+v, want %s %v", tt.expr, r, tt.status, tt.value)
		}
	}
}

// TestStagesNoData: without events, or without a pod created in the run, a
// stage metric is NO DATA with the reason; never a pass.
func TestStagesNoData(t *testing.T) {
	plain := NewAggregator(Options{})
	newFeeder(plain, 0).add("web-1", 0, time.Second, 10)
	noNew := NewAggregator(Options{})
	run, _ := noNew.AddRun(results.Header{Start: t0})
	newSinkFeeder(run.Add, 0).add("web-1", 0, time.Second, 10)
	run.AddEvent(results.Event{T: -5 * time.Second, Kind: results.EventPodCreated, Object: "pod/web-1"})
	run.AddEvent(results.Event{T: 0, Kind: results.EventHPA, Object: "hpa/web", Detail: "desired=1 current=1"})
	noEndpoint := NewAggregator(Options{})
	run, _ = noEndpoint.AddRun(results.Header{Start: t0})
	newSinkFeeder(run.Add, 0).add("web-1", 0, time.Second, 10)
	run.AddEvent(results.Event{T: 0, Kind: results.EventPodCreated, Object: "pod/web-2"})
	tests := []struct {
		s    *Summary
		expr string
		why  string
	}{
		{plain.Summary(), "endpoint_to_first_request<5s", "no events: the run watched no cluster (kaload hammer --watch) and is not a lab run"},
		{noNew.Summary(), "ready_to_fair_share<30s", "no pod was created during the run"},
		{noEndpoint.Summary(), "endpoint_to_first_request<5s", "no new pod had its endpoint ready recorded"},
		{noEndpoint.Summary(), "decision_to_ready<5s", "no new pod had its scale decision recorded"},
	}
	for _, tt := range tests {
		x, _ := ParseExpectation(tt.expr)
		r := x.Evaluate(tt.s)
		if r.Status != StatusNoData || r.OK || r.Reason != tt.why {
			t.Errorf("%s: %+v, want NO DATA because %q", tt.expr, r, tt.why)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestStagesRendered: the text report marks the events on the chart, lists
// them and prints each new pod's stages.
func TestStagesRendered(t *testing.T) {
	var b strings.Builder
	if err := Render(&b, &Report{Summary: scaleUpRun(t)}, "table"); err != nil {
		t.Fatal(err)
	}
	out := b.String()

	for _, want := range []string{
		"  events │     SC R  SC R     │",
		"  S     5.0s  hpa                  hpa/web                      desired=3 current=2 was=2 metric=cpu:80%/50%",
		"Stages: web-3: decision 5.0s -> created 6.0s -> Ready 8.0s -> endpoint ready 8.5s -> first request 10.0s -> fair share 11.0s (slow: pod created -> Ready)",
		"Stages: web-4: decision 11.0s -> created 12.0s -> Ready 14.0s -> endpoint ready 14.5s -> first request never within the run -> fair share never within the run (slow: endpoint ready -> first request): capacity that never arrived",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
}
