package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Load shape of each scenario: short, but with enough reconnects after the
// scale-up (about 1500 requests / 5 per connection) that the recycling
// verdict is many standard deviations away from its threshold.
const (
	hammerConns    = 4
	hammerRate     = 500 // requests/s over all connections
	hammerDuration = 6 * time.Second
	scaleAfter     = 1500 * time.Millisecond // when pod-c starts to be created
	settle         = 500 * time.Millisecond
)

// summary is the part of kaload's JSON report (hammer and report share it)
// that the verdicts read.
type summary struct {
	Requests    int64 `json:"requests"`
	Errors      int64 `json:"errors"`
	Connections int64 `json:"connections"`
	Backends    []struct {
		Name             string  `json:"name"`
		Requests         int64   `json:"requests"`
		Share            float64 `json:"share"`
		FirstSeenSeconds float64 `json:"first_seen_seconds"`
	} `json:"backends"`
}

func (s summary) backend(name string) (requests int64, firstSeen float64, ok bool) {
	for _, b := range s.Backends {
		if b.Name == name {
			return b.Requests, b.FirstSeenSeconds, true
		}
	}
	return 0, 0, false
}

// TestKeepAliveScaleUpWithKernelNAT is issue 5's kernel variant: kaload
// serve in two pods behind a Service VIP that the kernel DNATs as kube-proxy's
// iptables mode does, kaload hammer keeping connections alive from the node,
// and a third pod published mid-run. Without recycling the new pod gets
// nothing, because conntrack pins every existing connection to its first
// choice; with --max-requests 5 the reconnects reach it at about its share.
func TestKeepAliveScaleUpWithKernelNAT(t *testing.T) {
	ipt := requireKernelLab(t)
	bin := buildKaload(t)
	t.Parallel()
	tests := []struct {
		name        string
		maxRequests int
		grpc        bool
		verdict     func(t *testing.T, window summary, newConns map[string]uint64)
	}{
		{
			name: "no-recycling", maxRequests: 0,
			verdict: func(t *testing.T, window summary, newConns map[string]uint64) {
				if n, _, _ := window.backend("pod-c"); n != 0 {
					t.Errorf("pod-c answered %d of %d requests after scale-up, want 0: keep-alive connections are pinned", n, window.Requests)
				}
				for name, n := range newConns {
					if n != 0 {
						t.Errorf("the nat table sent %d new connections to %s after scale-up, want none", n, name)
					}
				}
			},
		},
		{
			name: "max-requests-5", maxRequests: 5,
			verdict: func(t *testing.T, window summary, newConns map[string]uint64) {
				n, _, _ := window.backend("pod-c")
				share := float64(n) / float64(window.Requests)
				if want := 0.6 / 3; share < want {
					t.Errorf("pod-c share after scale-up %.3f (%d of %d), want at least %.3f (60%% of fair)", share, n, window.Requests, want)
				}
				for _, p := range []string{"pod-a", "pod-b"} {
					if n, _, _ := window.backend(p); n == 0 {
						t.Errorf("%s got no requests after scale-up", p)
					}
				}
				var total uint64
				for _, c := range newConns {
					total += c
				}
				if total < 30 || float64(newConns["pod-c"]) < 0.6*float64(total)/3 {
					t.Errorf("nat table spread %d new connections as %v, want pod-c at least 60%% of fair", total, newConns)
				}
			},
		},
	}
	// The same two scenarios over gRPC: the pods serve kaload.v1.Kaload on
	// the published port, the hammer calls Ping over one HTTP/2 connection
	// per slot, and --max-requests ends connections with a GOAWAY.
	for _, tt := range tests[:2] {
		tt.name, tt.grpc = "grpc-"+tt.name, true
		tests = append(tests, tt)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			window, newConns := runScaleUp(t, ipt, bin, tt.maxRequests, tt.grpc)
			tt.verdict(t, window, newConns)
		})
	}
}

