package report

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kaload/kaload/pkg/client"
)

// Summary is everything a report shows. Its JSON encoding is the contract in
// docs/design.md: keep field names stable, add rather than rename.
type Summary struct {
	// Protocol is the runs' URL scheme (http, https, ws, wss, grpc, grpcs;
	// several joined with ", "); requests are RPCs under grpc.
	Protocol           string  `json:"protocol,omitempty"`
	Requests           uint64  `json:"requests"`
	Errors             uint64  `json:"errors"`
	ErrorRate          float64 `json:"error_rate"`
	Connections        uint64  `json:"connections"`
	PerfectConnections int     `json:"perfect_connections,omitempty"`
	// RequestsPerConnection is nil when no connection was opened.
	RequestsPerConnection *float64 `json:"requests_per_connection"`
	DurationSeconds       float64  `json:"duration_seconds"`
	RPS                   float64  `json:"rps"`
	// Unsent counts requests of open-model runs (--rate) that were due in
	// the window but never sent: every connection slot was busy, or the
	// client could not send in time (client.Stats.Unsent). nil when
	// no run counted them (closed model, or files from an older kaload).
	Unsent *uint64 `json:"unsent"`
	// TargetRPS is the rate the runs that counted Unsent asked for.
	TargetRPS float64 `json:"target_rps,omitempty"`
	Window    Window  `json:"window"`
	// Unattributed counts requests that no backend answered (failed dials).
	Unattributed uint64 `json:"unattributed_requests"`
	// TimeoutRedials counts connections the client dropped because a
	// request timed out. Each is re-dialled and may reach another backend,
	// so a client that falls behind spreads load as recycling would,
	// without any server closing a connection.
	TimeoutRedials uint64 `json:"timeout_redials"`
	// FoldedBackends counts the distinct backend names past
	// Options.MaxBackends whose requests the OtherBackend row holds;
	// FoldedAtLeast says the count is a lower bound.
	FoldedBackends int  `json:"folded_backends,omitempty"`
	FoldedAtLeast  bool `json:"folded_backends_at_least,omitempty"`
	MaxBackends    int  `json:"max_backends,omitempty"`
	// TrackedBackends is how many were tracked one by one when folding
	// began: MaxBackends, or fewer when their names passed 4 MiB.
	TrackedBackends int              `json:"tracked_backends,omitempty"`
	Backends        []BackendSummary `json:"backends"`
	// Fairness is nil when it cannot be judged; FairnessNoData says why.
	Fairness       *Fairness `json:"fairness"`
	FairnessNoData string    `json:"fairness_no_data,omitempty"`
	// Latency is nil when no request got a response.
	Latency      *Latency          `json:"latency"`
	CloseReasons map[string]uint64 `json:"close_reasons"`
	ErrorKinds   map[string]uint64 `json:"error_kinds"`
	// ErrorExamples holds one message per error kind, the first seen.
	ErrorExamples map[string]string `json:"error_examples"`
	Rebalance     []Rebalance       `json:"rebalance"`
	// Outcome classifies the verdict (see Rules); Verdict says it in words.
	Outcome  Outcome      `json:"outcome"`
	Verdict  string       `json:"verdict"`
	Runs     []RunSummary `json:"runs"`
	Timeline Timeline     `json:"timeline"`
	// Events are what the cluster or the lab did in the window (kaload
	// hammer --watch, kaload lab); absent when nothing was watched.
	Events []Event `json:"events,omitempty"`
	// Stages follow each pod created during the run into traffic (from
	// the events); absent without events.
	Stages []PodStages `json:"stages,omitempty"`
	// Recommendation is the recycling setting for Options.TargetRebalance;
	// nil with the reason in RecommendationNoData.
	Recommendation       *Recommendation `json:"recommendation"`
	RecommendationNoData string          `json:"recommendation_no_data,omitempty"`
	// Sockets is the WebSocket view (sockets held per backend over time);
	// absent when the results hold no socket records.
	Sockets *SocketSummary `json:"sockets,omitempty"`
}

// Window is the part of the run the figures cover, in seconds from its start.
type Window struct {
	FromSeconds float64 `json:"from_seconds"`
	ToSeconds   float64 `json:"to_seconds,omitempty"` // 0: until the end
}

