package lab

import (
	"context"
	"testing"
	"time"
)

// TestLabGRPC: two gRPC pods behind the balancer, the second added mid-run.
// Without recycling it gets no RPC at all; with --max-requests or
// --max-conn-age the connections move through the Service after their
// GOAWAY and it gets close to half, with no failed RPC.
func TestLabGRPC(t *testing.T) {
	cfg := Config{
		Protocol: "grpc",
		Scenarios: []Scenario{
			{Name: ScenarioName(0, 0)},
			{Name: ScenarioName(20, 0), MaxRequests: 20},
			{Name: ScenarioName(0, 500*time.Millisecond), MaxConnAge: 500 * time.Millisecond},
		},
		Duration: 4 * time.Second, ScaleAt: time.Second, StartPods: 1, EndPods: 2,
		Connections: 10, Rate: 200, Timeout: 5 * time.Second,
		Policy: PolicyRoundRobin, Seed: 1, Interval: 500 * time.Millisecond,
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sticky := res.Scenarios[0]
	if sticky.NewPodsShare != 0 || sticky.Outcome != OutcomeStuck {
		t.Errorf("no recycling: new pod share %v, %s (%s)", sticky.NewPodsShare, sticky.Outcome, sticky.Verdict)
	}
	for _, s := range res.Scenarios[1:] {
		if sh := s.NewPodsShare; sh < 0.3 || sh > 0.7 {
			t.Errorf("%s: new pod share %v, want about half (%s)", s.Name, sh, s.Verdict)
		}
		if s.Run.CloseReasons["goaway"] == 0 {
			t.Errorf("%s: close reasons %v, want GOAWAYs", s.Name, s.Run.CloseReasons)
		}
	}
	for _, s := range res.Scenarios {
		if s.Run.Errors != 0 || s.Run.Requests == 0 {
			t.Errorf("%s: %d requests, %d errors", s.Name, s.Run.Requests, s.Run.Errors)
		}
	}
}
