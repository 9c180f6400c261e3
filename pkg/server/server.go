package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/http/httpguts"

	"google.golang.org/grpc/health"

	"github.com/kaload/kaload/pkg/field"
	"github.com/kaload/kaload/pkg/server/grpcrecycle"
	"github.com/kaload/kaload/pkg/server/recycle"
)

// Header names the server sends on every response.
const (
	DefaultBackendHeader = "Accept-Request-hostname" // the backend's name (contract: docs/design.md)
	TotalHeader          = "Total-Request"           // server-wide sequence number of load answers
	PositionHeader       = "X-Kaload-Conn-Requests"  // the request's position on its connection
)

// DefaultReadTimeout bounds reading one whole request, headers and body,
// when Config.ReadTimeout is 0.
const DefaultReadTimeout = 30 * time.Second

// Hardened defaults for the http.Server.
const (
	readHeaderTimeout = 10 * time.Second // at most ReadTimeout
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	maxResponseSize   = 1 << 30
	// bodyStall is how long, once the listener closed, a request body may
	// go without a byte before it is cut: the drain waits for slow
	// uploads, not for clients that send nothing.
	bodyStall = time.Second
	// maxPostHandlerRead is what net/http reads of a body its handler left,
	// to keep an HTTP/1 connection (its maxPostHandlerReadBytes).
	maxPostHandlerRead = 256 << 10
)

// Config configures a Server. The zero value serves without recycling.
type Config struct {
	// Hostname is the backend name sent in BackendHeader; "" means os.Hostname().
	// (Reading POD_NAME is the command's job.)
	Hostname string
	// BackendHeader names the header carrying Hostname; "" means DefaultBackendHeader.
	BackendHeader string

	MaxRequests       int           // responses per connection, 0 = unlimited
	MaxRequestsJitter float64       // 0..1
	MaxConnAge        time.Duration // 0 = unlimited
	MaxConnAgeJitter  float64       // 0..1
	MaxConnAgeGrace   time.Duration // 0 = never close expired idle connections

	CPU          time.Duration // CPU to burn per load request
	Delay        time.Duration // time to wait per load request
	ResponseSize int           // exact body size in bytes (gRPC: payload bytes); 0 = a short text line
	// StreamInterval spaces the replies of the gRPC Stream RPC; 0 means
	// DefaultStreamInterval.
	StreamInterval time.Duration
	// Capacity is the load requests per second this server serves; beyond
	// it requests queue FIFO, so an overloaded server shows latency. 0 = unlimited.
	Capacity float64

	H2C         bool   // serve HTTP/2 cleartext (prior knowledge and upgrade-free h2c) beside HTTP/1
	TLSCertFile string // with TLSKeyFile: serve TLS, HTTP/2 by ALPN
	TLSKeyFile  string

	// WebSocketCloseGrace is how long the server waits for a client's close
	// frame after sending its own (1012 at a limit, 1001 on shutdown) before
	// it closes TCP; 0 means DefaultWebSocketCloseGrace.
	WebSocketCloseGrace time.Duration

	// ReadTimeout bounds reading one whole request, headers and body, from
	// its first byte (per stream on HTTP/2): a client that stalls gets 408
	// and, on HTTP/1, its connection closes. 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// ShutdownGrace bounds the drain after ctx is done; 0 means 10s.
	// Requests still receiving their body when the listener closes get
	// bodyStall (1s) per byte-less wait, so a client that sends nothing
	// cannot hold the drain.
	ShutdownGrace time.Duration
	// DrainDelay keeps accepting connections this long after ctx is done,
	// answering /readyz 503 and closing every keep-alive connection after
	// its next response, so that load balancers stop routing here before
	// the listener closes (Kubernetes updates endpoints asynchronously).
	// ShutdownGrace starts after it. 0 closes the listener at once.
	DrainDelay time.Duration
	// Logger, when set, receives one record per request (and server errors).
	Logger *slog.Logger
	// Registerer, when set, also gets the server's kaload_* collectors
	// (/metrics always serves them, with the Go runtime and process
	// collectors beside them). Several servers in one registry need distinct
	// prometheus.WrapRegistererWith labels.
	Registerer prometheus.Registerer
	// Rand draws the per-connection jitter; nil means randomly seeded.
	Rand *rand.Rand
}