// BackendSummary is one backend's part of the traffic.
type BackendSummary struct {
	Name                  string   `json:"name"`
	Requests              uint64   `json:"requests"`
	Errors                uint64   `json:"errors"`
	Share                 float64  `json:"share"`
	Connections           uint64   `json:"connections"`
	RequestsPerConnection *float64 `json:"requests_per_connection"` // nil: no connection
	// FirstSeenSeconds, LastSeenSeconds and Latency are nil for a known
	// backend that answered nothing.
	FirstSeenSeconds *float64 `json:"first_seen_seconds"`
	LastSeenSeconds  *float64 `json:"last_seen_seconds"`
	Latency          *Latency `json:"latency"`
	// ServerTotalDelta is the growth of the backend's Total-Request header
	// (highest seen minus lowest): its traffic from all clients. Negative
	// means the server restarted (the last count is below the first).
	ServerTotalDelta *int64 `json:"server_total_delta,omitempty"`
	// ServerTotalSeen counts this backend's responses that carried the
	// header: the delta equals ServerTotalSeen-1 when this run was the
	// backend's only client.
	ServerTotalSeen uint64 `json:"server_total_seen,omitempty"`
	Restarted       bool   `json:"restarted,omitempty"`
}

// Fairness measures how evenly requests spread over backends.
type Fairness struct {
	Jain     float64 `json:"jain"` // 1 = perfectly even, 1/n = all on one
	MinShare float64 `json:"min_share"`
	MaxShare float64 `json:"max_share"`
	// MaxMinRatio is nil when a backend got nothing (infinite).
	MaxMinRatio *float64 `json:"max_min_ratio"`
	CV          float64  `json:"cv"` // coefficient of variation of requests per backend
}

// Latency percentiles in milliseconds, of requests that got a response.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Rebalance tells how fast a backend that appeared mid-run got its share.
// The judged period runs from the interval it appeared in to the end of the
// window; the rules are in verdict.go (Rules).
type Rebalance struct {
	Backend         string  `json:"backend"`
	AppearedSeconds float64 `json:"appeared_seconds"`
	// FairShareAfterSeconds is the time from appearing to the end of the
	// interval from which it held its fair share (see Rules) until the end;
	// nil: it never did, or did not stay there.
	FairShareAfterSeconds *float64 `json:"fair_share_after_seconds"`
	// ShareAfter is its share of all requests of the judged period.
	ShareAfter float64 `json:"share_after"`
	// FairShare is what it would have got over the judged period had every
	// interval's requests been spread evenly over the backends active in
	// that interval (so a partial interval weighs by its requests only).
	FairShare float64 `json:"fair_share"`
	// ShareLastHalf and FairShareLastHalf are the same over the last half
	// of the judged period: whether it stayed there.
	ShareLastHalf     float64 `json:"share_last_half"`
	FairShareLastHalf float64 `json:"fair_share_last_half"`
	Outcome           Outcome `json:"outcome"`
}

// RunSummary is one merged results file.
type RunSummary struct {
	Label       string    `json:"label"`
	URL         string    `json:"url,omitempty"`
	Start       time.Time `json:"start"`
	Requests    uint64    `json:"requests"`
	Errors      uint64    `json:"errors"`
	Connections uint64    `json:"connections"`
	Rate        float64   `json:"rate,omitempty"`   // open model: the target requests/s
	Unsent      *uint64   `json:"unsent"`           // see Summary.Unsent
	Args        []string  `json:"args,omitempty"`   // the hammer's command line
	Kaload      string    `json:"kaload,omitempty"` // the version that wrote the results
}

// Timeline counts requests per backend per interval, from the window's start.
type Timeline struct {
	IntervalSeconds float64 `json:"interval_seconds"`
	StartSeconds    float64 `json:"start_seconds"`
	// EndSeconds is the window's real end: the last interval stops there.
	EndSeconds float64    `json:"end_seconds"`
	Backends   []string   `json:"backends"`
	Intervals  []Interval `json:"intervals"`
	// Dropped counts requests too far from the start for the timeline's
	// bounded number of intervals; every other figure includes them.
	Dropped uint64 `json:"dropped_requests,omitempty"`
}

// Interval is one timeline bucket; Counts follow Timeline.Backends.
type Interval struct {
	StartSeconds float64 `json:"start_seconds"`
	// EndSeconds is clipped to the window's end: the last interval of a run
	// that ends mid-interval is shorter (see Partial).
	EndSeconds float64  `json:"end_seconds"`
	Requests   uint64   `json:"requests"`
	Errors     uint64   `json:"errors"`
	Counts     []uint64 `json:"counts"`
	// Due counts the requests open-model runs that counted Unsent had due in
	// this interval (by intended time); Unsent the part never sent.
	Due    uint64 `json:"due,omitempty"`
	Unsent uint64 `json:"unsent,omitempty"`
	// LatencyP50 and LatencyP99 (ms) of the interval's answered requests,
	// from a compact per-interval histogram (within 6.25%); nil: none
	// answered.
	LatencyP50 *float64 `json:"p50_ms,omitempty"`
	LatencyP99 *float64 `json:"p99_ms,omitempty"`
	// Opened counts connections whose first request fell in the interval;
	// Closed those that ended after a request of the interval, by reason.
	Opened uint64            `json:"opened,omitempty"`
	Closed map[string]uint64 `json:"closed,omitempty"`
}

