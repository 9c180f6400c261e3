// Package grpcrecycle gives a grpc-go service what grpc-go has no option
// for: a limit on the RPCs one connection carries, after which the server
// ends the connection gracefully, so that clients reconnect and a Kubernetes
// Service may route them to a new pod. It also applies grpc-go's own
// MaxConnectionAge and MaxConnectionAgeGrace.
//
// Each accepted connection is served by a grpc.Server of its own, built by
// the register function the caller passes to New. Ending one connection is
// then that server's GracefulStop: the client sees exactly the GOAWAY
// sequence of a grpc-go server reaching MaxConnectionAge (a GOAWAY with the
// maximal stream id and a PING, then the real last stream id), every RPC
// already started finishes, and RPCs sent meanwhile are retried by the
// client on a new connection. The GOAWAY leaves before the answer to the
// connection's last RPC, so a client with one RPC in flight sends nothing
// more on it and a limit of N means exactly N RPCs per connection.
//
// A per-connection grpc.Server costs a few goroutines and allocations per
// connection, not per RPC: the RPC path is grpc-go's own.
package grpcrecycle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/kaload/kaload/internal/h2frame"
	"github.com/kaload/kaload/pkg/field"
)

// Reason says why the server ended a connection.
type Reason int

const (
	ReasonNone     Reason = iota // the client closed it, or it failed
	ReasonMaxRPCs                // Config.MaxRPCs reached
	ReasonMaxAge                 // Config.MaxConnAge reached (grpc-go's GOAWAY "max_age")
	ReasonShutdown               // Drain, GracefulStop or Stop
	numReasons
)

var reasonNames = [numReasons]string{"none", "max_requests", "max_age", "shutdown"}