// Stats is a cheap snapshot of a Server's counters.
type Stats struct {
	Requests            uint64 // load requests answered on "/" (Total-Request numbers that went out)
	Abandoned           uint64 // load requests the client reset or left before the answer (not in Requests)
	BodyTimeouts        uint64 // load requests whose body did not arrive in time (answered 408)
	BodyErrors          uint64 // load requests whose body was malformed or cut (answered 400)
	H2Resets            uint64 // HTTP/2 streams the client reset (RST_STREAM)
	ResetFloods         uint64 // HTTP/2 connections closed for resetting most of their streams (rapid reset)
	ActiveConns         int64
	TotalConns          uint64
	RecycledMaxRequests uint64
	RecycledMaxAge      uint64
	RecycledShutdown    uint64
	RecycledIdleExpired uint64 // expired idle connections closed after MaxConnAgeGrace

	SocketsOpen    int64  // WebSockets open now
	SocketsTotal   uint64 // WebSockets upgraded
	SocketMessages uint64 // WebSocket messages echoed (whoami included)
	// SocketsClosed counts ended WebSockets by why they ended.
	SocketsClosed [numSocketCloses]uint64

	// gRPC (ServeGRPC): RPCs started, connections, and connections ended
	// by GOAWAY for each reason.
	GRPCRPCs                uint64
	GRPCActiveConns         int64
	GRPCTotalConns          uint64
	GRPCRecycledMaxRequests uint64
	GRPCRecycledMaxAge      uint64
	GRPCRecycledShutdown    uint64
}

// Server is the kaload test server: a load endpoint that names its backend,
// health endpoints, Prometheus metrics, and connection recycling.
type Server struct {
	cfg       Config
	hostname  string
	backend   string   // canonical BackendHeader
	hostValue []string // precomputed header value
	lengthVal []string // Content-Length value when ResponseSize > 0
	rc        *recycle.Recycler
	tls       *tls.Config
	handler   http.Handler
	registry  *prometheus.Registry
	perConn   prometheus.Histogram
	limiter   *limiter
	wsUp      *websocket.Upgrader
	ws        sockets

	grc         *grpcrecycle.Server
	health      *health.Server
	grpcKey     string // BackendHeader in lower case, as metadata key
	grpcPayload []byte
	perConnRPC  prometheus.Histogram

	servingGRPC atomic.Bool

	ready        atomic.Bool
	requests     atomic.Uint64 // answers prepared: the Total-Request sequence
	unsent       atomic.Uint64 // prepared answers dropped because the client reset the stream first
	abandoned    atomic.Uint64
	bodyTimeouts atomic.Uint64
	bodyErrors   atomic.Uint64
	h2Resets     atomic.Uint64 // RST_STREAM frames from clients
	resetFloods  atomic.Uint64 // connections closed for rapid reset
	serving      atomic.Bool
	// stopping is set, and stopCtx cancelled, when the listeners close.
	stopping atomic.Bool
	stopCtx  context.Context
	stop     context.CancelFunc
}

