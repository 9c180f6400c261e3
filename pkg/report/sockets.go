package report

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

// SocketSummary is the WebSocket view of a run: how many sockets each
// backend holds over time. Kubernetes pins a socket to the pod it first
// reached, so this, not the message share, shows whether a new pod gets work.
type SocketSummary struct {
	Opened           uint64 `json:"opened"`
	FailedHandshakes uint64 `json:"failed_handshakes"`
	// HeldAtEnd counts the sockets open at the end of the window.
	HeldAtEnd uint64 `json:"held_at_end"`
	// Closed counts sockets that ended in the window by close status
	// ("1012", "1001", "1006", ...; "none" when no status was seen).
	Closed   map[string]uint64 `json:"closed"`
	Backends []SocketBackend   `json:"backends"`
	// MinShare is the smallest backend's share of the sockets held at the
	// end; nil when fewer than two backends are known (NoData says why).
	MinShare  *float64          `json:"min_share"`
	NoData    string            `json:"no_data,omitempty"`
	Timeline  SocketTimeline    `json:"timeline"`
	Rebalance []SocketRebalance `json:"rebalance"`
}

// SocketBackend is one backend's sockets.
type SocketBackend struct {
	Name      string  `json:"name"`
	Opened    uint64  `json:"opened"`
	HeldAtEnd uint64  `json:"held_at_end"`
	Share     float64 `json:"share"` // of the sockets held at the end
	Peak      uint64  `json:"peak"`  // most held at an interval's end
	// FirstOpenSeconds is nil for a known backend that never got a socket.
	FirstOpenSeconds *float64 `json:"first_open_seconds"`
}

// SocketTimeline has, per interval, the sockets each backend held at its end.
type SocketTimeline struct {
	IntervalSeconds float64          `json:"interval_seconds"`
	Backends        []string         `json:"backends"`
	Intervals       []SocketInterval `json:"intervals"`
}

// SocketInterval is one interval: Held follows SocketTimeline.Backends.
type SocketInterval struct {
	StartSeconds float64           `json:"start_seconds"`
	Held         []uint64          `json:"held"`
	Opened       uint64            `json:"opened"`
	Closed       map[string]uint64 `json:"closed,omitempty"` // by close status
}

// SocketRebalance tells how a backend whose first socket came after the
// first interval fared: the share of held sockets it reached.
type SocketRebalance struct {
	Backend         string  `json:"backend"`
	AppearedSeconds float64 `json:"appeared_seconds"`
	// FairShareAfterSeconds: from appearing to the end of the first interval
	// where it held 80% of 1/backends of the sockets; nil: never.
	FairShareAfterSeconds *float64 `json:"fair_share_after_seconds"`
	HeldAtEnd             uint64   `json:"held_at_end"`
	TotalAtEnd            uint64   `json:"total_at_end"`
	FairShare             float64  `json:"fair_share"`
}

// socketAgg holds the socket records of an aggregation.
type socketAgg struct {
	seen     bool
	failed   uint64
	backends []*socketBackendAgg
	byName   map[string]*socketBackendAgg
	closed   map[uint16]uint64
	tlClosed []map[uint16]uint64
	lastIv   int           // last interval any socket record touched
	maxEnd   time.Duration // latest close (or end of holding) seen
}

type socketBackendAgg struct {
	name      string
	opened    uint64
	heldAtEnd uint64
	first     time.Duration
	tlOpened  []uint64
	heldDiff  []int64 // +1 where a socket starts being held at interval ends, -1 where it stops
	openTail  []int64 // sockets held from an interval to the end of the data
}

// socketKey names a close status in JSON and tables.
func socketKey(code uint16) string {
	if code == 0 {
		return "none"
	}
	return strconv.Itoa(int(code))
}