// Summary computes the report of everything added so far. It does not
// change the aggregator; more results may be added and Summary called again.
func (a *Aggregator) Summary() *Summary {
	s := &Summary{
		Requests:     a.requests,
		Errors:       a.errors,
		ErrorRate:    ratio(float64(a.errors), float64(a.requests)),
		Window:       Window{FromSeconds: seconds(a.opts.From), ToSeconds: seconds(a.opts.To)},
		CloseReasons: map[string]uint64{},
		ErrorKinds:   map[string]uint64{},
		Backends:     []BackendSummary{},
		Rebalance:    []Rebalance{},
		Runs:         []RunSummary{},

		TimeoutRedials: a.timeoutRedials,
	}
	for k, n := range a.errKinds {
		s.ErrorKinds[k] = n
	}
	for _, r := range client.CloseReasons() {
		if n := a.closeReasons[r]; n > 0 {
			s.CloseReasons[r.String()] = n
		}
	}
	var schemes []string
	for _, r := range a.runs {
		if sch, _, ok := strings.Cut(r.url, "://"); ok && !slices.Contains(schemes, sch) {
			schemes = append(schemes, sch)
		}
	}
	slices.Sort(schemes)
	s.Protocol = strings.Join(schemes, ", ")
	for _, r := range a.runs {
		rs := RunSummary{Label: r.label, URL: r.url, Start: r.start, Rate: r.rate, Args: r.args, Kaload: r.version,
			Requests: r.requests, Errors: r.errors, Connections: r.conns}
		if r.unsent >= 0 {
			n := r.unsentIn(a.opts.From, a.opts.To)
			rs.Unsent = &n
			if s.Unsent == nil {
				s.Unsent = new(uint64)
			}
			*s.Unsent += n
			s.TargetRPS += r.rate
		}
		s.Runs = append(s.Runs, rs)
		s.PerfectConnections += r.connections
	}

	// The window spans from its start (or the first request) to the end of
	// the last request or of the runs, cut at To.
	var end time.Duration // the window's real end
	if a.seen {
		from := a.opts.From
		if from == 0 {
			from = min(0, a.minOff)
		}
		end = a.maxEnd
		// A run that stopped sending (every slot held by a stalled server)
		// still lasted until it ended.
		for _, r := range a.runs {
			if r.end >= 0 {
				end = max(end, r.end+r.shift)
			}
		}
		if a.opts.To > 0 && (end > a.opts.To || a.pastTo) {
			end = a.opts.To
		}
		s.DurationSeconds = round(seconds(end-from), 6)
		s.RPS = round(ratio(float64(a.requests), seconds(end-from)), 3)
	}

	// Backends in order of appearance, so a scale-up reads top to bottom.
	bs := make([]*backendAgg, 0, len(a.backends))
	var attributed uint64
	var all latHist
	var maxLat time.Duration
	for _, b := range a.backends {
		s.Connections += b.conns
		all.add(&b.lat)
		maxLat = max(maxLat, b.maxLatency)
		if b.name == "" {
			s.Unattributed += b.requests
			continue
		}
		bs = append(bs, b)
		attributed += b.requests
	}
	sort.SliceStable(bs, func(i, j int) bool {
		if oi, oj := a.isOther(bs[i]), a.isOther(bs[j]); oi || oj {
			return oj // the many-backend row comes after every real one
		}
		if bs[i].first != bs[j].first {
			return bs[i].first < bs[j].first
		}
		return bs[i].name < bs[j].name
	})
	// Known backends that answered nothing come last, with zero requests.
	evs := a.eventOffsets()
	known, readyAt := a.knownBackends(evs, end)
	for _, name := range known {
		if _, ok := a.byName[name]; !ok && name != "" && !slices.ContainsFunc(bs, func(b *backendAgg) bool { return b.name == name }) {
			bs = append(bs, &backendAgg{name: name, firstTotal: -1, readyAt: readyAt[name]})
		}
	}
	s.RequestsPerConnection = perConn(a.requests, s.Connections)
	s.Latency = latencyOf(all.hdr(), maxLat)
	s.ErrorExamples = maps.Clone(a.errExamples)

	shares := make([]float64, len(bs))
	for i, b := range bs {
		shares[i] = ratio(float64(b.requests), float64(attributed))
		bsum := BackendSummary{
			Name: b.name, Requests: b.requests, Errors: b.errors,
			Share:                 round(shares[i], 6),
			Connections:           b.conns,
			RequestsPerConnection: perConn(b.requests, b.conns),
			Latency:               latencyOf(b.lat.hdr(), b.maxLatency),
		}
		if b.requests > 0 {
			first, last := round(seconds(b.first), 6), round(seconds(b.last), 6)
			bsum.FirstSeenSeconds, bsum.LastSeenSeconds = &first, &last
		}
		if b.firstTotal >= 0 {
			// The count's growth is max - min: the first request by start
			// time need not be the first answered. A last count below the
			// first says the server restarted: then the drop is shown.
			d := b.maxTotal - b.minTotal
			if b.lastTotal < b.firstTotal {
				d = b.lastTotal - b.firstTotal
			}
			bsum.ServerTotalDelta = &d
			bsum.ServerTotalSeen = b.withTotal
			bsum.Restarted = d < 0
		}
		s.Backends = append(s.Backends, bsum)
	}
	switch {
	case a.requests == 0:
		s.FairnessNoData = "no requests in the window " + windowRange(s.Window)
	case attributed == 0:
		s.FairnessNoData = fmt.Sprintf("no backend answered: all %d requests failed", a.requests)
	case len(bs) == 1 && len(known) == 0:
		s.FairnessNoData = NoDataOneBackend
	default:
		s.Fairness = fairness(bs)
	}
	s.Timeline = a.timeline(bs, end)
	// The OtherBackend row is many backends: it cannot "appear" or rebalance.
	named := slices.DeleteFunc(slices.Clone(bs), a.isOther)
	s.Rebalance = rebalance(named, s.Timeline)
	if a.other >= 0 {
		s.FoldedBackends, s.FoldedAtLeast = a.Folded()
		s.MaxBackends = a.opts.MaxBackends
		s.TrackedBackends = a.named
	}
	s.Events = a.eventSummary(evs)
	s.Stages = podStages(evs, s)
	s.Recommendation, s.RecommendationNoData = a.recommend(s)
	s.Outcome, s.Verdict = verdict(s)
	if len(s.Stages) > 0 {
		s.Verdict += "; " + stagesVerdict(s.Stages)
	}
	if s.Sockets = a.socketSummary(); s.Sockets != nil {
		sv, so := socketVerdict(s.Sockets, seconds(a.sockets.maxEnd)), socketOutcome(s.Sockets)
		if s.Requests == 0 {
			s.Outcome, s.Verdict = so, sv // an idle run: sockets are all there is
		} else {
			s.Verdict += "; " + sv
			if so == OutcomeStuck {
				s.Outcome = so // messages may spread while sockets stay pinned
			}
		}
	}
	return s
}