// String returns the reason's name as used in metrics labels.
func (r Reason) String() string {
	if r >= 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Reasons lists the reasons the server ends connections for.
func Reasons() []Reason { return []Reason{ReasonMaxRPCs, ReasonMaxAge, ReasonShutdown} }

// Config sets the limits. The zero value recycles nothing.
type Config struct {
	// MaxRPCs ends a connection gracefully once it has started this many
	// RPCs (unary and streaming alike); 0 = unlimited.
	MaxRPCs int
	// MaxRPCsJitter spreads each connection's limit uniformly over
	// MaxRPCs*(1±MaxRPCsJitter), 0..1, so that connections opened together
	// do not all reconnect together.
	MaxRPCsJitter float64
	// MaxConnAge is grpc-go's keepalive.ServerParameters.MaxConnectionAge
	// (grpc-go adds its fixed ±10% jitter); 0 = unlimited.
	MaxConnAge time.Duration
	// MaxConnAgeGrace is grpc-go's MaxConnectionAgeGrace: how long RPCs may
	// go on after the age GOAWAY before the connection is closed; it also
	// bounds the drain after MaxRPCs. 0 = no bound.
	MaxConnAgeGrace time.Duration
	// Rand draws the MaxRPCs jitter; nil means randomly seeded.
	Rand *rand.Rand
	// OnConnClose, when set, is called once per connection after it closed,
	// with the RPCs it carried and why it ended.
	OnConnClose func(rpcs uint64, reason Reason)
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	RPCs        uint64 // RPCs started, over every connection
	ActiveConns int64
	TotalConns  uint64
	Recycled    [numReasons]uint64 // connections ended, by reason (ReasonNone: by the client)
}

// Server accepts connections and serves each with its own grpc.Server.
type Server struct {
	cfg      Config
	register func(*grpc.Server)
	opts     []grpc.ServerOption

	randMu sync.Mutex
	rand   *rand.Rand

	mu       sync.Mutex
	conns    map[*conn]struct{}
	lns      map[net.Listener]struct{}
	draining bool // Drain was called: every connection ends after its next RPC
	stopped  bool
	wg       sync.WaitGroup // one per connection

	rpcs   atomic.Uint64
	active atomic.Int64
	total  atomic.Uint64
	recyc  [numReasons]atomic.Uint64
}

// New checks cfg; each problem is a *field.Error naming the Config field. register is called once
// per connection with a fresh grpc.Server built with opts (plus the
// recycler's interceptors and keepalive parameters): register the services
// there. opts must not set keepalive.ServerParameters' MaxConnectionAge
// (use Config) and may add interceptors, which run after the recycler's.
func New(cfg Config, register func(*grpc.Server), opts ...grpc.ServerOption) (*Server, error) {
	var errs []error
	if cfg.MaxRPCs < 0 {
		errs = append(errs, field.Errorf("MaxRPCs", "must not be negative, got %d", cfg.MaxRPCs))
	}
	if !(cfg.MaxRPCsJitter >= 0 && cfg.MaxRPCsJitter <= 1) {
		errs = append(errs, field.Errorf("MaxRPCsJitter", "must be within 0..1, got %v", cfg.MaxRPCsJitter))
	}
	if cfg.MaxConnAge < 0 {
		errs = append(errs, field.Errorf("MaxConnAge", "must not be negative, got %v", cfg.MaxConnAge))
	}
	if cfg.MaxConnAgeGrace < 0 {
		errs = append(errs, field.Errorf("MaxConnAgeGrace", "must not be negative, got %v", cfg.MaxConnAgeGrace))
	}
	if register == nil {
		errs = append(errs, errors.New("register must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, register: register, opts: opts, rand: cfg.Rand,
		conns: map[*conn]struct{}{}, lns: map[net.Listener]struct{}{}}
	if s.rand == nil {
		s.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{RPCs: s.rpcs.Load(), ActiveConns: s.active.Load(), TotalConns: s.total.Load()}
	for i := range st.Recycled {
		st.Recycled[i] = s.recyc[i].Load()
	}
	return st
}

type ctxKey struct{}

// ConnRPCs returns the 1-based position of the RPC in ctx on its
// connection, 0 when ctx is not an RPC's served by a Server.
func ConnRPCs(ctx context.Context) uint64 {
	n, _ := ctx.Value(ctxKey{}).(uint64)
	return n
}

// Serve accepts connections on ln until ln fails or the Server stops; it
// returns nil after GracefulStop or Stop. Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if stopped {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // e.g. EMFILE surfaces as temporary
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.serveConn(c)
	}
}

// conn is one accepted connection and its grpc.Server.
type conn struct {
	s         *Server
	net.Conn  // wrapped: watches written frames for GOAWAY
	gs        *grpc.Server
	ln        *oneConnListener
	limit     uint64
	rpcs      atomic.Uint64
	draining  atomic.Bool // a GracefulStop was started
	reason    atomic.Int32
	goaway    chan struct{} // closed when the first GOAWAY frame was written
	closed    chan struct{} // closed when the transport closed the connection
	gaOnce    sync.Once
	closeOnce sync.Once
	ageAway   atomic.Bool // the GOAWAY said max_age

	wmu  sync.Mutex
	scan h2frame.Scanner
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.scan.Scan(p)
	c.wmu.Unlock()
	return c.Conn.Write(p)
}

func (s *Server) drawLimit() uint64 {
	n := s.cfg.MaxRPCs
	if n == 0 {
		return math.MaxUint64
	}
	if j := s.cfg.MaxRPCsJitter; j > 0 {
		s.randMu.Lock()
		f := 1 + j*(2*s.rand.Float64()-1)
		s.randMu.Unlock()
		n = max(1, int(math.Round(float64(n)*f)))
	}
	return uint64(n)
}

func (s *Server) serveConn(nc net.Conn) {
	c := &conn{s: s, Conn: nc, limit: s.drawLimit(), goaway: make(chan struct{}), closed: make(chan struct{})}
	c.scan.OnGoAway = func(g h2frame.GoAway) {
		if g.Debug == "max_age" {
			c.ageAway.Store(true)
		}
		c.gaOnce.Do(func() { close(c.goaway) })
	}
	kp := keepalive.ServerParameters{MaxConnectionAge: s.cfg.MaxConnAge, MaxConnectionAgeGrace: s.cfg.MaxConnAgeGrace}
	opts := append([]grpc.ServerOption{
		grpc.KeepaliveParams(kp),
		grpc.ChainUnaryInterceptor(c.unary),
		grpc.ChainStreamInterceptor(c.stream),
	}, s.opts...)
	c.gs = grpc.NewServer(opts...)
	s.register(c.gs)
	c.ln = newOneConnListener(c)

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		c.gs.Stop()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	draining := s.draining
	s.wg.Add(1)
	s.mu.Unlock()
	if draining {
		c.limit = 1
		c.reason.Store(int32(ReasonShutdown))
	}
	s.active.Add(1)
	s.total.Add(1)
	go func() {
		defer s.wg.Done()
		// Serve returns when the connection closed (the listener closes
		// with it) or when a stop closed the listener; then the drain may
		// still be going on: wait for the connection to end.
		c.gs.Serve(c.ln)
		if c.ln.given.CompareAndSwap(false, true) { // stopped before it took the connection
			(&closeNotify{conn: c, l: c.ln}).Close()
		}
		<-c.closed
		c.gs.Stop() // releases what the grpc.Server still holds
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.active.Add(-1)
		reason := Reason(c.reason.Load())
		if reason == ReasonNone && c.ageAway.Load() {
			reason = ReasonMaxAge
		}
		s.recyc[reason].Add(1)
		if s.cfg.OnConnClose != nil {
			s.cfg.OnConnClose(c.rpcs.Load(), reason)
		}
	}()
}

// begin counts an RPC and starts the drain when it is the connection's last.
func (c *conn) begin(ctx context.Context) context.Context {
	n := c.rpcs.Add(1)
	c.s.rpcs.Add(1)
	if n == c.limit {
		c.drain(ReasonMaxRPCs)
		// Hold the RPC until the GOAWAY is on the wire, so that it goes
		// before this RPC's answer (bounded: the drain is best effort).
		t := time.NewTimer(time.Second)
		select {
		case <-c.goaway:
		case <-t.C:
		}
		t.Stop()
	}
	return context.WithValue(ctx, ctxKey{}, n)
}

func (c *conn) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(c.begin(ctx), req)
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

func (c *conn) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &wrappedStream{ServerStream: ss, ctx: c.begin(ss.Context())})
}

