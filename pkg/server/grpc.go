package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	"github.com/kaload/kaload/pkg/server/grpcrecycle"
	"github.com/kaload/kaload/pkg/server/kaloadpb"
)

// Metadata keys of gRPC answers (lower case, as HTTP/2 sends them).
const (
	GRPCTotalKey    = "total-request"
	GRPCPositionKey = "x-kaload-conn-requests"
	// DefaultStreamInterval spaces the replies of the Stream RPC.
	DefaultStreamInterval = time.Second
)

// grpcService implements kaload.v1.Kaload.
type grpcService struct {
	kaloadpb.UnimplementedKaloadServer
	s *Server
}

func (s *Server) newGRPC() error {
	s.health = health.NewServer()
	s.health.SetServingStatus(kaloadpb.Kaload_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.grpcKey = strings.ToLower(s.cfg.BackendHeader)
	if s.cfg.ResponseSize > 0 {
		padding := padding()
		s.grpcPayload = padding[:0]
		for len(s.grpcPayload) < s.cfg.ResponseSize {
			s.grpcPayload = append(s.grpcPayload, padding[:min(len(padding), s.cfg.ResponseSize-len(s.grpcPayload))]...)
		}
	}
	svc := &grpcService{s: s}
	rc, err := grpcrecycle.New(grpcrecycle.Config{
		MaxRPCs:         s.cfg.MaxRequests,
		MaxRPCsJitter:   s.cfg.MaxRequestsJitter,
		MaxConnAge:      s.cfg.MaxConnAge,
		MaxConnAgeGrace: s.cfg.MaxConnAgeGrace,
		Rand:            s.cfg.Rand,
		OnConnClose:     func(n uint64, _ grpcrecycle.Reason) { s.perConnRPC.Observe(float64(n)) },
	}, func(gs *grpc.Server) {
		kaloadpb.RegisterKaloadServer(gs, svc)
		healthpb.RegisterHealthServer(gs, s.health)
		reflection.Register(gs)
	})
	if err != nil {
		return err
	}
	s.grc = rc
	return nil
}

// GRPC returns the recycler that serves gRPC connections (stats, Drain).
func (s *Server) GRPC() *grpcrecycle.Server { return s.grc }

// ServeGRPC serves gRPC on ln (kaload.v1.Kaload, grpc.health.v1 and server
// reflection) until ctx is done, then drains as Serve does: health turns
// NOT_SERVING, every connection gets a GOAWAY (new ones after their first
// RPC) for DrainDelay, and RPCs in flight finish within ShutdownGrace. It
// closes ln and returns nil after a clean drain. It may run beside Serve.
func (s *Server) ServeGRPC(ctx context.Context, ln net.Listener) error {
	if !s.servingGRPC.CompareAndSwap(false, true) {
		return errors.New("server: ServeGRPC called twice")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grc.Serve(ln) }()
	select {
	case err := <-errc:
		s.grc.Stop()
		return fmt.Errorf("serve grpc: %w", err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	s.grc.Drain()
	if s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			s.grc.Stop()
			return fmt.Errorf("serve grpc: %w", err)
		}
	}
	done := make(chan struct{})
	go func() {
		s.grc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(s.cfg.ShutdownGrace)
	defer t.Stop()
	var err error
	select {
	case <-done:
	case <-t.C:
		err = fmt.Errorf("grpc shutdown within %v: RPCs still in flight were ended", s.cfg.ShutdownGrace)
		s.grc.Stop()
		<-done
	}
	<-errc
	return err
}

// header is the metadata every answer carries.
func (s *Server) grpcHeader(ctx context.Context, total uint64) metadata.MD {
	return metadata.MD{
		s.grpcKey:       s.hostValue,
		GRPCTotalKey:    {strconv.FormatUint(total, 10)},
		GRPCPositionKey: {strconv.FormatUint(grpcrecycle.ConnRPCs(ctx), 10)},
	}
}

// shape applies the load shaping of one load request or RPC; false when
// the caller went away meanwhile.
func (s *Server) shape(ctx context.Context) bool {
	if s.limiter != nil {
		if err := s.limiter.wait(ctx); err != nil {
			return false
		}
	}
	if s.cfg.Delay > 0 {
		t := time.NewTimer(s.cfg.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	if s.cfg.CPU > 0 {
		burnCPU(ctx, s.cfg.CPU)
	}
	return true
}

func (g *grpcService) Ping(ctx context.Context, _ *kaloadpb.PingRequest) (*kaloadpb.PingReply, error) {
	s := g.s
	if !s.shape(ctx) {
		return nil, ctx.Err()
	}
	total := s.requests.Add(1)
	if err := grpc.SetHeader(ctx, s.grpcHeader(ctx, total)); err != nil {
		return nil, err
	}
	return &kaloadpb.PingReply{Backend: s.hostname, Request: total,
		ConnRequest: grpcrecycle.ConnRPCs(ctx), Payload: s.grpcPayload}, nil
}

func (g *grpcService) Stream(req *kaloadpb.StreamRequest, st grpc.ServerStreamingServer[kaloadpb.PingReply]) error {
	s := g.s
	ctx := st.Context()
	interval := s.cfg.StreamInterval
	if interval == 0 {
		interval = DefaultStreamInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	pos := grpcrecycle.ConnRPCs(ctx)
	for i := uint64(0); req.Count == 0 || i < req.Count; i++ {
		if i > 0 {
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if s.cfg.CPU > 0 {
			burnCPU(ctx, s.cfg.CPU)
		}
		total := s.requests.Add(1)
		if i == 0 {
			if err := st.SendHeader(s.grpcHeader(ctx, total)); err != nil {
				return err
			}
		}
		if err := st.Send(&kaloadpb.PingReply{Backend: s.hostname, Request: total,
			ConnRequest: pos, Payload: s.grpcPayload}); err != nil {
			return err
		}
	}
	return nil
}

// grpcCollectors returns the gRPC collectors; they read grpcrecycle.Stats at scrape time.
func (s *Server) grpcCollectors() []prometheus.Collector {
	stats := func(f func(grpcrecycle.Stats) float64) func() float64 {
		return func() float64 { return f(s.grc.Stats()) }
	}
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_grpc_rpcs_total",
			Help: "gRPC calls started, including health checks and reflection.",
		}, stats(func(r grpcrecycle.Stats) float64 { return float64(r.RPCs) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kaload_grpc_connections_active",
			Help: "Open gRPC client connections.",
		}, stats(func(r grpcrecycle.Stats) float64 { return float64(r.ActiveConns) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_grpc_connections_total",
			Help: "gRPC client connections accepted.",
		}, stats(func(r grpcrecycle.Stats) float64 { return float64(r.TotalConns) })),
		s.perConnRPC,
	}
	for _, r := range grpcrecycle.Reasons() {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "kaload_grpc_connections_recycled_total",
			Help:        "gRPC connections the server ended (GOAWAY), by reason.",
			ConstLabels: prometheus.Labels{"reason": r.String()},
		}, stats(func(rs grpcrecycle.Stats) float64 { return float64(rs.Recycled[r]) })))
	}
	return cs
}
