package server

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestGHZRecycling drives the gRPC server with ghz, a load tool nobody here
// wrote (go install github.com/bojand/ghz/cmd/ghz; skipped when absent):
// 1000 unary RPCs over 10 connections on a server that ends every
// connection after 5 RPCs, found by reflection. None may fail.
func TestGHZRecycling(t *testing.T) {
	ghz, err := exec.LookPath("ghz")
	if err != nil {
		t.Skip("ghz not installed (go install github.com/bojand/ghz/cmd/ghz@latest)")
	}
	g := startGRPC(t, Config{MaxRequests: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ghz, "--insecure", "--call", "kaload.v1.Kaload/Ping",
		"-n", "1000", "-c", "10", "--connections", "10", "--format", "json", g.addr).Output()
	if err != nil {
		t.Fatalf("ghz: %v\n%s", err, out)
	}
	var rep struct {
		Count         int64            `json:"count"`
		StatusCodeMap map[string]int64 `json:"statusCodeDistribution"`
		ErrorDist     map[string]int64 `json:"errorDistribution"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ghz output: %v\n%s", err, out)
	}
	if rep.Count != 1000 || rep.StatusCodeMap["OK"] != 1000 || len(rep.ErrorDist) != 0 {
		t.Errorf("ghz: %d RPCs, status codes %v, errors %v; want 1000 OK", rep.Count, rep.StatusCodeMap, rep.ErrorDist)
	}
	waitFor(t, "connections to close", func() bool { return g.Stats().GRPCActiveConns <= 10 })
	// ghz's workers share a connection's RPCs unevenly and send up to 1 RPC
	// more per connection than the server lets through, which grpc-go
	// retries on a new one: at least 1000/5 connections.
	if st := g.Stats(); st.GRPCTotalConns < 200 || st.Requests != 1000 {
		t.Errorf("%d connections, %d RPCs; want >= 200 and 1000", st.GRPCTotalConns, st.Requests)
	}
}

// TestGRPCurl calls the server with grpcurl (skipped when absent): the
// service is found by reflection and the answer names the backend.
func TestGRPCurl(t *testing.T) {
	grpcurl, err := exec.LookPath("grpcurl")
	if err != nil {
		t.Skip("grpcurl not installed (go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest)")
	}
	g := startGRPC(t, Config{MaxRequests: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"-plaintext", g.addr, "list"},
		{"-plaintext", "-v", "-d", "{}", g.addr, "kaload.v1.Kaload/Ping"},
		{"-plaintext", "-d", `{"service":"kaload.v1.Kaload"}`, g.addr, "grpc.health.v1.Health/Check"},
	} {
		out, err := exec.CommandContext(ctx, grpcurl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		s := string(out)
		switch args[len(args)-1] {
		case "list":
			if !strings.Contains(s, "kaload.v1.Kaload") || !strings.Contains(s, "grpc.health.v1.Health") {
				t.Errorf("grpcurl list: %s", s)
			}
		case "kaload.v1.Kaload/Ping":
			if !strings.Contains(s, "accept-request-hostname: pod-g") || !strings.Contains(s, `"backend": "pod-g"`) {
				t.Errorf("grpcurl Ping: %s", s)
			}
		default:
			if !strings.Contains(s, "SERVING") {
				t.Errorf("grpcurl health: %s", s)
			}
		}
	}
}
