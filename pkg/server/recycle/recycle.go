// Package recycle ends keep-alive connections of any net/http server after a
// number of requests or an age, so that clients behind a connection-balancing
// load balancer (a Kubernetes Service) reconnect and reach new backends.
//
// It imports nothing but the standard library.
package recycle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reason says why the recycler ended a connection.
type Reason uint8

const (
	ReasonMaxRequests Reason = iota // the connection reached its request limit
	ReasonMaxAge                    // the connection outlived its maximum age
	ReasonShutdown                  // the server is draining
	ReasonIdleExpired               // an expired connection stayed idle past the grace period and was closed
	numReasons
)

var reasonNames = [numReasons]string{"max_requests", "max_age", "shutdown", "idle_expired"}

// String returns the reason's metric label, e.g. "max_requests".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Reasons lists every reason, in order.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Config sets when a Recycler ends keep-alive connections.
type Config struct {
	// MaxRequests is the number of responses a connection carries; the last
	// one says "Connection: close" (HTTP/1.1) or triggers GOAWAY (HTTP/2).
	// 0 means unlimited.
	MaxRequests int
	// MaxRequestsJitter spreads each connection's limit uniformly over
	// [MaxRequests*(1-j), MaxRequests*(1+j)] so that connections opened
	// together do not all reconnect at once. 0..1.
	MaxRequestsJitter float64
	// MaxConnAge is how long a connection may live; after it, the next
	// response closes the connection. 0 means unlimited.
	MaxConnAge time.Duration
	// MaxConnAgeJitter spreads each connection's age like MaxRequestsJitter. 0..1.
	MaxConnAgeJitter float64
	// MaxConnAgeGrace, when positive, closes a connection that is idle
	// MaxConnAgeGrace after it expired. 0 never closes an idle connection,
	// which avoids racing a request the client is sending.
	MaxConnAgeGrace time.Duration
	// PositionHeader, when set, names a response header carrying the
	// request's 1-based position on its connection.
	PositionHeader string
	// Rand draws the jitter; nil means a randomly seeded source. Set it to
	// make limits reproducible. The Recycler serialises its use.
	Rand *rand.Rand
	// OnConnClose, when set, is called once per connection after it closed,
	// with the number of requests it carried. It must be fast.
	OnConnClose func(requests uint64)
}

// FieldError is a bad value in one Config field. New joins several with
// errors.Join.
type FieldError struct {
	Field string // Go name of the Config field, e.g. "MaxRequests"
	Err   error  // what is wrong, without the field's name
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func (c *Config) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &FieldError{Field: name, Err: fmt.Errorf(format, args...)})
	}
	if c.MaxRequests < 0 {
		bad("MaxRequests", "must not be negative, got %d", c.MaxRequests)
	}
	if !(c.MaxRequestsJitter >= 0 && c.MaxRequestsJitter <= 1) {
		bad("MaxRequestsJitter", "must be within 0..1, got %v", c.MaxRequestsJitter)
	}
	if c.MaxConnAge < 0 {
		bad("MaxConnAge", "must not be negative, got %v", c.MaxConnAge)
	}
	if !(c.MaxConnAgeJitter >= 0 && c.MaxConnAgeJitter <= 1) {
		bad("MaxConnAgeJitter", "must be within 0..1, got %v", c.MaxConnAgeJitter)
	}
	if c.MaxConnAgeGrace < 0 {
		bad("MaxConnAgeGrace", "must not be negative, got %v", c.MaxConnAgeGrace)
	}
	if c.PositionHeader != "" && !validHeaderName(c.PositionHeader) {
		bad("PositionHeader", "%q is not a valid header name", c.PositionHeader)
	}
	return errors.Join(errs...)
}

// Recycler ends keep-alive connections after a number of requests or an age,
// so that a client behind a connection-balancing load balancer (a Kubernetes
// Service) reconnects and may reach new backends. It works with any
// net/http server: wrap the handler and install the two connection hooks.
//
//	rc, err := recycle.New(recycle.Config{MaxRequests: 100})
//	srv := &http.Server{Handler: rc.Wrap(h)}
//	rc.Install(srv) // sets ConnContext and ConnState, keeping existing hooks
//
// Counting is per connection and safe under HTTP/2's concurrent streams.
// A request on a connection the Recycler did not see (no ConnContext hook)
// passes through untouched.
type Recycler struct {
	cfg      Config
	posKey   string // canonical PositionHeader
	draining atomic.Bool

	randMu sync.Mutex
	rand   *rand.Rand

	mu    sync.Mutex
	conns map[net.Conn]*connState

	requests    atomic.Uint64
	totalConns  atomic.Uint64
	activeConns atomic.Int64
	recycled    [numReasons]atomic.Uint64
}

