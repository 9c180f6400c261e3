package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Sink receives every Result. Run calls Record from one goroutine at a time;
// r is valid only during the call (the engine reuses it).
type Sink interface {
	Record(r *Result)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(r *Result)

// Record calls f(r).
func (f SinkFunc) Record(r *Result) { f(r) }

// Stats sums up a run. Requests == Results recorded; Errors is the part of
// them that Failed.
type Stats struct {
	Requests    int64
	Errors      int64
	Connections int64 // connections dialled successfully
	DialErrors  int64
	// Closes counts connections ended, by reason. Closes[CloseNone] counts those
	// still open when the run ended; Closes[CloseEOF] idle connections found
	// closed silently, whose request was retried on a new one (those appear in
	// no Result, since the request before them had already been recorded).
	Closes  [numCloseReasons]int64
	Retries int64 // requests sent again (CloseEOF; HTTP/2 streams a GOAWAY or REFUSED_STREAM left unprocessed)
	// GoAways counts the GOAWAY frames that ended HTTP/2 and gRPC connections by their
	// code and debug text: "NO_ERROR max_age", "ENHANCE_YOUR_CALM too_many_pings".
	GoAways map[string]int64
	// Unsent counts, in the open model (Rate > 0), the requests that were due
	// before the run ended but never sent: every connection slot was busy, or
	// the client itself could not send in time (starved of CPU near the end
	// of the run, say); either way the load asked for was not offered, so
	// they count (coordinated omission). Due requests are Requests + Unsent.
	// Always 0 in the closed model, where no request is due at a given time.
	Unsent  int64
	Elapsed time.Duration
}

// Reconnects is the number of connections that ended for a reason other than
// the end of the run.
func (s *Stats) Reconnects() int64 {
	var n int64
	for _, c := range s.Closes[CloseServer:] {
		n += c
	}
	return n
}

func (s *Stats) add(o *Stats) {
	s.Requests += o.Requests
	s.Errors += o.Errors
	s.Connections += o.Connections
	s.DialErrors += o.DialErrors
	for i := range s.Closes {
		s.Closes[i] += o.Closes[i]
	}
	s.Retries += o.Retries
	for k, n := range o.GoAways {
		if s.GoAways == nil {
			s.GoAways = map[string]int64{}
		}
		s.GoAways[k] += n
	}
}

// run is the state shared by the workers of one Run.
type run struct {
	cfg  Config
	tgt  target
	req  []byte // rendered HTTP/1.1 request
	head bool
	// idempotent requests may be sent again when a reused connection turns
	// out closed before any answer (as net/http does); others only when the
	// write itself failed.
	idempotent bool
	start      time.Time
	stop       chan struct{} // closed when no new request may start
	// abort is cancelled when cfg.Abort closes: dials, HTTP/2 round trips and
	// (through a deadline in the past) HTTP/1 reads in flight end at once.
	abort   context.Context
	stopped atomic.Bool
	aborted atomic.Bool // set before abort is cancelled
	// wake, when set, is called after stop closes and after an abort:
	// event loops sleeping in epoll_wait learn of them through it.
	wake func()
	next atomic.Int64 // next sequence number to claim
	sent atomic.Int64 // open model: claims that went on to be sent
	// stopAt is the offset at which the run stopped, in ns; 0 until the
	// stopper sets it, before stopped and stop (an engine failure sets
	// stopped with no stop time).
	stopAt  atomic.Int64
	connID  atomic.Uint64 // last connection id handed out
	tlsConf *tls.Config
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	grpc    *grpcRun // set for grpc:// and grpcs:// URLs
	h2      *h2Req   // requests on the HTTP/2 core (HTTP/2, gRPC unary)

	// WebSocket runs
	wsDialer *websocket.Dialer
	wsHeader http.Header
	wsMsg    []byte
	wsType   int
	pacer    *pacer // ConnectRate; nil = unpaced
	idle     *idlePinger

	dialing chan struct{} // HTTP/1 dials under way (maxDialing slots)

	sinkMu sync.Mutex
	sink   Sink
}

// eventLoops sends plain http:// HTTP/1.1 through the event-loop engine
// where there is one (Linux); tests turn it off to run the goroutine engine.
var eventLoops = true

// loopable reports whether the run suits the event-loop engine: HTTP/1.1
// over plain TCP that the engine dials itself.
func (r *run) loopable() bool {
	c := &r.cfg
	return c.Dial == nil && !r.tgt.tls && !r.tgt.grpc && !r.tgt.isWebSocket() && !c.HTTP2 && !c.H2C && !c.Idle
}

// maxDialing bounds the HTTP/1 dials in flight at once.
const maxDialing = 256

// Run sends requests until a limit of cfg is reached or ctx is cancelled. Then
// no new request starts; those in flight finish (bounded by cfg.Timeout) and are
// recorded. Every request that ended goes to sink exactly once. No goroutine
// started by Run outlives it. The error is non-nil only for an invalid cfg,
// or a gRPC method that cannot be resolved (then nothing was sent).
func Run(ctx context.Context, cfg Config, sink Sink) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	cfg = cfg.withDefaults()
	tgt, err := parseTarget(cfg.URL, cfg.HTTP2, cfg.H2C)
	if err != nil {
		return Stats{}, err
	}
	if sink == nil {
		sink = SinkFunc(func(*Result) {})
	}
	r := &run{
		cfg:        cfg,
		tgt:        tgt,
		req:        buildRequest(&cfg, tgt),
		head:       cfg.Method == "HEAD",
		idempotent: map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true}[cfg.Method],
		stop:       make(chan struct{}),
		dialing:    make(chan struct{}, maxDialing),
		sink:       sink,
		dial:       cfg.Dial,
	}
	if r.dial == nil {
		d := &net.Dialer{KeepAlive: -1} // the engine is the keep-alive; no TCP probes needed
		r.dial = d.DialContext
	}
	if tgt.isWebSocket() {
		r.wsSetup()
	} else if tgt.tls {
		r.tlsConf = &tls.Config{ServerName: tgt.u.Hostname(), InsecureSkipVerify: cfg.Insecure}
		if cfg.HTTP2 {
			r.tlsConf.NextProtos = []string{"h2"}
		} else {
			r.tlsConf.NextProtos = []string{"http/1.1"}
		}
	}

	if !tgt.grpc && !tgt.isWebSocket() && (cfg.HTTP2 || cfg.H2C) {
		r.h2 = newHTTPH2Req(&cfg, tgt)
	}
	if tgt.grpc {
		if err := r.prepareGRPC(ctx); err != nil {
			return Stats{}, err
		}
	}

	workers := cfg.Connections
	if cfg.Requests > 0 && int64(workers) > cfg.Requests && !cfg.Idle {
		workers = int(cfg.Requests)
	}
	var loops *loopSet
	if eventLoops && r.loopable() {
		// nil when the host does not resolve or the loops cannot start:
		// then the goroutine engine runs and reports what goes wrong.
		loops = r.newLoops(ctx, workers)
	}
	if loops != nil {
		r.wake = loops.wake
	}
	r.start = time.Now()

	abort, abortNow := context.WithCancel(context.Background())
	defer abortNow()
	r.abort = abort

	// The stopper turns ctx cancellation, an abort and the duration limit
	// into r.stop; an abort also cancels r.abort.
	done := make(chan struct{})
	var stopperDone sync.WaitGroup
	stopperDone.Add(1)
	go func() {
		defer stopperDone.Done()
		var limit <-chan time.Time
		if cfg.Duration > 0 {
			t := time.NewTimer(cfg.Duration)
			defer t.Stop()
			limit = t.C
		}
		aborted := false
		select {
		case <-ctx.Done():
		case <-limit:
		case <-cfg.Abort:
			aborted = true
		case <-done:
		}
		r.stopAt.Store(max(int64(time.Since(r.start)), 1))
		r.stopped.Store(true)
		close(r.stop)
		if r.wake != nil {
			r.wake() // an abort wakes them again below, once r.abort is done
		}
		if !aborted {
			select {
			case <-cfg.Abort:
				aborted = true
			case <-done:
			}
		}
		if aborted {
			r.aborted.Store(true)
			abortNow()
			if r.wake != nil {
				r.wake()
			}
		}
	}()

	var stats []Stats
	var wg sync.WaitGroup
	if loops != nil {
		stats = loops.run()
	} else {
		stats = make([]Stats, workers)
	}
	launch := func(i int, paced bool) {
		quota := int64(-1)
		if cfg.Requests > 0 && cfg.Rate == 0 {
			quota = cfg.Requests / int64(workers)
			if int64(i) < cfg.Requests%int64(workers) {
				quota++
			}
		}
		wg.Add(1)
		go func(st *Stats, quota int64) {
			defer wg.Done()
			switch {
			case r.grpc != nil:
				r.workGRPC(st, quota)
			case cfg.Idle:
				r.workIdle(st, paced)
			case tgt.isWebSocket():
				r.workWS(st, quota, paced)
			case cfg.HTTP2 || cfg.H2C:
				r.workH2Core(st, quota, r.h2)
			default:
				r.workH1(st, quota)
			}
		}(&stats[i], quota)
	}
	if loops != nil {
		// the loops ran every slot
	} else if r.pacer != nil {
		// Slots start when their first socket may open: 18,000 slots
		// waiting for their turn would each hold a goroutine for nothing.
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for i := 0; i < workers; i++ {
				if !r.pacer.wait(r.stop, timer) {
					return
				}
				launch(i, true)
			}
		}()
	} else {
		for i := 0; i < workers; i++ {
			launch(i, false)
		}
	}
	wg.Wait()
	close(done)
	stopperDone.Wait()
	if r.idle != nil {
		r.idle.wait()
	}

	var total Stats
	for i := range stats {
		total.add(&stats[i])
	}
	total.Elapsed = time.Since(r.start)
	if cfg.Rate > 0 {
		// The stopper has finished: stopAt is set and no claim runs any more.
		total.Unsent = max(r.due()-r.sent.Load(), 0)
	}
	return total, nil
}