// addSocket folds one KindSocket record: a socket held over [Start,
// Start+Latency), or until the end when it was open when the run ended.
func (a *Aggregator) addSocket(run *runAgg, r *client.Result) {
	a.started = true
	s := &a.sockets
	opened := r.Start + run.shift
	closed := opened + r.Latency
	open := r.Close == client.CloseNone && r.Err == ""
	from, to := a.opts.From, a.opts.To
	if to > 0 && opened >= to || !open && closed < from {
		return // entirely outside the window
	}
	s.seen = true
	s.maxEnd = max(s.maxEnd, closed)
	if to > 0 {
		s.maxEnd = min(s.maxEnd, to)
	}
	if r.Err != "" {
		s.failed++
		return
	}
	if s.byName == nil {
		s.byName = map[string]*socketBackendAgg{}
		s.closed = map[uint16]uint64{}
	}
	b := s.byName[r.Backend]
	if b == nil {
		b = &socketBackendAgg{name: strings.Clone(r.Backend), first: opened}
		s.byName[b.name] = b
		s.backends = append(s.backends, b)
	}
	iv := func(t time.Duration) int {
		if t < from {
			return 0
		}
		return int(min(int64((t-from)/a.opts.Interval), maxIntervals-1))
	}
	ko := iv(opened)
	if opened >= from {
		b.opened++
		b.first = min(b.first, opened)
		b.tlOpened = growTo(b.tlOpened, ko)
		b.tlOpened[ko]++
	}
	endsInWindow := !open && (to == 0 || closed < to)
	if endsInWindow {
		kc := iv(closed)
		s.closed[r.CloseCode]++
		for len(s.tlClosed) <= kc {
			s.tlClosed = append(s.tlClosed, nil)
		}
		if s.tlClosed[kc] == nil {
			s.tlClosed[kc] = map[uint16]uint64{}
		}
		s.tlClosed[kc][r.CloseCode]++
		s.lastIv = max(s.lastIv, kc)
		if kc > ko {
			b.heldDiff = growDiff(b.heldDiff, kc)
			b.heldDiff[ko]++
			b.heldDiff[kc]--
		}
	} else {
		b.heldAtEnd++
		b.openTail = growDiff(b.openTail, ko)
		b.openTail[ko]++
	}
	// The last interval is the one the data ends in: a socket open at the
	// run's end was held until then, not into the next interval.
	s.lastIv = max(s.lastIv, ko, iv(closed-1))
}

func growTo(s []uint64, i int) []uint64 {
	if i < len(s) {
		return s
	}
	return grow(s, i)
}

func growDiff(s []int64, i int) []int64 {
	for len(s) <= i {
		s = append(s, 0)
	}
	return s
}

// socketSummary builds the WebSocket view; nil when no socket record was added.
func (a *Aggregator) socketSummary() *SocketSummary {
	s := &a.sockets
	if !s.seen {
		return nil
	}
	out := &SocketSummary{FailedHandshakes: s.failed, Closed: map[string]uint64{}, Backends: []SocketBackend{}, Rebalance: []SocketRebalance{}}
	for code, n := range s.closed {
		out.Closed[socketKey(code)] += n
	}
	bs := slices.Clone(s.backends)
	sort.SliceStable(bs, func(i, j int) bool {
		if bs[i].first != bs[j].first {
			return bs[i].first < bs[j].first
		}
		return bs[i].name < bs[j].name
	})
	for _, name := range a.opts.Backends {
		if _, ok := s.byName[name]; !ok && name != "" {
			bs = append(bs, &socketBackendAgg{name: name, first: -1})
		}
	}
	n := s.lastIv + 1
	if len(bs) == 0 {
		n = 0
	}
	// A last interval the data covers for less than MinCoverage (the run
	// ended just after it began) is not shown on its own: the held counts
	// at the end are in the totals.
	if n > 0 {
		startLast := a.opts.From + time.Duration(n-1)*a.opts.Interval
		if float64(s.maxEnd-startLast) < MinCoverage*float64(a.opts.Interval) {
			n--
		}
	}
	// held[i][k]: sockets backend i held at the end of interval k.
	held := make([][]uint64, len(bs))
	for i, b := range bs {
		held[i] = make([]uint64, n)
		var cur, tail int64
		for k := range n {
			if k < len(b.heldDiff) {
				cur += b.heldDiff[k]
			}
			if k < len(b.openTail) {
				tail += b.openTail[k]
			}
			held[i][k] = uint64(max(cur+tail, 0))
		}
	}
	var total uint64
	for _, b := range bs {
		total += b.heldAtEnd
		out.Opened += b.opened
	}
	out.HeldAtEnd = total
	for i, b := range bs {
		sb := SocketBackend{Name: b.name, Opened: b.opened, HeldAtEnd: b.heldAtEnd, Share: round(ratio(float64(b.heldAtEnd), float64(total)), 6)}
		for _, h := range held[i] {
			sb.Peak = max(sb.Peak, h)
		}
		if b.first >= 0 && b.opened > 0 {
			f := round(seconds(b.first), 6)
			sb.FirstOpenSeconds = &f
		}
		out.Backends = append(out.Backends, sb)
	}
	switch {
	case total == 0:
		out.NoData = "no socket was open at the end of the window"
	case len(bs) < 2:
		out.NoData = "only 1 backend holds sockets; idle pods are invisible without --watch or --backends"
	default:
		m := math.Inf(1)
		for _, b := range out.Backends {
			m = min(m, b.Share)
		}
		out.MinShare = &m
	}
	out.Timeline = SocketTimeline{IntervalSeconds: seconds(a.opts.Interval), Backends: make([]string, len(bs)), Intervals: make([]SocketInterval, 0, n)}
	for i, b := range bs {
		out.Timeline.Backends[i] = b.name
	}
	for k := range n {
		iv := SocketInterval{StartSeconds: round(seconds(a.opts.From+time.Duration(k)*a.opts.Interval), 6), Held: make([]uint64, len(bs))}
		for i, b := range bs {
			iv.Held[i] = held[i][k]
			if k < len(b.tlOpened) {
				iv.Opened += b.tlOpened[k]
			}
		}
		if k < len(s.tlClosed) && len(s.tlClosed[k]) > 0 {
			iv.Closed = map[string]uint64{}
			for code, c := range s.tlClosed[k] {
				iv.Closed[socketKey(code)] += c
			}
		}
		out.Timeline.Intervals = append(out.Timeline.Intervals, iv)
	}
	out.Rebalance = socketRebalance(bs, held, a.opts, total)
	return out
}