// runScaleUp runs one scenario and returns the report of the window after
// the scale-up and, per pod, the connections the kernel DNAT-ed to it after
// the rules were rewritten.
func runScaleUp(t *testing.T, ipt iptables, bin string, maxRequests int, grpc bool) (summary, map[string]uint64) {
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	l := newLab(t, ipt)
	l.requireIsolated()
	mac := l.bridgeAddr()
	// No --hostname: each pod is named by the OS hostname of its UTS namespace.
	serve := func(p *pod) {
		if grpc { // gRPC on the published port, HTTP aside
			l.start(ctx, p, helperEnv(), bin, "serve", "--listen", fmt.Sprintf(":%d", podPort+1),
				"--grpc-listen", fmt.Sprintf(":%d", podPort), "--max-requests", strconv.Itoa(maxRequests))
			return
		}
		l.start(ctx, p, helperEnv(), bin, "serve", "--listen", fmt.Sprintf(":%d", podPort),
			"--max-requests", strconv.Itoa(maxRequests))
	}
	url := "http://" + vip.String() + "/"
	if grpc {
		url = "grpc://" + vip.String()
	}
	a, b := l.addPod("pod-a"), l.addPod("pod-b")
	serve(a)
	serve(b)
	l.waitListening(ctx, a, b)
	l.publish(a, b)

	results := filepath.Join(t.TempDir(), "results")
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	start := time.Now()
	hammer := l.command(ctx, out, errOut, helperEnv(), "netns", "exec", l.node, bin, "hammer",
		"--url", url, "-c", strconv.Itoa(hammerConns),
		"-d", hammerDuration.String(), "--rate", strconv.Itoa(hammerRate),
		"-o", results, "--format", "json", "--quiet")
	select {
	case <-time.After(scaleAfter):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}

	// Scale up the way a cluster does: the pod starts, becomes ready, and
	// only then do its endpoint and the rewritten rules appear.
	t0 := time.Now()
	c := l.addPod("pod-c")
	if after := l.bridgeAddr(); after != mac {
		t.Errorf("adding a bridge port changed its MAC from %s to %s", mac, after)
	}
	serve(c)
	l.waitListening(ctx, c)
	l.publish(a, b, c)
	scaledAt := time.Since(start)
	t.Logf("scale-up (namespace, veth, serve ready, rules) took %s", time.Since(t0).Round(time.Millisecond))

	if err := hammer.Wait(); err != nil {
		t.Fatalf("kaload hammer: %v\n%s", err, errOut.String())
	}
	var whole summary
	if err := json.Unmarshal([]byte(out.String()), &whole); err != nil {
		t.Fatalf("kaload hammer --format json: %v\n%s", err, out.String())
	}
	newConns := l.dnatCounts()
	t.Logf("max-requests %d: %d requests, %d errors, %d connections %s; scaled at %s; new connections after scale-up by the nat table: %v",
		maxRequests, whole.Requests, whole.Errors, whole.Connections, backendsLine(whole), scaledAt.Round(time.Millisecond), newConns)

	// The hammer's clock starts after ours, so scaledAt in its offsets is a
	// little late, never early: the window below holds only post-scale traffic.
	from := (scaledAt + settle).Round(time.Millisecond)
	rep, err := exec.CommandContext(ctx, bin, "report", results, "--from", from.String(), "--format", "json").Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kaload report --from %s: %v: %s", from, err, stderr)
	}
	var window summary
	if err := json.Unmarshal(rep, &window); err != nil {
		t.Fatalf("kaload report --format json: %v\n%s", err, rep)
	}
	t.Logf("window from %s: %d requests %s", from, window.Requests, backendsLine(window))

	// Checks common to both scenarios; the verdicts are the caller's.
	if whole.Errors != 0 {
		t.Errorf("%d of %d requests failed; recycling and scaling must not fail any", whole.Errors, whole.Requests)
	}
	for _, be := range whole.Backends {
		if be.Name != "pod-a" && be.Name != "pod-b" && be.Name != "pod-c" {
			t.Errorf("backend %q is not a pod's OS hostname", be.Name)
		}
	}
	// pod-c did not exist before scaleAfter (the hammer's clock lags ours by
	// its start-up, so allow a second): an earlier answer means the lab leaks.
	if _, first, ok := whole.backend("pod-c"); ok && first < (scaleAfter-time.Second).Seconds() {
		t.Errorf("pod-c first answered at %.2fs, before it existed (~%s)", first, scaleAfter)
	}
	if window.Requests < 300 {
		t.Fatalf("only %d requests after scale-up (from %s): too few to judge", window.Requests, from)
	}
	return window, newConns
}

func backendsLine(s summary) string {
	var parts []string
	for _, b := range s.Backends {
		parts = append(parts, fmt.Sprintf("%s=%d(first %.2fs)", b.Name, b.Requests, b.FirstSeenSeconds))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// buildKaload builds the module's kaload binary into the test's temp dir.
func buildKaload(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("kernel lab: go toolchain not in PATH to build kaload (%v)", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	mod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(mod)) == "" {
		t.Fatalf("go env GOMOD: %v %q", err, mod)
	}
	bin := filepath.Join(t.TempDir(), "kaload")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/kaload")
	build.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kaload: %v\n%s", err, out)
	}
	return bin
}
