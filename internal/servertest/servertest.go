// Package servertest runs real kaload servers on loopback for tests, as
// net/http/httptest does for handlers.
package servertest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/server"
)

// Server is a kaload server serving on a free 127.0.0.1 port.
type Server struct {
	*server.Server
	Addr string // host:port
	URL  string // http://host:port/
	// GRPCAddr and GRPCURL are set by StartGRPC: where gRPC is served.
	GRPCAddr string
	GRPCURL  string // grpc://host:port

	stop func()
}

// Start serves cfg until the test ends (or Stop) and returns once /readyz
// would answer 200. A zero cfg.ShutdownGrace becomes 2s so a test's cleanup
// never waits the production default.
func Start(tb testing.TB, cfg server.Config) *Server {
	tb.Helper()
	return start(tb, cfg, false)
}

// StartGRPC is Start that also serves gRPC (ServeGRPC) on a second port.
func StartGRPC(tb testing.TB, cfg server.Config) *Server {
	tb.Helper()
	return start(tb, cfg, true)
}

func start(tb testing.TB, cfg server.Config, withGRPC bool) *Server {
	tb.Helper()
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 2 * time.Second
	}
	srv, err := server.New(cfg)
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	s := &Server{Server: srv, Addr: ln.Addr().String(), URL: "http://" + ln.Addr().String() + "/"}
	var gdone chan error
	if withGRPC {
		gln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("servertest: %v", err)
		}
		gdone = make(chan error, 1)
		go func() { gdone <- srv.ServeGRPC(ctx, gln) }()
		s.GRPCAddr = gln.Addr().String()
		s.GRPCURL = "grpc://" + s.GRPCAddr
	}
	s.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("servertest: server %s: %v", cfg.Hostname, err)
		}
		if gdone != nil {
			if err := <-gdone; err != nil {
				tb.Errorf("servertest: grpc server %s: %v", cfg.Hostname, err)
			}
		}
	})
	tb.Cleanup(s.stop)
	// Like a kubelet, wait for readiness: /readyz answers 503 while starting.
	for deadline := time.Now().Add(10 * time.Second); !srv.Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("servertest: server not ready after 10s")
		}
	}
	return s
}

// Stop drains and stops the server now; later calls do nothing.
func (s *Server) Stop() { s.stop() }