// Intended is the send time of request seq in the open model at rate
// requests/s, as an offset from the run's start (Result.Start).
func Intended(seq int64, rate float64) time.Duration {
	return time.Duration(float64(seq) / rate * float64(time.Second))
}

// Due counts the requests of the open model at rate that are due before end:
// those with Intended(seq, rate) < end. Requests are sent in seq order, so
// the requests a run sent are seqs 0..Stats.Requests-1 and the unsent ones
// follow them.
func Due(rate float64, end time.Duration) int64 {
	if end <= 0 || !(rate > 0) {
		return 0
	}
	// Intended is monotonic in seq: start from the estimate and step to the
	// first seq at or past end (a step or two of float rounding).
	n := max(int64(end.Seconds()*rate), 0)
	for n > 0 && Intended(n-1, rate) >= end {
		n--
	}
	for Intended(n, rate) < end {
		n++
	}
	return n
}

func (r *run) intended(seq int64) time.Duration { return Intended(seq, r.cfg.Rate) }

// due counts the requests of the open model whose intended time came before
// the run stopped: before min(stopAt, Duration), within the -n limit.
func (r *run) due() int64 {
	end := time.Duration(r.stopAt.Load())
	if r.cfg.Duration > 0 {
		end = min(end, r.cfg.Duration)
	}
	n := Due(r.cfg.Rate, end)
	if r.cfg.Requests > 0 {
		n = min(n, r.cfg.Requests)
	}
	return n
}

