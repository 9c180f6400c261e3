package grpcrecycle

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type closed struct {
	mu   sync.Mutex
	rpcs []uint64
	why  []Reason
}

func (c *closed) record(n uint64, r Reason) {
	c.mu.Lock()
	c.rpcs, c.why = append(c.rpcs, n), append(c.why, r)
	c.mu.Unlock()
}

func serve(t *testing.T, cfg Config) (*Server, string, *closed) {
	t.Helper()
	cl := &closed{}
	cfg.OnConnClose = cl.record
	hs := health.NewServer()
	s, err := New(cfg, func(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, hs) })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String(), cl
}

func client(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestMaxRPCsReasonAndCount(t *testing.T) {
	s, addr, cl := serve(t, Config{MaxRPCs: 4})
	c := client(t, addr)
	for range 12 {
		if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 connections to close", func() bool { return s.Stats().Recycled[ReasonMaxRPCs] == 3 })
	st := s.Stats()
	if st.RPCs != 12 || st.TotalConns != 3 || st.ActiveConns != 0 {
		t.Errorf("stats %+v", st)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for i, n := range cl.rpcs {
		if n != 4 || cl.why[i] != ReasonMaxRPCs {
			t.Errorf("connection %d closed after %d RPCs for %v", i, n, cl.why[i])
		}
	}
}

func TestJitterSpreadsLimits(t *testing.T) {
	s, err := New(Config{MaxRPCs: 100, MaxRPCsJitter: 0.5, Rand: rand.New(rand.NewPCG(1, 2))}, func(*grpc.Server) {})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for range 200 {
		n := s.drawLimit()
		if n < 50 || n > 150 {
			t.Fatalf("limit %d outside 100±50%%", n)
		}
		seen[n] = true
	}
	if len(seen) < 20 {
		t.Errorf("only %d distinct limits", len(seen))
	}
}

// TestDrainIdleAndNew: Drain ends open connections now and new ones after
// their first RPC; every RPC succeeds.
func TestDrainIdleAndNew(t *testing.T) {
	s, addr, _ := serve(t, Config{})
	c := client(t, addr)
	if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	s.Drain()
	waitFor(t, "the idle connection to end", func() bool { return s.Stats().Recycled[ReasonShutdown] == 1 })
	for range 3 {
		if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every connection to end", func() bool { return s.Stats().Recycled[ReasonShutdown] == 4 })
}

func TestNewNamesFields(t *testing.T) {
	_, err := New(Config{MaxRPCs: -1, MaxRPCsJitter: 2, MaxConnAge: -1, MaxConnAgeGrace: -1}, nil)
	for _, f := range []string{"MaxRPCs", "MaxRPCsJitter", "MaxConnAge", "MaxConnAgeGrace", "register"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
}