// New checks cfg and builds a Server. Each problem with cfg is a
// *field.Error naming the Config field; several are joined with errors.Join.
func New(cfg Config) (*Server, error) {
	var errs []error
	bad := func(name, format string, args ...any) { errs = append(errs, field.Errorf(name, format, args...)) }
	if cfg.CPU < 0 {
		bad("CPU", "must not be negative, got %v", cfg.CPU)
	}
	if cfg.Delay < 0 {
		bad("Delay", "must not be negative, got %v", cfg.Delay)
	}
	if cfg.ResponseSize < 0 || cfg.ResponseSize > maxResponseSize {
		bad("ResponseSize", "must be within 0..%d, got %d", maxResponseSize, cfg.ResponseSize)
	}
	if !(cfg.Capacity >= 0) || cfg.Capacity > 1e9 {
		bad("Capacity", "must be within 0..1e9 requests/s, got %v", cfg.Capacity)
	}
	if cfg.DrainDelay < 0 {
		bad("DrainDelay", "must not be negative, got %v", cfg.DrainDelay)
	}
	if cfg.WebSocketCloseGrace < 0 {
		bad("WebSocketCloseGrace", "must not be negative, got %v", cfg.WebSocketCloseGrace)
	}
	if cfg.StreamInterval < 0 {
		bad("StreamInterval", "must not be negative, got %v", cfg.StreamInterval)
	}
	if cfg.ShutdownGrace < 0 {
		bad("ShutdownGrace", "must not be negative, got %v", cfg.ShutdownGrace)
	}
	if cfg.ReadTimeout < 0 {
		bad("ReadTimeout", "must not be negative, got %v", cfg.ReadTimeout)
	}
	if cfg.BackendHeader == "" {
		cfg.BackendHeader = DefaultBackendHeader
	} else if !httpguts.ValidHeaderFieldName(cfg.BackendHeader) {
		bad("BackendHeader", "%q is not a valid header name", cfg.BackendHeader)
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WebSocketCloseGrace == 0 {
		cfg.WebSocketCloseGrace = DefaultWebSocketCloseGrace
	}
	s := &Server{cfg: cfg, registry: prometheus.NewRegistry()}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.perConn = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kaload_requests_per_connection",
		Help:    "Requests a connection carried before it closed.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 16),
	})
	s.perConnRPC = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kaload_grpc_rpcs_per_connection",
		Help:    "gRPC calls a connection carried before it closed.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 16),
	})
	// The recycler checks its own fields, which bear the same names here.
	rc, err := recycle.New(recycle.Config{
		MaxRequests:       cfg.MaxRequests,
		MaxRequestsJitter: cfg.MaxRequestsJitter,
		MaxConnAge:        cfg.MaxConnAge,
		MaxConnAgeJitter:  cfg.MaxConnAgeJitter,
		MaxConnAgeGrace:   cfg.MaxConnAgeGrace,
		PositionHeader:    PositionHeader,
		Rand:              cfg.Rand,
		OnConnClose:       func(n uint64) { s.perConn.Observe(float64(n)) },
	})
	if err != nil {
		errs = append(errs, asFieldErrors(err)...)
	}
	tlsCfg, err := loadKeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		errs = append(errs, err)
	}
	s.tls = tlsCfg
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.rc = rc
	s.hostname = cfg.Hostname
	if s.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("hostname: %w", err)
		}
		s.hostname = h
	}
	s.backend = http.CanonicalHeaderKey(cfg.BackendHeader)
	s.hostValue = []string{s.hostname}
	if cfg.ResponseSize > 0 {
		s.lengthVal = []string{strconv.Itoa(cfg.ResponseSize)}
	}
	if cfg.Capacity > 0 {
		s.limiter = &limiter{interval: time.Duration(float64(time.Second) / cfg.Capacity)}
	}
	if err := s.newGRPC(); err != nil {
		return nil, err
	}
	if err := s.register(); err != nil {
		return nil, err
	}
	s.wsUp = s.upgrader()
	s.handler = s.buildHandler()
	return s, nil
}

// answered is the number of load requests answered: every Total-Request
// number handed out but those whose answer the client reset before it went
// out (they leave gaps in the sequence).
func (s *Server) answered() uint64 {
	u := s.unsent.Load() // first: an answer is prepared before it can be unsent
	return s.requests.Load() - u
}

// Hostname returns the backend name the server reports.
func (s *Server) Hostname() string { return s.hostname }

// Recycler returns the server's connection recycler.
func (s *Server) Recycler() *recycle.Recycler { return s.rc }

// Stats returns a snapshot of the counters from atomics; safe to poll often.
func (s *Server) Stats() Stats {
	rs := s.rc.Stats()
	gs := s.grc.Stats()
	st := Stats{
		Requests:            s.answered(),
		Abandoned:           s.abandoned.Load(),
		BodyTimeouts:        s.bodyTimeouts.Load(),
		BodyErrors:          s.bodyErrors.Load(),
		H2Resets:            s.h2Resets.Load(),
		ResetFloods:         s.resetFloods.Load(),
		ActiveConns:         rs.ActiveConns,
		TotalConns:          rs.TotalConns,
		RecycledMaxRequests: rs.Recycled[recycle.ReasonMaxRequests],
		RecycledMaxAge:      rs.Recycled[recycle.ReasonMaxAge],
		RecycledShutdown:    rs.Recycled[recycle.ReasonShutdown],
		RecycledIdleExpired: rs.Recycled[recycle.ReasonIdleExpired],
		SocketsOpen:         s.ws.active.Load(),
		SocketsTotal:        s.ws.total.Load(),
		SocketMessages:      s.ws.messages.Load(),

		GRPCRPCs:                gs.RPCs,
		GRPCActiveConns:         gs.ActiveConns,
		GRPCTotalConns:          gs.TotalConns,
		GRPCRecycledMaxRequests: gs.Recycled[grpcrecycle.ReasonMaxRPCs],
		GRPCRecycledMaxAge:      gs.Recycled[grpcrecycle.ReasonMaxAge],
		GRPCRecycledShutdown:    gs.Recycled[grpcrecycle.ReasonShutdown],
	}
	for i := range st.SocketsClosed {
		st.SocketsClosed[i] = s.ws.closed[i].Load()
	}
	return st
}

