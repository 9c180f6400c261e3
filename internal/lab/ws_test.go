package lab

import (
	"context"
	"testing"
	"time"
)

// TestLabWebSocket: two pods behind the balancer, the second added mid-run.
// Without recycling it holds no socket at all; with an age limit the
// sockets reconnect through the Service and it holds close to half.
func TestLabWebSocket(t *testing.T) {
	cfg := Config{
		Protocol: "ws",
		Scenarios: []Scenario{
			{Name: ScenarioName(0, 0)},
			{Name: ScenarioName(0, 700*time.Millisecond), MaxConnAge: 700 * time.Millisecond},
		},
		Duration: 3 * time.Second, ScaleAt: time.Second, StartPods: 1, EndPods: 2,
		Connections: 40, Rate: 200, Timeout: 5 * time.Second,
		Policy: PolicyRoundRobin, Seed: 1, Interval: 500 * time.Millisecond,
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sticky, aged := res.Scenarios[0], res.Scenarios[1]
	if sticky.NewPodsSocketShare == nil || *sticky.NewPodsSocketShare != 0 || sticky.SocketsHeld != 40 || sticky.Outcome != OutcomeStuck {
		t.Errorf("no recycling: %v of %d sockets on the new pod, %s (%s)", sticky.NewPodsSocketShare, sticky.SocketsHeld, sticky.Outcome, sticky.Verdict)
	}
	if sh := aged.NewPodsSocketShare; sh == nil || *sh < 0.35 || *sh > 0.65 || aged.SocketsHeld != 40 {
		t.Errorf("max-conn-age: %v of %d sockets on the new pod, want about half (%s)", sh, aged.SocketsHeld, aged.Verdict)
	}
	for _, s := range res.Scenarios {
		if s.Run.Errors != 0 || s.Run.Requests == 0 {
			t.Errorf("%s: %d requests, %d errors", s.Name, s.Run.Requests, s.Run.Errors)
		}
	}
	if aged.Run.Sockets == nil || aged.Run.Sockets.Closed["1012"] == 0 {
		t.Errorf("max-conn-age: sockets %+v", aged.Run.Sockets)
	}
}
