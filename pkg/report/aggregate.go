package report

import (
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/kaload/kaload/pkg/client"
)

// Options restrict and shape an aggregation.
type Options struct {
	// From and To are offsets from the start of the earliest run; only requests
	// that started in [From, To) count. A zero To means "until the end".
	From, To time.Duration
	// Interval is the width of one timeline bucket; zero means one second.
	Interval time.Duration
	// Backends are known to exist (the pods behind the Service, say). One that
	// answered nothing is invisible to a client; listed here it appears with
	// zero requests and counts in the shares, the fairness and the verdict.
	Backends []string
	// MaxBackends caps the backends tracked one by one (each costs latency
	// counts, 8 KB to 188 KB with its highest latency, and a timeline): a
	// server controls the backend header and may put a unique value in every
	// response. Names beyond the cap (or beyond 4 MiB of names) are folded
	// into one OtherBackend row; Summary.FoldedBackends says how many. Zero
	// means DefaultMaxBackends; negative means no cap.
	MaxBackends int
	// TargetRebalance is the time within which the recommendation's
	// recycling setting brings a new backend to its fair share; zero
	// means DefaultTargetRebalance.
	TargetRebalance time.Duration
}

// DefaultMaxBackends is the cap on backends tracked one by one: far more
// pods than a Service has, far less memory than a hostile header could cost.
const DefaultMaxBackends = 1000

// OtherBackend names the row that holds the requests of every backend past
// Options.MaxBackends. The parentheses keep it apart from host names.
const OtherBackend = "(other)"

// maxNameBytes bounds the names of the backends tracked one by one, with
// the cap: 1,000 names of 64 KiB (the results file's limit) would be 64 MB.
const maxNameBytes = 4 << 20

// maxFoldedTracked bounds the set of folded names' hashes that makes
// Summary.FoldedBackends exact (8 bytes and map overhead each, a few MB);
// past it the count is a lower bound.
const maxFoldedTracked = 1 << 18

// Latency histograms record microseconds from 1µs to one hour, 3 significant digits.
const (
	histMaxMicros = int64(time.Hour / time.Microsecond)
	histSigFigs   = 3
	// maxIntervals bounds the timeline (36 hours of 1s intervals) so a corrupt
	// offset or a tiny --interval cannot allocate without limit; requests
	// beyond it still count everywhere else.
	maxIntervals = 1 << 17
	// maxConnBits bounds the per-run bitset of seen connection ids (16 MiB).
	maxConnBits = 1 << 27
	// linearScanBackends: up to this many backends a slice scan beats a map.
	linearScanBackends = 16
	byPtrBits          = 6
)

// Aggregator folds results into a Summary in O(backends + intervals) memory,
// independent of the number of requests. It is not safe for concurrent use.
type Aggregator struct {
	opts Options

	runs    []*runAgg
	base    time.Time // start of the earliest run: offset zero
	started bool      // a result was added; base can no longer move

	backends      []*backendAgg
	byName        map[string]int
	last          int   // index of the backend of the previous result
	lastP         *byte // the address and length of its name
	lastN         int
	named         int // backends tracked one by one ("" and OtherBackend do not count)
	nameBytes     int // their names' bytes
	other         int // index of the OtherBackend row, -1 until a name is folded
	folded        map[uint64]struct{}
	foldedAtLeast bool // more names were folded than folded could hold
	seed          maphash.Seed
	// byPtr caches backend indexes by the address of the name's bytes
	// when more than linearScanBackends are tracked (see backend).
	byPtr [1 << byPtrBits]ptrEntry

	requests, errors uint64
	tlErrors         []uint64
	tlDropped        uint64
	tlLat            []*intervalLat // per interval, nil where nothing answered
	// The interval of the previous request (ivIdx) and its latency histogram
	// (ivLat, nil until one answered); offsets in [ivLo, ivHi) fall in it.
	ivLo, ivHi     time.Duration
	ivIdx          int
	ivLat          *intervalLat
	prevLat        *intervalLat    // the last one made: the next starts as wide
	tlConns        []intervalConns // connections opened and closed per interval
	closeReasons   [8]uint64
	timeoutRedials uint64 // connections the client dropped after a timeout
	errKinds       map[string]uint64
	errExamples    map[string]string  // kind -> the first message of that kind
	kinds          map[kindKey]string // see Aggregator.errorKind
	minOff, maxEnd time.Duration
	// Latency of answered requests that opened their connection (dial and
	// any TLS handshake included) and of the others: the reconnect cost.
	firstLat, restLat time.Duration
	firstN, restN     uint64
	seen              bool
	pastTo            bool // traffic went on after To: the window ends at To

	events []runEvent // in the order added; see eventOffsets

	sockets socketAgg // WebSocket socket records (client.KindSocket)
}