// Handler returns the whole mux (/, /healthz, /readyz, /metrics) with
// recycling. Connection counting needs the Recycler's hooks on the
// http.Server, which Serve installs; see Recycler.Install to use Handler
// with your own http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready reports whether /readyz answers 200.
func (s *Server) Ready() bool { return s.ready.Load() }

// Serve serves on ln until ctx is done, then drains: /readyz turns 503,
// keep-alive connections close after their next response (GOAWAY on
// HTTP/2), WebSockets close with 1001 each at a random moment within
// DrainDelay, new connections are accepted and served for DrainDelay, and
// in-flight requests and close handshakes finish within ShutdownGrace after
// it. It returns nil after a clean drain. Serve closes ln and may be called
// once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	hs, err := s.newHTTPService(ctx, ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}
	defer hs.ln.stop()
	return s.run(ctx, []service{hs})
}

// service is one protocol's server on its own listener. Serve runs every
// service of the Server and drains them together, so that each listener
// keeps accepting through the drain delay and all stop within one grace.
type service interface {
	// serve blocks until shutdown or close; nil after either.
	serve() error
	// shutdown closes the listener and returns once in-flight work ended
	// (nil) or ctx is done (its error). It may run again to reach
	// connections that started while it ran.
	shutdown(ctx context.Context) error
	// close ends every connection at once.
	close()
}

// run serves svcs until ctx is done, then drains them.
func (s *Server) run(ctx context.Context, svcs []service) error {
	errc := make(chan error, len(svcs))
	for _, svc := range svcs {
		go func() { errc <- svc.serve() }()
	}
	running := len(svcs)
	// fail stops everything after a service failed and returns its error.
	fail := func(err error) error {
		s.ready.Store(false)
		s.stopping.Store(true)
		s.stop()
		for _, svc := range svcs {
			svc.close()
		}
		for running--; running > 0; running-- {
			<-errc
		}
		return fmt.Errorf("serve: %w", err)
	}
	s.ready.Store(true)
	select {
	case err := <-errc:
		if err == nil {
			err = errors.New("listener closed")
		}
		return fail(err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.rc.Drain()
	s.drainSockets(s.cfg.DrainDelay)
	if s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			if err == nil {
				err = errors.New("listener closed")
			}
			return fail(err)
		}
	}
	// From here connections that turn HTTP/2 late get their GOAWAY (see
	// newHTTPService) and stalled request bodies are cut (guardBody).
	s.stopping.Store(true)
	s.stop()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	shut := make(chan error, len(svcs))
	for _, svc := range svcs {
		go func() { shut <- svc.shutdown(sctx) }()
	}
	var errs []error
	for range svcs {
		if err := <-shut; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		for _, svc := range svcs {
			svc.close()
		}
	}
	for ; running > 0; running-- {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown within %v: %w", s.cfg.ShutdownGrace, err)
	}
	return nil
}

// httpService serves HTTP/1.1, h2c, TLS HTTP/2 and WebSockets on one
// listener.
type httpService struct {
	s   *Server
	srv *http.Server
	ln  *coarseListener // the read deadlines net/http sets cost no timer each (deadline.go)
	tls bool
}