// drain ends the connection gracefully, once; RPCs in flight finish, bounded
// by MaxConnAgeGrace when set.
func (c *conn) drain(reason Reason) {
	if !c.draining.CompareAndSwap(false, true) {
		return
	}
	c.reason.CompareAndSwap(int32(ReasonNone), int32(reason))
	go func() {
		var t *time.Timer
		if g := c.s.cfg.MaxConnAgeGrace; g > 0 {
			t = time.AfterFunc(g, c.gs.Stop)
		}
		c.gs.GracefulStop()
		if t != nil {
			t.Stop()
		}
	}()
}

// Drain starts ending every connection gracefully: open ones now, new ones
// after their first RPC. Serve keeps accepting (Kubernetes may still route
// new connections here until the endpoints update).
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.drain(ReasonShutdown)
	}
}

// GracefulStop stops accepting, ends every connection gracefully and waits
// until their RPCs finished.
func (s *Server) GracefulStop() { s.stop(true) }

// Stop closes every listener and connection at once; RPCs in flight fail.
func (s *Server) Stop() { s.stop(false) }

func (s *Server) stop(graceful bool) {
	s.mu.Lock()
	s.stopped = true
	for ln := range s.lns {
		ln.Close()
	}
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.reason.CompareAndSwap(int32(ReasonNone), int32(ReasonShutdown))
		if graceful {
			c.drain(ReasonShutdown)
		} else {
			c.gs.Stop()
		}
	}
	s.wg.Wait()
}

// oneConnListener hands its grpc.Server one connection, then blocks until
// that connection is closed, so that Serve returns with it.
type oneConnListener struct {
	c      *conn
	once   sync.Once
	given  atomic.Bool
	closed chan struct{}
}

func newOneConnListener(c *conn) *oneConnListener {
	return &oneConnListener{c: c, closed: make(chan struct{})}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.given.CompareAndSwap(false, true) {
		return &closeNotify{conn: l.c, l: l}, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// closeNotify closes the listener when the transport closes the connection.
type closeNotify struct {
	*conn
	l *oneConnListener
}

func (c *closeNotify) Close() error {
	err := c.conn.Conn.Close()
	c.l.Close()
	c.closeOnce.Do(func() { close(c.closed) })
	return err
}