// socketRebalance judges every backend whose first socket opened after the
// first interval in which any socket was held.
func socketRebalance(bs []*socketBackendAgg, held [][]uint64, opts Options, total uint64) []SocketRebalance {
	out := []SocketRebalance{}
	if len(bs) < 2 {
		return out
	}
	firstOpen := time.Duration(math.MaxInt64)
	for _, b := range bs {
		if b.opened > 0 {
			firstOpen = min(firstOpen, b.first)
		}
	}
	for i, b := range bs {
		if b.opened == 0 || int64((b.first-opts.From)/opts.Interval) <= int64((firstOpen-opts.From)/opts.Interval) {
			continue
		}
		r := SocketRebalance{Backend: b.name, AppearedSeconds: round(seconds(b.first), 6), HeldAtEnd: b.heldAtEnd, TotalAtEnd: total}
		r.FairShare = round(1/float64(len(bs)), 6)
		for k := int((b.first - opts.From) / opts.Interval); k < len(held[i]) && r.FairShareAfterSeconds == nil; k++ {
			var sum uint64
			for j := range bs {
				sum += held[j][k]
			}
			if sum > 0 && float64(held[i][k]) >= FairFraction*float64(sum)/float64(len(bs)) {
				d := round(seconds(opts.From+time.Duration(k+1)*opts.Interval-b.first), 6)
				r.FairShareAfterSeconds = &d
			}
		}
		out = append(out, r)
	}
	return out
}