// connState is one connection's counters; handlers reach it through the
// request context, the ConnState hook through the Recycler's map.
type connState struct {
	conn     net.Conn
	requests atomic.Uint64
	limit    uint64    // 0 = unlimited
	expires  time.Time // zero = never
	closing  atomic.Bool
	pos      atomic.Pointer[posChunk] // position values past the shared table
	// idle and closeWhenIdle serve the grace-period close; guarded by Recycler.mu.
	idle          bool
	closeWhenIdle bool
	timer         *time.Timer
}

type connKey struct{}

// New checks cfg and returns a Recycler; each problem is a *FieldError.
func New(cfg Config) (*Recycler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc := &Recycler{cfg: cfg, rand: cfg.Rand, conns: make(map[net.Conn]*connState)}
	if rc.rand == nil {
		rc.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.PositionHeader != "" {
		rc.posKey = http.CanonicalHeaderKey(cfg.PositionHeader)
	}
	return rc, nil
}

// Install sets srv's ConnContext and ConnState hooks, calling any hooks
// srv already had first.
func (rc *Recycler) Install(srv *http.Server) {
	if prev := srv.ConnContext; prev != nil {
		srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return rc.ConnContext(prev(ctx, c), c)
		}
	} else {
		srv.ConnContext = rc.ConnContext
	}
	if prev := srv.ConnState; prev != nil {
		srv.ConnState = func(c net.Conn, s http.ConnState) {
			prev(c, s)
			rc.ConnState(c, s)
		}
	} else {
		srv.ConnState = rc.ConnState
	}
}

// Limits draws a connection's jittered limits as ConnContext does (0 means
// unlimited), for connections the recycler does not see, such as hijacked
// WebSockets whose messages the caller counts itself.
func (rc *Recycler) Limits() (requests uint64, age time.Duration) {
	if rc.cfg.MaxRequestsJitter == 0 && rc.cfg.MaxConnAgeJitter == 0 {
		// Nothing to draw: no lock on the path of every new connection.
		return jitterInt(nil, rc.cfg.MaxRequests, 0), jitterDuration(nil, rc.cfg.MaxConnAge, 0)
	}
	rc.randMu.Lock()
	defer rc.randMu.Unlock()
	requests = jitterInt(rc.rand, rc.cfg.MaxRequests, rc.cfg.MaxRequestsJitter)
	age = jitterDuration(rc.rand, rc.cfg.MaxConnAge, rc.cfg.MaxConnAgeJitter)
	return requests, age
}

// ConnContext is the http.Server.ConnContext hook: it starts counting a new
// connection and draws its jittered limits.
func (rc *Recycler) ConnContext(ctx context.Context, c net.Conn) context.Context {
	st := &connState{conn: c}
	var age time.Duration
	st.limit, age = rc.Limits()
	if age > 0 {
		st.expires = time.Now().Add(age)
	}
	rc.totalConns.Add(1)
	rc.activeConns.Add(1)
	rc.mu.Lock()
	rc.conns[c] = st
	if age > 0 && rc.cfg.MaxConnAgeGrace > 0 {
		st.timer = time.AfterFunc(age+rc.cfg.MaxConnAgeGrace, func() { rc.graceExpired(st) })
	}
	rc.mu.Unlock()
	return context.WithValue(ctx, connKey{}, st)
}