type ptrEntry struct {
	p   *byte
	n   int
	idx int
}

type runAgg struct {
	label, url  string
	args        []string // the command line, from the header
	version     string   // the kaload that wrote it
	start       time.Time
	connections int // the run's -c: the connections perfect keep-alive would use
	shift       time.Duration
	rate        float64       // the open model's requests/s; 0: closed model
	limit       time.Duration // the run's duration limit; 0: none
	// end is when the run stopped, from its own start; -1 until Finish.
	end time.Duration
	// unsent counts requests due but never sent (open model); -1: not
	// counted. sent is one past the highest seq of the run, in the window
	// or not: the engine sends seqs in order, so the unsent requests are
	// seqs sent..sent+unsent-1 (a gRPC stream's messages share its seq).
	unsent   int64
	sent     int64
	requests uint64
	errors   uint64
	conns    uint64
	connSeen []uint64 // bitset over connection ids
}

type backendAgg struct {
	name                  string
	readyAt               time.Duration // known idle backend: when it became Ready (0: from the start)
	requests, errors      uint64
	conns                 uint64
	first, last           time.Duration
	firstTotal, lastTotal int64  // Total-Request at the first and last request, -1 if none
	withTotal             uint64 // results that carried Total-Request
	minTotal, maxTotal    int64  // its extremes: the count's growth whatever the order of answers
	firstTotalOff         time.Duration
	lastTotalOff          time.Duration
	maxLatency            time.Duration
	lat                   latHist  // latencies of answered requests (µs)
	p                     *byte    // the address of name's bytes last seen (see backend)
	tl                    []uint64 // requests per interval
}

// NewAggregator returns an empty aggregator.
func NewAggregator(opts Options) *Aggregator {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxBackends == 0 {
		opts.MaxBackends = DefaultMaxBackends
	}
	return &Aggregator{opts: opts, byName: map[string]int{}, errKinds: map[string]uint64{}, errExamples: map[string]string{}, last: -1, other: -1, seed: maphash.MakeSeed()}
}

// Options returns the options in effect (with defaults filled in).
func (a *Aggregator) Options() Options { return a.opts }