// socketVerdict names the pattern: who holds the sockets, and who holds none.
func socketVerdict(s *SocketSummary, endSeconds float64) string {
	// endSeconds is when the data ends: "N s after it appeared" counts to it.
	if s == nil {
		return ""
	}
	var parts []string
	if s.HeldAtEnd == 0 {
		parts = append(parts, fmt.Sprintf("sockets: %d opened, none open at the end", s.Opened))
	} else {
		var hs []string
		for _, b := range s.Backends {
			hs = append(hs, fmt.Sprintf("%s %s", b.Name, fmtCount(b.HeldAtEnd)))
		}
		parts = append(parts, fmt.Sprintf("sockets held at the end: %s of %s", strings.Join(hs, ", "), fmtCount(s.HeldAtEnd)))
	}
	stuck := false
	for _, b := range s.Backends {
		if b.HeldAtEnd == 0 && s.HeldAtEnd > 0 {
			stuck = true
			if b.FirstOpenSeconds == nil {
				parts = append(parts, fmt.Sprintf("%s holds 0 of %s sockets", b.Name, fmtCount(s.HeldAtEnd)))
			}
		}
	}
	for _, r := range s.Rebalance {
		after := endSeconds - r.AppearedSeconds
		if r.FairShareAfterSeconds != nil {
			parts = append(parts, fmt.Sprintf("%s appeared at %.1fs and held its fair share of sockets after %.1fs", r.Backend, r.AppearedSeconds, *r.FairShareAfterSeconds))
		} else {
			stuck = true
			parts = append(parts, fmt.Sprintf("%s holds %s of %s sockets %.0f s after it appeared (fair share %.0f%%)",
				r.Backend, fmtCount(r.HeldAtEnd), fmtCount(r.TotalAtEnd), after, 100*r.FairShare))
		}
	}
	v := strings.Join(parts, "; ")
	if stuck {
		v += ": sockets stay pinned to the pods they first reached"
	}
	return v
}

// socketOutcome classifies the socket view by the verdict rules.
func socketOutcome(s *SocketSummary) Outcome {
	if s == nil || s.HeldAtEnd == 0 {
		return OutcomeNoData
	}
	for _, b := range s.Backends {
		if b.HeldAtEnd == 0 {
			return OutcomeStuck
		}
	}
	for _, r := range s.Rebalance {
		if r.FairShareAfterSeconds == nil {
			return OutcomeStuck
		}
	}
	if len(s.Rebalance) > 0 {
		return OutcomeRebalanced
	}
	if s.MinShare == nil {
		return OutcomeNoData
	}
	if *s.MinShare >= FairFraction/float64(len(s.Backends)) {
		return OutcomeEven
	}
	return OutcomeUneven
}

// fmtCount writes n with thousands separators: 2,000.
func fmtCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// maxSocketRows bounds the sockets-over-time table; longer runs show every
// k-th interval (the held counts are at each shown interval's end).
const maxSocketRows = 30

// writeSockets renders the WebSocket view: per backend, then over time.
func writeSockets(ew *errWriter, s *SocketSummary) {
	if s == nil {
		return
	}
	ew.printf("\nSockets: %d opened, %d held at the end, %d failed handshakes; closed by status: %s\n",
		s.Opened, s.HeldAtEnd, s.FailedHandshakes, countsLine(s.Closed))
	rows := make([][]string, 0, len(s.Backends))
	for _, b := range s.Backends {
		rows = append(rows, []string{b.Name, u(b.Opened), u(b.HeldAtEnd), pct(b.Share), u(b.Peak), secsOr(b.FirstOpenSeconds)})
	}
	if ew.err == nil && len(rows) > 0 {
		ew.err = writeTable(ew, []string{"Backend", "Opened", "Held at end", "Share", "Peak", "First open"}, rows, 1)
	}
	if s.MinShare == nil && s.NoData != "" {
		ew.printf("Socket fairness: no data: %s\n", s.NoData)
	}
	iv := s.Timeline.Intervals
	if len(iv) == 0 {
		return
	}
	step := (len(iv) + maxSocketRows - 1) / maxSocketRows
	header := []string{"Interval"}
	for _, b := range s.Timeline.Backends {
		header = append(header, b)
	}
	header = append(header, "Opened", "Closed")
	rows = rows[:0]
	for k := 0; k < len(iv); k += step {
		// Opened and closed sum over the rows' intervals; held is at the end.
		last := min(k+step, len(iv)) - 1
		var opened uint64
		closed := map[string]uint64{}
		for j := k; j <= last; j++ {
			opened += iv[j].Opened
			for c, n := range iv[j].Closed {
				closed[c] += n
			}
		}
		row := []string{secs(iv[k].StartSeconds) + "-" + secs(iv[last].StartSeconds+s.Timeline.IntervalSeconds)}
		for _, h := range iv[last].Held {
			row = append(row, u(h))
		}
		cl := "-"
		if len(closed) > 0 {
			cl = countsLine(closed)
		}
		rows = append(rows, append(row, u(opened), cl))
	}
	ew.printf("Sockets held at each interval's end:\n")
	if ew.err == nil {
		ew.err = writeTable(ew, header, rows, 1)
	}
}