// ConnState is the http.Server.ConnState hook: it tracks idleness for the
// grace-period close and forgets closed connections.
func (rc *Recycler) ConnState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateIdle, http.StateActive:
		if rc.cfg.MaxConnAgeGrace == 0 {
			// Idleness only serves the grace-period close: without it the
			// two calls per request cost nothing (no lock, no map lookup).
			return
		}
		rc.mu.Lock()
		st := rc.conns[c]
		if st == nil {
			rc.mu.Unlock()
			return
		}
		st.idle = s == http.StateIdle
		closeNow := st.idle && st.closeWhenIdle
		rc.mu.Unlock()
		// A connection that turns idle with no request yet is an HTTP/2
		// connection that just read its preface. During a drain it is left
		// open: its client is about to send a request, which is answered
		// and ends the connection gracefully (GOAWAY); closing it here
		// would reset that request.
		if closeNow {
			rc.closeIdle(st)
		}
	case http.StateClosed, http.StateHijacked:
		rc.mu.Lock()
		st := rc.conns[c]
		delete(rc.conns, c)
		if st != nil && st.timer != nil {
			st.timer.Stop()
		}
		rc.mu.Unlock()
		if st == nil {
			return
		}
		rc.activeConns.Add(-1)
		if rc.cfg.OnConnClose != nil {
			rc.cfg.OnConnClose(st.requests.Load())
		}
	}
}

// graceExpired runs MaxConnAgeGrace after a connection expired.
func (rc *Recycler) graceExpired(st *connState) {
	rc.mu.Lock()
	if rc.conns[st.conn] != st {
		rc.mu.Unlock()
		return
	}
	idle := st.idle
	if !idle {
		// A request may have started before expiry and so not carry
		// "Connection: close"; close once it goes idle.
		st.closeWhenIdle = true
	}
	rc.mu.Unlock()
	if idle {
		rc.closeIdle(st)
	}
}

func (rc *Recycler) closeIdle(st *connState) {
	if st.closing.CompareAndSwap(false, true) {
		rc.recycled[ReasonIdleExpired].Add(1)
	}
	st.conn.Close()
}

// Drain makes every later response close its connection and counts every
// open connection as recycled for ReasonShutdown. Call it when the server
// starts shutting down (before http.Server.Shutdown) so that keep-alive
// clients reconnect elsewhere instead of failing. Connections accepted
// after Drain are served: each closes after its first response.
//
// http.Server.Shutdown sends GOAWAY only to the HTTP/2 connections that
// exist when it is called; one that finishes its handshake a moment later
// gets none and keeps Shutdown waiting until its client sends a request.
// Calling Shutdown again (with a context that is already done, it returns
// at once) sends GOAWAY to those too.
func (rc *Recycler) Drain() {
	rc.draining.Store(true)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, st := range rc.conns {
		if st.closing.CompareAndSwap(false, true) {
			rc.recycled[ReasonShutdown].Add(1)
		}
	}
}

