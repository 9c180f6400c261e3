package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestServiceVIPSpreadsNewConnections checks the lab itself with the test
// binary as pods and client: new connections to the VIP are spread over
// every published pod by the kernel, including one added later, the nat
// counters agree with what the client saw, and the bridge keeps its MAC.
func TestServiceVIPSpreadsNewConnections(t *testing.T) {
	ipt := requireKernelLab(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	l := newLab(t, ipt)
	l.requireIsolated()
	mac := l.bridgeAddr()
	if mac != bridgeMAC {
		t.Fatalf("bridge MAC %s, want %s", mac, bridgeMAC)
	}
	serve := func(p *pod) {
		l.start(ctx, p, helperEnv(helperModeEnv+"=serve"), self, fmt.Sprintf(":%d", podPort))
	}
	a, b := l.addPod("pod-a"), l.addPod("pod-b")
	serve(a)
	serve(b)
	l.waitListening(ctx, a, b)
	l.publish(a, b)

	const n1 = 200
	got := l.dial(ctx, n1)
	checkSpread(t, got, n1, "pod-a", "pod-b")
	if c := l.dnatCounts(); c["pod-a"] != uint64(got.Backends["pod-a"]) || c["pod-b"] != uint64(got.Backends["pod-b"]) {
		t.Errorf("nat counters %v disagree with the client's %v", c, got.Backends)
	}

	c := l.addPod("pod-c")
	if after := l.bridgeAddr(); after != mac {
		t.Errorf("adding a port changed the bridge MAC from %s to %s", mac, after)
	}
	serve(c)
	l.waitListening(ctx, c)
	l.publish(a, b, c)

	const n2 = 300
	got = l.dial(ctx, n2)
	checkSpread(t, got, n2, "pod-a", "pod-b", "pod-c")
	counts := l.dnatCounts()
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		// The restore reset the counters, so they hold only the second round.
		if counts[name] != uint64(got.Backends[name]) {
			t.Errorf("nat counter for %s = %d, client saw %d", name, counts[name], got.Backends[name])
		}
	}
}

// dial runs the dial helper in the node namespace against the VIP.
func (l *lab) dial(ctx context.Context, n int) dialResult {
	l.t.Helper()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.node, self, "http://"+vip.String()+"/", strconv.Itoa(n))
	cmd.Env = helperEnv(helperModeEnv + "=dial")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		l.t.Fatalf("dial helper: %v: %s", err, stderr)
	}
	var res dialResult
	if err := json.Unmarshal(out, &res); err != nil {
		l.t.Fatalf("dial helper output %q: %v", out, err)
	}
	return res
}

// checkSpread asserts no errors, no unknown backends, and that each pod got
// at least half its fair share: with n >= 200 draws that is more than six
// standard deviations below the mean, so it does not flake, yet a pod the
// rules left out (0%) or a broken probability chain fails it.
func checkSpread(t *testing.T, got dialResult, n int, pods ...string) {
	t.Helper()
	if got.Errors != 0 {
		t.Errorf("%d of %d requests failed, first: %s", got.Errors, n, got.FirstErr)
	}
	total := 0
	for name, c := range got.Backends {
		total += c
		known := false
		for _, p := range pods {
			known = known || p == name
		}
		if !known {
			t.Errorf("answer from unexpected backend %q (%d requests)", name, c)
		}
	}
	if total != n-got.Errors {
		t.Errorf("backends add up to %d, want %d", total, n-got.Errors)
	}
	fair := float64(n) / float64(len(pods))
	for _, p := range pods {
		if c := got.Backends[p]; float64(c) < fair/2 {
			t.Errorf("%s got %d of %d new connections, want at least %.0f (half of fair)", p, c, n, fair/2)
		}
	}
	t.Logf("%d new connections over %d pods: %v", n, len(pods), got.Backends)
}