// add folds one result into the aggregate of run. It runs once per record
// of every file a report reads, so what is rare (errors, connections that
// open or close, a new interval) is out of line.
func (a *Aggregator) add(run *runAgg, r *client.Result) {
	if r.Kind == client.KindSocket {
		a.addSocket(run, r)
		return
	}
	a.started = true
	// A request counts at the time it was sent (Start+Delay: under --rate,
	// when a connection slot took it) for the window, the timeline and
	// first/last seen; its latency runs from Start, its intended time.
	if r.Seq >= uint64(run.sent) { // sent = max(sent, min(Seq, MaxInt64-1)+1)
		run.sent = int64(min(r.Seq, math.MaxInt64-1)) + 1
	}
	due := r.Start + run.shift
	off := due + r.Delay
	if off < a.opts.From {
		return
	}
	if a.opts.To > 0 && off >= a.opts.To {
		a.pastTo = true
		return
	}
	b := a.backend(r.Backend)

	a.requests++
	run.requests++
	b.requests++
	failed := r.Failed()
	if failed {
		a.addError(run, b, r)
	}

	if !a.seen || off < a.minOff {
		a.minOff = off
	}
	if end := due + r.Latency; !a.seen || end > a.maxEnd {
		a.maxEnd = end
	}
	a.seen = true
	if b.requests == 1 || off < b.first {
		b.first = off
	}
	if off > b.last {
		b.last = off
	}
	if r.ServerTotal >= 0 {
		if b.withTotal == 0 || r.ServerTotal < b.minTotal {
			b.minTotal = r.ServerTotal
		}
		b.maxTotal = max(b.maxTotal, r.ServerTotal)
		b.withTotal++
		if b.firstTotal < 0 || off < b.firstTotalOff {
			b.firstTotal, b.firstTotalOff = r.ServerTotal, off
		}
		if b.lastTotal < 0 || off >= b.lastTotalOff {
			b.lastTotal, b.lastTotalOff = r.ServerTotal, off
		}
	}

	// firstSight, its common case inline: the connection's bit is in the set.
	var newConn bool
	if c := r.Conn; c != 0 {
		w := c / 64
		seen := w < uint64(len(run.connSeen)) && run.connSeen[w]&(1<<(c%64)) != 0
		newConn = !seen && run.firstSight(r)
	}
	if newConn {
		b.conns++
		run.conns++
	}
	if int(r.Close) < len(a.closeReasons) {
		a.closeReasons[r.Close]++
	}

	// Latency only of requests that got a response: a refused dial's zero
	// latency would flatter the percentiles.
	answered := r.Err == ""
	var us int64
	if answered {
		us = min(max(int64(r.Latency/time.Microsecond), 0), histMaxMicros)
		b.lat.record(us)
		if r.Latency > b.maxLatency {
			b.maxLatency = r.Latency
		}
		if r.ConnReq == 1 {
			a.firstLat += r.Latency
			a.firstN++
		} else if r.ConnReq > 1 {
			a.restLat += r.Latency
			a.restN++
		}
	}

	i := a.interval(off)
	if i < 0 {
		a.tlDropped++
		return
	}
	if i >= len(b.tl) {
		b.tl = grow(b.tl, i)
	}
	b.tl[i]++
	if answered {
		l := a.ivLat
		if l == nil {
			l = a.newIntervalLat(i)
		}
		if !l.record(uint32(us)) {
			l.recordWide(uint32(us))
		}
	}
	if newConn || r.Close != client.CloseNone {
		a.addIntervalConns(i, r, newConn)
	}
	if failed {
		if i >= len(a.tlErrors) {
			a.tlErrors = grow(a.tlErrors, i)
		}
		a.tlErrors[i]++
	}
}

// addError counts a failed request by kind.
func (a *Aggregator) addError(run *runAgg, b *backendAgg, r *client.Result) {
	a.errors++
	run.errors++
	b.errors++
	k := a.errorKind(r)
	a.errKinds[k]++
	if k == "timeout" && r.Close == client.CloseError {
		// The client gave up and dropped the connection: its next
		// request dials again, wherever the balancer sends it.
		a.timeoutRedials++
	}
	if _, ok := a.errExamples[k]; !ok {
		a.errExamples[k] = errorExample(r)
	}
}

// interval returns the timeline index of a request sent at off (>= From),
// or -1 past maxIntervals. Offsets come nearly in order, so the range of the
// previous one is kept and the division is done once per interval.
func (a *Aggregator) interval(off time.Duration) int {
	if off >= a.ivLo && off < a.ivHi {
		return a.ivIdx
	}
	return a.intervalSlow(off)
}

func (a *Aggregator) intervalSlow(off time.Duration) int {
	idx := int64(0)
	d := off - a.opts.From
	if d > 0 {
		idx = int64(d / a.opts.Interval)
	}
	if idx >= maxIntervals {
		return -1
	}
	i := int(idx)
	a.ivLo, a.ivHi, a.ivIdx, a.ivLat = 0, 0, i, nil
	if d >= 0 { // the difference did not overflow: offsets in [lo, hi) share i
		a.ivLo = a.opts.From + time.Duration(idx)*a.opts.Interval
		a.ivHi = a.ivLo + a.opts.Interval
		if a.ivHi < a.ivLo {
			a.ivHi = math.MaxInt64
		}
	}
	if i < len(a.tlLat) {
		a.ivLat = a.tlLat[i]
	}
	return i
}