// Wrap returns h with per-connection counting and recycling.
func (rc *Recycler) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.requests.Add(1)
		st, _ := r.Context().Value(connKey{}).(*connState)
		if st == nil {
			h.ServeHTTP(w, r)
			return
		}
		n := st.requests.Add(1)
		hdr := w.Header()
		if rc.posKey != "" {
			hdr[rc.posKey] = st.position(n)
		}
		if reason, ok := rc.due(st, n); ok {
			// Exactly this header: net/http closes an HTTP/1 connection
			// after the reply and turns it into GOAWAY on HTTP/2.
			hdr["Connection"] = closeValue
			if st.closing.CompareAndSwap(false, true) {
				rc.recycled[reason].Add(1)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// due reports whether the n-th response on st must close the connection, and why.
func (rc *Recycler) due(st *connState, n uint64) (Reason, bool) {
	switch {
	case st.limit != 0 && n >= st.limit:
		return ReasonMaxRequests, true
	case !st.expires.IsZero() && !time.Now().Before(st.expires):
		return ReasonMaxAge, true
	case rc.draining.Load():
		return ReasonShutdown, true
	case st.closing.Load():
		// Already closing (e.g. concurrent HTTP/2 streams): say so again.
		return ReasonMaxRequests, true
	}
	return 0, false
}

// Stats is a snapshot of a Recycler's counters.
type Stats struct {
	Requests    uint64 // requests through Wrap, all paths
	TotalConns  uint64 // connections seen by ConnContext
	ActiveConns int64  // connections not yet closed
	Recycled    [numReasons]uint64
}

// RecycledBy returns how many connections were recycled for reason r.
func (s Stats) RecycledBy(r Reason) uint64 {
	if r < numReasons {
		return s.Recycled[r]
	}
	return 0
}

// Stats returns a snapshot of the counters; it is cheap (atomic loads).
func (rc *Recycler) Stats() Stats {
	s := Stats{
		Requests:    rc.requests.Load(),
		TotalConns:  rc.totalConns.Load(),
		ActiveConns: rc.activeConns.Load(),
	}
	for i := range s.Recycled {
		s.Recycled[i] = rc.recycled[i].Load()
	}
	return s
}

// ConnRequests returns how many requests the connection of ctx has counted
// so far, or 0 when the connection is not tracked. On HTTP/1 that is the
// request's own 1-based position; HTTP/2 streams run concurrently, so a later
// stream may already have counted: the position header is exact there.
func ConnRequests(ctx context.Context) uint64 {
	st, _ := ctx.Value(connKey{}).(*connState)
	if st == nil {
		return 0
	}
	return st.requests.Load()
}

// jitterInt draws an integer uniformly from [n(1-j), n(1+j)], at least 1.
func jitterInt(r *rand.Rand, n int, j float64) uint64 {
	if n <= 0 {
		return 0
	}
	if j == 0 {
		return uint64(n)
	}
	lo := int64(math.Ceil(float64(n) * (1 - j)))
	hi := int64(math.Floor(float64(n) * (1 + j)))
	lo = max(lo, 1)
	if hi < lo {
		hi = lo
	}
	return uint64(lo + r.Int64N(hi-lo+1))
}

// jitterDuration draws a duration uniformly from [d(1-j), d(1+j)].
func jitterDuration(r *rand.Rand, d time.Duration, j float64) time.Duration {
	if d <= 0 {
		return 0
	}
	if j == 0 {
		return d
	}
	f := 1 + j*(2*r.Float64()-1)
	return max(time.Duration(float64(d)*f), 1)
}

var closeValue = []string{"close"}

// smallNumbers holds header values 0..numberTableSize-1 so that positions up
// to typical limits allocate nothing: a value is a capped one-element
// subslice of one shared table. Sharing is safe: net/http only reads header
// slices, and Header.Set/Add replace or copy rather than write into them.
const numberTableSize = 10000

var smallNumbers = sync.OnceValue(func() []string {
	t := make([]string, numberTableSize)
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
})

// numberValue returns n as a one-element header value. Values past the table
// are allocated afresh, so a handler or middleware may keep a response's
// headers (Header.Clone, a log, a cache) without a later request changing them.
func numberValue(n uint64) []string {
	if n < numberTableSize {
		t := smallNumbers()
		return t[n : n+1 : n+1]
	}
	return []string{strconv.FormatUint(n, 10)}
}

// posChunkSize is how many consecutive position values past the shared
// table a connection allocates at once: two allocations per posChunkSize
// responses instead of two per response, about 700 bytes per connection.
const posChunkSize = 32

// posChunk holds the header values of positions base..base+posChunkSize-1,
// substrings of one string. Values are never changed once made.
type posChunk struct {
	base uint64
	vals [posChunkSize]string
}

func newPosChunk(base uint64) *posChunk {
	c := &posChunk{base: base}
	var b strings.Builder
	b.Grow(posChunkSize * 20)
	var ends [posChunkSize]int
	var digits [20]byte
	for i := range c.vals {
		b.Write(strconv.AppendUint(digits[:0], base+uint64(i), 10))
		ends[i] = b.Len()
	}
	all, start := b.String(), 0
	for i, end := range ends {
		c.vals[i], start = all[start:end], end
	}
	return c
}

// position returns n, the position of a response on st's connection, as a
// one-element header value: from the shared table, else from the
// connection's current chunk. Concurrent HTTP/2 streams may each make a
// chunk; either is right.
func (st *connState) position(n uint64) []string {
	if n < numberTableSize {
		return numberValue(n)
	}
	c := st.pos.Load()
	if c == nil || n < c.base || n-c.base >= posChunkSize {
		c = newPosChunk(n - n%posChunkSize)
		st.pos.Store(c)
	}
	i := n - c.base
	return c.vals[i : i+1 : i+1]
}

// validHeaderName reports whether s is an RFC 9110 token. The standard
// library exports no such check and this package imports nothing else.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