// perConn is requests per connection, nil without a connection.
func perConn(requests, conns uint64) *float64 {
	if conns == 0 {
		return nil
	}
	v := round(float64(requests)/float64(conns), 3)
	return &v
}

func (a *Aggregator) isOther(b *backendAgg) bool { return a.other >= 0 && b == a.backends[a.other] }

// NoDataOneBackend is why fairness is not judged when one backend answered
// and no other is known: pods that got nothing are invisible to a client.
const NoDataOneBackend = "only 1 backend answered; idle pods are invisible without --watch or --backends"

// windowRange prints a window as "10s..end".
func windowRange(w Window) string {
	to := "end"
	if w.ToSeconds > 0 {
		to = fmtDuration(w.ToSeconds)
	}
	return fmtDuration(w.FromSeconds) + ".." + to
}

func latencyOf(h *hdrhistogram.Histogram, maxLat time.Duration) *Latency {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return round(float64(us)/1e3, 3) }
	return &Latency{
		P50: ms(h.ValueAtQuantile(50)),
		P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)),
		Max: round(float64(maxLat)/float64(time.Millisecond), 3),
	}
}

// fairness of the request counts: Jain's index (Σx)²/(n·Σx²), shares, max/min
// and the coefficient of variation.
func fairness(bs []*backendAgg) *Fairness {
	var sum, sq float64
	minN, maxN := math.Inf(1), 0.0
	for _, b := range bs {
		x := float64(b.requests)
		sum += x
		sq += x * x
		minN, maxN = min(minN, x), max(maxN, x)
	}
	n := float64(len(bs))
	mean := sum / n
	variance := sq/n - mean*mean
	f := &Fairness{
		Jain:     round(ratio(sum*sum, n*sq), 6),
		MinShare: round(ratio(minN, sum), 6),
		MaxShare: round(ratio(maxN, sum), 6),
		CV:       round(ratio(math.Sqrt(max(variance, 0)), mean), 6),
	}
	if minN > 0 {
		r := round(maxN/minN, 6)
		f.MaxMinRatio = &r
	}
	return f
}