// sendDelay is how long past its intended time request began being sent: in
// the open model a request waits while every connection slot is busy. The
// closed model sends at Start, so it has none.
func (r *run) sendDelay(intended time.Duration) time.Duration {
	if r.cfg.Rate == 0 {
		return 0
	}
	return max(time.Since(r.start)-intended, 0)
}

// claim takes the next request to send. For the open model it waits until the
// request's intended time and returns that time as the start offset; ok is
// false when the run is over. quota is the worker's share of -n in the closed
// model (-1 = none): fixed shares make each connection slot carry the same
// count, as a fleet of identical clients would, and make recycling arithmetic
// exact (N requests, C slots, server limit M: N/M connections when M divides N/C).
func (r *run) claim(timer *time.Timer, quota *int64) (seq int64, intended time.Duration, ok bool) {
	seq, ok = r.take(quota)
	if !ok {
		return 0, 0, false
	}
	if r.cfg.Rate == 0 {
		return seq, time.Since(r.start), true
	}
	intended = r.intended(seq)
	if wait := intended - time.Since(r.start); wait > 0 {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-r.stop:
			// Since Go 1.23 Stop leaves no stale value in the channel:
			// there is nothing to drain, and a receive would block.
			timer.Stop()
			if !r.dueBeforeStop(intended) {
				return 0, 0, false
			}
		}
	}
	r.sent.Add(1)
	return seq, intended, true
}

// dueBeforeStop reports whether a request claimed for intended still goes
// out once the run stopped: it does when it was due before the stop. The
// stop and the timers of several claimed requests can all have fired by the
// time a stalled client runs again; sending every claimed request that was
// due keeps the sent ones seqs 0..n-1 and the unsent ones after them (Due),
// whichever slot runs first. It holds from the moment the stopper read the
// clock, so an event loop that sees stopped before stop closes decides the
// same. False after an abort, and when the run stopped by a failure of the
// engine itself (no stop time).
func (r *run) dueBeforeStop(intended time.Duration) bool {
	if r.aborted.Load() {
		return false
	}
	at := r.stopAt.Load()
	return at > 0 && intended < time.Duration(at)
}