// grow extends s so that index i is valid, amortising like append.
func grow(s []uint64, i int) []uint64 {
	if i < cap(s) {
		return s[:i+1]
	}
	n := make([]uint64, i+1, max(2*cap(s), i+1, 64))
	copy(n, s)
	return n
}

// firstSight reports whether r is the first request of its connection seen in
// the window. Connection ids are small and dense, so a bitset does; absurd ids
// fall back to the connection's first request.
func (run *runAgg) firstSight(r *client.Result) bool {
	if r.Conn >= maxConnBits {
		return r.ConnReq == 1
	}
	w, bit := int(r.Conn/64), uint64(1)<<(r.Conn%64)
	if w >= len(run.connSeen) {
		run.connSeen = grow(run.connSeen, w)
	}
	if run.connSeen[w]&bit != 0 {
		return false
	}
	run.connSeen[w] |= bit
	return true
}

// backend returns the aggregate for name. Decoders intern names, so results
// mostly carry one of a few string addresses: the common case is a compare of
// the address and length with the previous result's, then with each tracked
// backend's last-seen address (up to linearScanBackends) or a cache keyed by
// the address; only a new address compares bytes. A cached address holds its
// bytes alive, so it is never reused for another name while it is cached.
// (Comparing names cost two memequal calls a result when backends
// alternate: 150 of the 1040 instructions a record of a report cost.)
func (a *Aggregator) backend(name string) *backendAgg {
	p, n := unsafe.StringData(name), len(name)
	if p == a.lastP && n == a.lastN && p != nil {
		return a.backends[a.last]
	}
	if len(a.backends) <= linearScanBackends {
		for i, b := range a.backends {
			if b.p == p && len(b.name) == n && p != nil {
				a.last, a.lastP, a.lastN = i, p, n
				return b
			}
		}
	} else if e := &a.byPtr[ptrSlot(p)]; e.p == p && e.n == n && p != nil {
		a.last, a.lastP, a.lastN = e.idx, p, n
		return a.backends[e.idx]
	}
	return a.backendByName(name)
}

// ptrSlot spreads addresses over byPtr: names a decoder allocates one after
// the other sit a few bytes apart.
func ptrSlot(p *byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(p))) * 0x9e3779b97f4a7c15 >> (64 - byPtrBits)
}

// backendByName finds or creates the aggregate for name by its bytes and
// caches its address.
func (a *Aggregator) backendByName(name string) *backendAgg {
	p, n := unsafe.StringData(name), len(name)
	i := -1
	if len(a.backends) <= linearScanBackends {
		for j, b := range a.backends {
			if b.name == name {
				i = j
				break
			}
		}
	} else if j, ok := a.byName[name]; ok {
		i = j
	}
	if i < 0 {
		if name != "" && a.opts.MaxBackends > 0 && (a.named >= a.opts.MaxBackends || a.nameBytes+len(name) > maxNameBytes) {
			i = a.fold(name)
		} else {
			if name != "" {
				a.named++
				a.nameBytes += len(name)
			}
			b := newBackendAgg(strings.Clone(name)) // do not pin a decoder's buffer
			a.backends = append(a.backends, b)
			i = len(a.backends) - 1
			a.byName[b.name] = i
		}
	}
	a.last, a.lastP, a.lastN = i, p, n
	if i == a.other && name != OtherBackend {
		// A folded name: the next result of it finds (other) by its address
		// alone; fold already counted it.
		if len(a.backends) > linearScanBackends {
			a.byPtr[ptrSlot(p)] = ptrEntry{p: p, n: n, idx: i}
		}
		return a.backends[i]
	}
	if len(a.backends) <= linearScanBackends {
		a.backends[i].p = p
	} else {
		a.byPtr[ptrSlot(p)] = ptrEntry{p: p, n: n, idx: i}
	}
	return a.backends[i]
}