func (a *Aggregator) timeline(bs []*backendAgg, end time.Duration) Timeline {
	t := Timeline{
		IntervalSeconds: seconds(a.opts.Interval),
		StartSeconds:    seconds(a.opts.From),
		EndSeconds:      round(seconds(end), 6),
		Backends:        make([]string, len(bs)),
		Intervals:       []Interval{},
		Dropped:         a.tlDropped,
	}
	n := len(a.tlErrors)
	for _, b := range a.backends {
		n = max(n, len(b.tl))
	}
	// The timeline runs to the end of the last run, even where nothing was
	// sent (a stalled server holding every connection slot).
	for _, r := range a.runs {
		if r.end < 0 {
			continue
		}
		end := r.end + r.shift
		if a.opts.To > 0 {
			end = min(end, a.opts.To)
		}
		if d := end - a.opts.From; d > 0 {
			n = max(n, int(min((d+a.opts.Interval-1)/a.opts.Interval, maxIntervals)))
		}
	}
	for i, b := range bs {
		t.Backends[i] = b.name
	}
	var unattributed *backendAgg
	if i, ok := a.byName[""]; ok {
		unattributed = a.backends[i]
	}
	t.Intervals = make([]Interval, 0, n)
	backing := make([]uint64, n*len(bs)) // one allocation for every interval's counts
	for k := range n {
		ivStart := a.opts.From + time.Duration(k)*a.opts.Interval
		ivEnd := ivStart + a.opts.Interval
		if end < ivEnd && k == n-1 && end >= ivStart {
			ivEnd = end // the run ended inside its last interval
		}
		iv := Interval{
			StartSeconds: round(seconds(ivStart), 6),
			EndSeconds:   round(seconds(ivEnd), 6),
			Counts:       backing[k*len(bs) : (k+1)*len(bs) : (k+1)*len(bs)],
		}
		for i, b := range bs {
			if k < len(b.tl) {
				iv.Counts[i] = b.tl[k]
				iv.Requests += b.tl[k]
			}
		}
		if unattributed != nil && k < len(unattributed.tl) {
			iv.Requests += unattributed.tl[k]
		}
		if k < len(a.tlErrors) {
			iv.Errors = a.tlErrors[k]
		}
		a.intervalFigures(k, &iv)
		from := a.opts.From + time.Duration(k)*a.opts.Interval
		for _, r := range a.runs {
			if r.unsent >= 0 {
				to := from + a.opts.Interval
				if a.opts.To > 0 {
					to = min(to, a.opts.To)
				}
				iv.Due += r.dueIn(from, to)
				iv.Unsent += r.unsentIn(from, to)
			}
		}
		t.Intervals = append(t.Intervals, iv)
	}
	return t
}

// unsentIn counts the run's unsent requests whose intended time lies in
// [from, to) of the aggregation's clock (to 0: no end): seqs
// sent..sent+unsent-1, due at seq/rate.
func (r *runAgg) unsentIn(from, to time.Duration) uint64 {
	if r.unsent <= 0 {
		return 0
	}
	lo, hi := r.sent, r.sent+r.unsent
	if from > r.shift {
		lo = max(lo, client.Due(r.rate, from-r.shift))
	}
	if to > 0 {
		hi = min(hi, client.Due(r.rate, to-r.shift))
	}
	return uint64(max(hi-lo, 0))
}

// dueIn counts the run's requests due in [from, to) of the aggregation's
// clock, up to the run's end: seqs 0..sent+unsent-1, the engine's own count
// of the due. The run's elapsed time also covers the answers to its last
// requests, and on a run stopped early (Ctrl-C) the time from the stop
// until then: the rate times it would count requests nobody was due to send.
func (r *runAgg) dueIn(from, to time.Duration) uint64 {
	if r.end < 0 {
		return 0
	}
	n := r.sent + max(r.unsent, 0)
	lo := min(client.Due(r.rate, min(from-r.shift, r.end)), n)
	hi := min(client.Due(r.rate, min(to-r.shift, r.end)), n)
	return uint64(max(hi-lo, 0))
}