// done is an already cancelled context: Shutdown called with it returns at
// once after closing idle connections and sending GOAWAY.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (s *Server) newHTTPService(ctx context.Context, ln net.Listener) (*httpService, error) {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: min(readHeaderTimeout, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// http.Server.Shutdown sends GOAWAY to the HTTP/2 connections it knows
	// when called. One accepted just before the listener closed finishes
	// its TLS handshake or preface a moment later and turns idle (the
	// HTTP/2 server's first ConnState) with none: Shutdown would wait for
	// it until its client sends a request. Calling Shutdown again reaches
	// it; that is idempotent for every other connection.
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateIdle && s.stopping.Load() {
			srv.Shutdown(done)
		}
	}
	if s.cfg.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn)
	}
	s.rc.Install(srv)
	var p http.Protocols
	p.SetHTTP1(true)
	if s.tls != nil {
		p.SetHTTP2(true)
		srv.TLSConfig = s.tls.Clone()
	}
	if s.cfg.H2C {
		p.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &p
	if p.HTTP2() || p.UnencryptedHTTP2() {
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: maxConcurrentStreams}
		if err := s.serveHTTP2(srv); err != nil {
			return nil, err
		}
	}
	return &httpService{s: s, srv: srv, ln: newCoarseListener(ln), tls: s.tls != nil}, nil
}

func (h *httpService) serve() error {
	var err error
	if h.tls {
		err = h.srv.ServeTLS(h.ln, "", "")
	} else {
		err = h.srv.Serve(h.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (h *httpService) shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	// Shutdown does not wait for hijacked connections: the sockets' close
	// handshakes get what is left of the grace.
	if werr := h.s.waitSockets(ctx); err == nil {
		err = werr
	}
	return err
}

func (h *httpService) close() { h.srv.Close() }

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serveLoad)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header()[s.backend] = s.hostValue
		w.Write(okBody)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header()[s.backend] = s.hostValue
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(notReadyBody)
			return
		}
		w.Write(okBody)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	var h http.Handler = mux
	if s.cfg.Logger != nil {
		h = logRequests(s.cfg.Logger, h)
	}
	wrapped := s.rc.Wrap(h)
	// WebSockets bypass the HTTP recycler: their limits count messages,
	// and a close frame, not a response header, ends them.
	return endFlood(s.guardBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == WebSocketPath {
			s.serveWS(w, r)
			return
		}
		wrapped.ServeHTTP(w, r)
	})))
}

// guardBody lets the drain cut request bodies that stall: once the
// listeners close, a body that goes bodyStall without a byte fails with a
// deadline error (still within ReadTimeout otherwise). On HTTP/1 it also
// reads what the handler left of the body, as net/http would, while the cut
// still applies.
func (s *Server) guardBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hasBody(r) {
			h.ServeHTTP(w, r)
			return
		}
		b := &stallCut{ReadCloser: r.Body, rc: http.NewResponseController(w), limit: time.Now().Add(s.cfg.ReadTimeout)}
		r.Body = b
		stop := context.AfterFunc(s.stopCtx, b.cut)
		defer stop()
		h.ServeHTTP(w, r)
		if r.ProtoMajor == 1 {
			io.CopyN(io.Discard, b, maxPostHandlerRead)
		}
	})
}

// hasBody reports whether r may carry body bytes. HTTP/2 requests always
// have a Body; one that ended with its headers has ContentLength 0.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// stallCut is a request body whose reads get a bodyStall deadline, renewed
// by every byte, once cut was called; never later than limit.
type stallCut struct {
	io.ReadCloser
	rc      *http.ResponseController
	limit   time.Time
	cutting atomic.Bool
}

func (b *stallCut) cut() {
	b.cutting.Store(true)
	b.extend()
}

func (b *stallCut) extend() {
	d := time.Now().Add(bodyStall)
	if d.After(b.limit) {
		d = b.limit
	}
	b.rc.SetReadDeadline(d)
}

func (b *stallCut) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.cutting.Load() {
		b.extend()
	}
	return n, err
}

var (
	okBody       = []byte("ok\n")
	notReadyBody = []byte("not ready\n")
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// serveLoad is the load endpoint: it reads the body, shapes load, then names
// the backend. Only a request still wanted when it is answered counts in
// Total-Request; one its client reset or left (an HTTP/2 rapid reset) is
// counted apart.
func (s *Server) serveLoad(w http.ResponseWriter, r *http.Request) {
	if hasBody(r) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			s.bodyFailed(w, r, err)
			return
		}
	}
	if !s.shape(r.Context()) || r.Context().Err() != nil {
		s.abandoned.Add(1) // the client went away while queued, delayed or burning
		return
	}
	total := s.requests.Add(1)
	// On an HTTP/2 connection whose client resets streams, an answer only
	// counts once it went out: the reset may have arrived after the checks
	// above (the stream is then closed and its answer dropped).
	if r.ProtoMajor == 2 && resetting(r.Context()) {
		defer func() {
			if http.NewResponseController(w).Flush() != nil {
				s.unsent.Add(1)
				s.abandoned.Add(1)
			}
		}()
	}
	pos := recycle.ConnRequests(r.Context())
	h := w.Header()
	h[s.backend] = s.hostValue
	h[TotalHeader] = []string{strconv.FormatUint(total, 10)}
	h["Content-Type"] = textPlain
	if s.lengthVal != nil {
		h["Content-Length"] = s.lengthVal
	}
	if r.Method == http.MethodHead {
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], "backend="...)
	b = append(b, s.hostname...)
	b = append(b, " request="...)
	b = strconv.AppendUint(b, total, 10)
	b = append(b, " conn_request="...)
	b = strconv.AppendUint(b, pos, 10)
	b = append(b, '\n')
	writeBody(w, b, s.cfg.ResponseSize)
	*bp = b
	bufPool.Put(bp)
}