func newBackendAgg(name string) *backendAgg {
	return &backendAgg{name: name, firstTotal: -1, lastTotal: -1}
}

// fold counts name as one of the backends past the cap and returns the
// index of the OtherBackend row. Only a hash of the name is kept.
func (a *Aggregator) fold(name string) int {
	if a.other < 0 {
		a.backends = append(a.backends, newBackendAgg(OtherBackend))
		a.other = len(a.backends) - 1
		a.folded = make(map[uint64]struct{})
	}
	h := maphash.String(a.seed, name)
	if _, ok := a.folded[h]; !ok {
		if len(a.folded) < maxFoldedTracked {
			a.folded[h] = struct{}{}
		} else {
			a.foldedAtLeast = true
		}
	}
	return a.other
}

// BackendNames returns how many distinct backend names were seen: tracked
// and folded (a lower bound past the folded names the aggregator can count).
func (a *Aggregator) BackendNames() int { return a.named + len(a.folded) }

// Folded returns how many distinct backend names were folded into
// OtherBackend; atLeast says the count is a lower bound.
func (a *Aggregator) Folded() (names int, atLeast bool) {
	return len(a.folded), a.foldedAtLeast
}

// kindKey is what errorKind reads of a result: the gRPC code, else the
// error text, else the status.
type kindKey struct {
	grpc   uint16
	status int
	err    string
}

// maxKindCache bounds the kinds the aggregator remembers: texts that differ
// in every result (addresses, ports) would fill it for nothing.
// Longer texts are not kept: 1024 of 64 KiB would hold 64 MB.
const (
	maxKindCache = 1024
	maxKindText  = 256
)

// errorKind is errorKind(r), remembered: it allocates (and lowercases the
// text) for every failed request otherwise.
func (a *Aggregator) errorKind(r *client.Result) string {
	key := kindKey{grpc: r.GRPCCode}
	switch {
	case r.GRPCCode != 0:
	case r.Err == "":
		key.status = r.Status
	default:
		key.err = r.Err
	}
	if k, ok := a.kinds[key]; ok {
		return k
	}
	k := errorKind(r)
	if len(a.kinds) < maxKindCache && len(r.Err) <= maxKindText {
		if a.kinds == nil {
			a.kinds = make(map[kindKey]string)
		}
		a.kinds[key] = k
	}
	return k
}

// errorKind names the class of a failed request for "errors by kind".
func errorKind(r *client.Result) string {
	if r.GRPCCode != 0 {
		return "grpc " + client.GRPCCodeName(r.GRPCCode)
	}
	if r.Err == "" {
		return "http " + strconv.Itoa(r.Status)
	}
	if r.Err == client.ErrInterrupted {
		return "interrupted" // an abort (a second Ctrl-C) ended it, whatever the transport said
	}
	e := strings.ToLower(r.Err)
	for _, k := range [...]struct{ sub, kind string }{
		{"timeout", "timeout"},
		{"deadline exceeded", "timeout"},
		{"connection refused", "connection refused"},
		{"connection reset", "connection reset"},
		{"broken pipe", "broken pipe"},
		{"no such host", "dns"},
		{"eof", "eof"},
		{"canceled", "canceled"},
		{"tls", "tls"},
		{"http2:", "http2"},
		{"malformed http response", "protocol"},
	} {
		if strings.Contains(e, k.sub) {
			return k.kind
		}
	}
	return "other"
}

// maxExample bounds an error example: messages may quote a response.
const maxExample = 300

// errorExample is the message shown for an error kind.
func errorExample(r *client.Result) string {
	if r.Err == "" {
		return "HTTP status " + strconv.Itoa(r.Status)
	}
	if len(r.Err) > maxExample {
		return strings.ToValidUTF8(r.Err[:maxExample], "") + "..."
	}
	return strings.Clone(r.Err)
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func round(v float64, places int) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// ErrorKind names the class of a failed request as the summary's
// error_kinds do ("timeout", "http 503", "grpc UNAVAILABLE", ...).
func ErrorKind(r *client.Result) string { return errorKind(r) }