// take is claim without the wait: in the open model the request's intended
// time may lie ahead, and the caller counts it in r.sent once it goes.
func (r *run) take(quota *int64) (seq int64, ok bool) {
	if r.stopped.Load() || *quota == 0 {
		return 0, false
	}
	if *quota > 0 {
		*quota--
	}
	seq = r.next.Add(1) - 1
	if r.cfg.Requests > 0 && seq >= r.cfg.Requests {
		return 0, false
	}
	if r.cfg.Rate > 0 && r.cfg.Duration > 0 && r.intended(seq) >= r.cfg.Duration {
		return 0, false
	}
	return seq, true
}

// held is a connection's last result, kept (a copy, not an allocation) until
// the next request on the connection shows whether it ended after it.
type held struct {
	res Result
	ok  bool
}

func (h *held) hold(res *Result) { h.res, h.ok = *res, true }

// flush records the held result, if any, with the reason its connection ended.
func (h *held) flush(r *run, st *Stats, reason CloseReason) {
	if h.ok {
		h.res.Close = reason
		r.record(&h.res, st)
		h.ok = false
	}
}

// ErrInterrupted is the Err of a request that Config.Abort ended.
const ErrInterrupted = "interrupted"

func (r *run) record(res *Result, st *Stats) {
	if res.Err != "" && (r.aborted.Load() || r.abort.Err() != nil) {
		res.Err = ErrInterrupted // whatever the abort made the transport say
	}
	st.Requests++
	if res.Failed() {
		st.Errors++
	}
	r.sinkMu.Lock()
	r.sink.Record(res)
	r.sinkMu.Unlock()
}

// dialConn dials the target (TLS when the URL says so), bounded by deadline.
func (r *run) dialConn(deadline time.Time) (net.Conn, error) {
	// The run's ctx is deliberately not used: a cancelled run still lets the
	// request in flight finish, and Timeout bounds it. An abort does not.
	ctx, cancel := context.WithDeadline(r.abort, deadline)
	defer cancel()
	c, err := r.dial(ctx, "tcp", r.tgt.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", r.tgt.addr, err)
	}
	if r.tlsConf == nil {
		return c, nil
	}
	tc := tls.Client(c, r.tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", r.tgt.addr, err)
	}
	if r.cfg.HTTP2 && tc.ConnectionState().NegotiatedProtocol != "h2" {
		tc.Close()
		return nil, fmt.Errorf("%s did not negotiate h2 via ALPN", r.tgt.addr)
	}
	return tc, nil
}

// dialBounded is dialConn (TCP and TLS) on a goroutine of its own, at most
// maxDialing at once: the dial's call path is deep, and a worker's stack
// grown for it would stay grown for the whole run; 18,000 slots dialling
// together would each grow a dial stack, and the process keeps that memory
// after them.
func (r *run) dialBounded(deadline time.Time) (net.Conn, error) {
	select {
	case r.dialing <- struct{}{}:
	case <-r.abort.Done():
		return nil, fmt.Errorf("dial %s: %w", r.tgt.addr, errAborted)
	}
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := r.dialConn(deadline)
		<-r.dialing
		ch <- dialed{c, err}
	}()
	d := <-ch
	return d.c, d.err
}

// h1Conn is one HTTP/1.1 connection slot's current connection.
type h1Conn struct {
	c      net.Conn
	rs     *rawStream
	br     connReader
	id     uint64
	reqs   uint32
	remote string // fallback backend name
	last   string // last backend seen on this connection
	// unwatch stops the abort watch that ends this connection's I/O.
	unwatch func() bool
}

