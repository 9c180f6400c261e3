package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/kaload/kaload/internal/h2frame"
	"github.com/kaload/kaload/pkg/server/kaloadpb"
)

// grpcServer runs a Server with ServeGRPC on loopback until the test ends.
type grpcServer struct {
	*Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startGRPC(t *testing.T, cfg Config) *grpcServer {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "pod-g"
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 2 * time.Second
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gs := &grpcServer{Server: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { gs.done <- srv.ServeGRPC(ctx, ln) }()
	t.Cleanup(func() { gs.stop() })
	return gs
}

var stopOnce sync.Map

func (g *grpcServer) stop() error {
	g.cancel()
	if v, ok := stopOnce.Load(g); ok {
		return v.(error)
	}
	err := <-g.done
	if err == nil {
		err = errNil
	}
	stopOnce.Store(g, err)
	if err == errNil {
		return nil
	}
	return err
}

var errNil = errors.New("nil")

// goawayDialer dials with grpc-go's client and records the GOAWAY frames the
// connection receives, through the same frame scanner the client engine uses.
type goawayDialer struct {
	mu      sync.Mutex
	goaways []h2frame.GoAway
	dials   int
}

type scanConn struct {
	net.Conn
	d    *goawayDialer
	scan h2frame.Scanner
}

func (c *scanConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scan.Scan(p[:n])
	return n, err
}

func (d *goawayDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.dials++
	d.mu.Unlock()
	sc := &scanConn{Conn: c, d: d}
	sc.scan.OnGoAway = func(g h2frame.GoAway) {
		d.mu.Lock()
		d.goaways = append(d.goaways, g)
		d.mu.Unlock()
	}
	return sc, nil
}

func dialGRPC(t *testing.T, addr string, d *goawayDialer) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if d != nil {
		opts = append(opts, grpc.WithContextDialer(d.dial))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPCPingHeaders(t *testing.T) {
	g := startGRPC(t, Config{ResponseSize: 100})
	c := kaloadpb.NewKaloadClient(dialGRPC(t, g.addr, nil))
	for i := 1; i <= 3; i++ {
		var md metadata.MD
		r, err := c.Ping(context.Background(), &kaloadpb.PingRequest{}, grpc.Header(&md))
		if err != nil {
			t.Fatal(err)
		}
		if r.Backend != "pod-g" || r.ConnRequest != uint64(i) || len(r.Payload) != 100 {
			t.Errorf("reply %d: backend %q conn_request %d payload %d", i, r.Backend, r.ConnRequest, len(r.Payload))
		}
		want := map[string]string{"accept-request-hostname": "pod-g", GRPCPositionKey: strconv.Itoa(i), GRPCTotalKey: strconv.Itoa(i)}
		for k, v := range want {
			if got := md.Get(k); len(got) != 1 || got[0] != v {
				t.Errorf("reply %d: metadata %s = %q, want %q", i, k, got, v)
			}
		}
	}
}

// TestGRPCMaxRequests is the proof on the server side: 10 clients
// each making 100 unary RPCs on a server that ends connections after 5
// open exactly 200 connections, and no RPC fails.
func TestGRPCMaxRequests(t *testing.T) {
	g := startGRPC(t, Config{MaxRequests: 5})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	d := &goawayDialer{}
	for range 10 {
		cc := dialGRPC(t, g.addr, d)
		c := kaloadpb.NewKaloadClient(cc)
		wg.Go(func() {
			for i := range 100 {
				r, err := c.Ping(context.Background(), &kaloadpb.PingRequest{})
				if err != nil {
					errs <- err
					return
				}
				if want := uint64(i%5 + 1); r.ConnRequest != want {
					errs <- errors.New("conn_request " + strconv.FormatUint(r.ConnRequest, 10) + ", want " + strconv.FormatUint(want, 10))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, "connections to close", func() bool { return g.Stats().GRPCActiveConns <= 10 })
	st := g.Stats()
	if st.GRPCTotalConns != 200 || st.Requests != 1000 {
		t.Errorf("%d connections, %d RPCs; want 200 and 1000", st.GRPCTotalConns, st.Requests)
	}
	if d.dials != 200 {
		t.Errorf("clients dialled %d times, want 200", d.dials)
	}
}

// TestGRPCGoAwaySequence checks that a grpc-go client sees from a
// connection ended by MaxRequests the GOAWAY sequence a grpc-go server sends
// at MaxConnectionAge: a heads-up GOAWAY with the largest stream id, then
// one with the last stream id, both NO_ERROR.
func TestGRPCGoAwaySequence(t *testing.T) {
	sequence := func(t *testing.T, addr string, rpcs int) []h2frame.GoAway {
		d := &goawayDialer{}
		c := kaloadpb.NewKaloadClient(dialGRPC(t, addr, d))
		for range rpcs {
			if _, err := c.Ping(context.Background(), &kaloadpb.PingRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "two GOAWAY frames", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.goaways) >= 2 })
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.goaways[:2]
	}
	g := startGRPC(t, Config{MaxRequests: 1, Delay: 300 * time.Millisecond}) // in flight while both GOAWAYs arrive
	ours := sequence(t, g.addr, 1)

	// grpc-go's own server with MaxConnectionAge.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := grpc.NewServer(grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 200 * time.Millisecond}))
	slow, err := New(Config{Hostname: "ref", Delay: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	kaloadpb.RegisterKaloadServer(ref, &grpcService{s: slow})
	go ref.Serve(ln)
	defer ref.Stop()
	// The RPC is in flight when the age is reached, as ours was at its limit.
	theirs := sequence(t, ln.Addr().String(), 1)
	for i := range 2 {
		if ours[i].LastStreamID != theirs[i].LastStreamID || ours[i].Code != theirs[i].Code {
			t.Errorf("GOAWAY %d: ours last stream %d code %d, grpc-go's %d code %d",
				i+1, ours[i].LastStreamID, ours[i].Code, theirs[i].LastStreamID, theirs[i].Code)
		}
	}
	if ours[0].LastStreamID != 1<<31-1 || ours[1].LastStreamID != 1 {
		t.Errorf("GOAWAY last stream ids %d, %d; want %d, 1", ours[0].LastStreamID, ours[1].LastStreamID, 1<<31-1)
	}
	if theirs[0].Debug != "max_age" {
		t.Errorf("grpc-go's debug data %q, want max_age", theirs[0].Debug)
	}
}

// TestGRPCMaxConnAge: a server stream outlives the age and the grace and
// is ended; unary RPCs made meanwhile all succeed.
func TestGRPCMaxConnAge(t *testing.T) {
	g := startGRPC(t, Config{MaxConnAge: 300 * time.Millisecond, MaxConnAgeGrace: 300 * time.Millisecond,
		StreamInterval: 20 * time.Millisecond})
	cc := dialGRPC(t, g.addr, nil)
	c := kaloadpb.NewKaloadClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Stream(ctx, &kaloadpb.StreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var msgs int
	for {
		_, err = st.Recv()
		if err != nil {
			break
		}
		msgs++
	}
	if status.Code(err) != codes.Unavailable || err == io.EOF {
		t.Errorf("stream ended with %v, want Unavailable", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || msgs < 10 {
		t.Errorf("stream ended after %v and %d messages, want age+grace (about 600ms)", d, msgs)
	}
	// Unary calls across several age GOAWAYs never fail.
	c2 := kaloadpb.NewKaloadClient(dialGRPC(t, g.addr, nil))
	for deadline := time.Now().Add(1200 * time.Millisecond); time.Now().Before(deadline); {
		if _, err := c2.Ping(ctx, &kaloadpb.PingRequest{}); err != nil {
			t.Fatalf("unary RPC failed during age recycling: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := g.Stats(); s.GRPCRecycledMaxAge < 2 {
		t.Errorf("%d connections ended by max age, want >= 2", s.GRPCRecycledMaxAge)
	}
}

func TestGRPCHealthReflectionDrain(t *testing.T) {
	g := startGRPC(t, Config{Delay: 200 * time.Millisecond})
	cc := dialGRPC(t, g.addr, nil)
	hc := healthpb.NewHealthClient(cc)
	r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "kaload.v1.Kaload"})
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", r, err)
	}
	rc := reflectpb.NewServerReflectionClient(cc)
	rs, err := rc.ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}})
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rs.CloseSend()
	names := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		names[s.Name] = true
	}
	for _, want := range []string{"kaload.v1.Kaload", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !names[want] {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	// An RPC in flight when the drain starts finishes.
	c := kaloadpb.NewKaloadClient(cc)
	got := make(chan error, 1)
	go func() {
		_, err := c.Ping(context.Background(), &kaloadpb.PingRequest{})
		got <- err
	}()
	waitFor(t, "the RPC to start", func() bool { return g.GRPC().Stats().RPCs >= 3 })
	if err := g.stop(); err != nil {
		t.Errorf("ServeGRPC after drain: %v", err)
	}
	if err := <-got; err != nil {
		t.Errorf("RPC in flight during the drain: %v", err)
	}
	if s := g.Stats(); s.GRPCRecycledShutdown != 1 {
		t.Errorf("%d connections ended by the drain, want 1", s.GRPCRecycledShutdown)
	}
}

// TestGRPCMetricsAndShaping: /metrics counts RPCs, connections and GOAWAY
// recycling by reason; --delay and --response-size shape RPCs.
func TestGRPCMetricsAndShaping(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := startGRPC(t, Config{MaxRequests: 2, Delay: 30 * time.Millisecond, ResponseSize: 10, Registerer: reg})
	c := kaloadpb.NewKaloadClient(dialGRPC(t, g.addr, nil))
	for range 4 {
		start := time.Now()
		r, err := c.Ping(context.Background(), &kaloadpb.PingRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 30*time.Millisecond || len(r.Payload) != 10 {
			t.Errorf("Ping took %v with %d payload bytes; want >= 30ms and 10", d, len(r.Payload))
		}
	}
	waitFor(t, "both connections to close", func() bool { return g.Stats().GRPCRecycledMaxRequests == 2 })
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.Metric {
			name := f.GetName()
			for _, l := range m.Label {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.Counter != nil:
				got[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				got[name] = m.Gauge.GetValue()
			case m.Histogram != nil:
				got[name] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	for name, want := range map[string]float64{
		"kaload_requests_total": 4, "kaload_grpc_rpcs_total": 4, "kaload_grpc_connections_total": 2,
		"kaload_grpc_connections_active": 0, "kaload_grpc_rpcs_per_connection": 2,
		"kaload_grpc_connections_recycled_total{reason=max_requests}": 2,
		"kaload_grpc_connections_recycled_total{reason=max_age}":      0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}