var textPlain = []string{"text/plain; charset=utf-8"}

// bodyFailed answers a load request whose body could not be read: 408 when
// it did not arrive in time, 400 when it was malformed; nothing when the
// client is gone. HTTP/1 closes the connection (the rest of the body is
// unknown); HTTP/2 needs no more than the end of the stream.
func (s *Server) bodyFailed(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		status = http.StatusRequestTimeout
		s.bodyTimeouts.Add(1)
	case r.Context().Err() != nil:
		s.abandoned.Add(1)
		return
	default:
		s.bodyErrors.Add(1)
	}
	h := w.Header()
	h[s.backend] = s.hostValue
	h["Content-Type"] = textPlain
	if r.ProtoMajor == 1 {
		h["Connection"] = closeValue
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "request body: %v\n", err)
}

var closeValue = []string{"close"}

// padding fills bodies up to ResponseSize; made on first use, not at the
// init of every kaload command.
var padding = sync.OnceValue(func() []byte {
	b := make([]byte, 32<<10)
	for i := range b {
		b[i] = '.'
	}
	b[len(b)-1] = '\n'
	return b
})

// writeBody writes line, or exactly size bytes when size > 0: the line
// (cut if longer) followed by dots and a final newline.
func writeBody(w http.ResponseWriter, line []byte, size int) {
	if size == 0 {
		w.Write(line)
		return
	}
	if len(line) >= size {
		w.Write(line[:size])
		return
	}
	// The line's newline becomes a space; the padding ends with one.
	line[len(line)-1] = ' '
	if _, err := w.Write(line); err != nil {
		return
	}
	// Every chunk but the last is dots only; the last ends with the newline.
	padding := padding()
	for rest := size - len(line); rest > 0; {
		chunk := padding[:len(padding)-1]
		if rest <= len(padding) {
			chunk = padding[len(padding)-rest:]
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		rest -= len(chunk)
	}
}

// limiter admits requests at a fixed rate in arrival (FIFO) order: each
// arrival reserves the next free slot and waits for it.
type limiter struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

func (l *limiter) wait(ctx context.Context) error {
	now := time.Now()
	l.mu.Lock()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logRequests logs one record per request after it finished.
func logRequests(l *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rw, r)
		l.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("proto", r.Proto),
			slog.String("remote", r.RemoteAddr),
			slog.Int("status", rw.status),
			slog.Uint64("conn_request", recycle.ConnRequests(r.Context())),
			slog.Bool("conn_close", w.Header().Get("Connection") == "close"),
			slog.Duration("duration", time.Since(start)),
		)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// asFieldErrors turns recycle.New's errors into *field.Error values, so that
// every error from New has one type.
func asFieldErrors(err error) []error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
		if fe, ok := e.(*recycle.FieldError); ok {
			out[i] = &field.Error{Fields: []string{fe.Field}, Err: fe.Err}
		}
	}
	return out
}

// loadKeyPair reads the TLS files one by one, so that an error names the
// field whose file is missing or unreadable; nil without TLS.
func loadKeyPair(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, &field.Error{Fields: []string{"TLSCertFile", "TLSKeyFile"}, Err: errors.New("must be set together")}
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, field.Errorf("TLSCertFile", "%w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, field.Errorf("TLSKeyFile", "%w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &field.Error{Fields: []string{"TLSCertFile", "TLSKeyFile"}, Err: fmt.Errorf("%s and %s: %w", certFile, keyFile, err)}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