func (r *run) workH1(st *Stats, quota int64) {
	p := newH1Parser(r.cfg.BackendHeader)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		cn   h1Conn
		res  Result
		resp response
		// The last result on an open connection waits until the next request
		// shows whether the server had closed the connection silently after
		// it (CloseEOF).
		pending held
	)
	flush := func(reason CloseReason) { pending.flush(r, st, reason) }
	closeConn := func(reason CloseReason) {
		if cn.c != nil {
			cn.unwatch()
			cn.c.Close()
			cn.br.reset(nil) // its buffer goes back to the pool
			cn.c = nil
			cn.last = "" // a failed dial must not inherit the old backend
			st.Closes[reason]++
		}
	}
	defer func() {
		flush(CloseNone)
		closeConn(CloseNone)
	}()
	for {
		seq, intended, ok := r.claim(timer, &quota)
		if !ok {
			return
		}
		began := time.Now()
		deadline := began.Add(r.cfg.Timeout)
		res = Result{Seq: uint64(seq), Start: intended, Delay: r.sendDelay(intended), ServerTotal: -1}
		resp = response{serverTotal: -1} // a failed dial must not show the last response
		var err error
		for attempt := 0; ; attempt++ {
			if cn.c == nil {
				if err = r.openH1(&cn, deadline, st); err != nil {
					break
				}
			}
			reused := cn.reqs > 0
			cn.reqs++
			err = r.roundTripH1(&cn, p, deadline, &resp)
			if err != nil && attempt == 0 && reused && !resp.started && isSilentClose(err) && (r.idempotent || isWriteError(err)) {
				// The server closed the idle connection before it saw the
				// request: nothing was answered, so sending again is safe.
				flush(CloseEOF)
				closeConn(CloseEOF)
				st.Retries++
				continue
			}
			break
		}
		flush(CloseNone) // the previous request's connection carried on (or failed with this one)
		res.Latency = time.Since(r.start) - intended
		if cn.c != nil {
			res.Conn = cn.id
			res.ConnReq = cn.reqs
		}
		if reason := r.h1Outcome(&res, &resp, err, cn.c != nil, &cn.last, cn.remote, cn.reqs); reason != CloseNone {
			closeConn(reason)
		}
		if err == nil && cn.c != nil {
			pending.hold(&res)
		} else {
			r.record(&res, st)
		}
	}
}

// h1Outcome fills res from an HTTP/1 round trip's answer and error, as both
// HTTP/1 engines record it, and returns how the connection ends (CloseNone:
// it stays open). open says a connection exists (a failed dial has none);
// last is the connection's last backend, updated by an answer; remote names
// the backend when no header does.
func (r *run) h1Outcome(res *Result, resp *response, err error, open bool, last *string, remote string, reqs uint32) CloseReason {
	res.Status = resp.status
	if err != nil {
		res.Err = err.Error()
		res.Bytes = max(resp.bytes, 0)
		res.Backend = *last
		if resp.head {
			// The body was cut (a reset, a timeout) after the backend
			// had named itself: the failure is that backend's.
			res.Backend = resp.backend
			if res.Backend == "" {
				res.Backend = remote
			}
		}
		res.Close = CloseError
		if !open {
			res.Close = CloseNone // no connection: the dial failed
		}
		return CloseError
	}
	res.Bytes = resp.bytes
	res.ServerTotal = resp.serverTotal
	*last = remote
	if resp.backend != "" {
		*last = resp.backend
	}
	res.Backend = *last
	switch {
	case resp.close:
		res.Close = CloseServer
	case r.cfg.MaxRequestsPerConn > 0 && reqs >= uint32(r.cfg.MaxRequestsPerConn):
		res.Close = CloseClientLimit
	}
	return res.Close
}

func (r *run) openH1(cn *h1Conn, deadline time.Time, st *Stats) error {
	c, err := r.dialBounded(deadline)
	if err != nil {
		st.DialErrors++
		return err
	}
	st.Connections++
	cn.rs = newRawStream(c)
	cn.br.reset(cn.rs)
	cn.c = c
	cn.unwatch = context.AfterFunc(r.abort, func() { c.SetDeadline(time.Unix(1, 0)) })
	cn.id = r.connID.Add(1)
	cn.reqs = 0
	cn.remote = c.RemoteAddr().String()
	cn.last = ""
	return nil
}

func (r *run) roundTripH1(cn *h1Conn, p *h1Parser, deadline time.Time, resp *response) error {
	*resp = response{serverTotal: -1}
	if err := cn.c.SetDeadline(deadline); err != nil {
		return err
	}
	if r.abort.Err() != nil {
		// The abort's past deadline may have come before ours: it stands.
		return errAborted
	}
	// The fast path needs the next bufio fill to reach the socket: only when
	// nothing (unsolicited bytes from the server) is already buffered.
	if err := cn.rs.send(r.req, cn.br.Buffered() == 0); err != nil {
		return err
	}
	err := p.read(&cn.br, r.head, resp)
	cn.br.release() // a connection between answers holds no buffer
	return err
}

var errAborted = errors.New(ErrInterrupted)

// isWriteError reports whether err came from sending the request.
func isWriteError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}

// isSilentClose reports whether err is how a connection the peer already
// closed looks: EOF on read, or reset/broken pipe on write or read.
func isSilentClose(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
