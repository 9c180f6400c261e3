package report

import (
	"math"
	"math/bits"

	"github.com/kaload/kaload/pkg/client"
)

// Per-interval latency is kept in a compact log-linear histogram: 8
// buckets per power of two of microseconds (a bucket is at most 12.5% wide),
// 240 for 1µs..1h, of which an interval holds the span it saw, made as wide
// as the previous interval's (latencies change slowly): 0.2-5 ms is 44
// buckets, 352 bytes instead of 960. The whole run's HDR
// histogram (1µs..1h, 3 digits) takes 188 KB (ByteSize, measured): one per
// interval would be 190 times this. The timeline chart needs the shape;
// the exact percentiles stay with the whole-run histograms.
const (
	latSubBits = 3
	latSub     = 1 << latSubBits
	latBuckets = latSub + (32-latSubBits)*latSub
)

type intervalLat struct {
	counts   []uint64 // buckets lo, lo+1, ...; the interval's latencies: their sum
	lo       int
	min, max uint32 // µs: a percentile is clamped into them
}

// latBucket maps µs to its bucket: below latSub one bucket per µs, above
// latSub sub-buckets per power of two.
func latBucket(us uint32) int {
	if us < latSub {
		return int(us)
	}
	e := bits.Len32(us) - 1 // us in [2^e, 2^(e+1))
	sub := int(us>>(e-latSubBits)) & (latSub - 1)
	return latSub + (e-latSubBits)*latSub + sub
}

// latBucketRange is the [lo, hi) of bucket i in µs.
func latBucketRange(i int) (lo, hi float64) {
	if i < latSub {
		return float64(i), float64(i + 1)
	}
	e := (i-latSub)/latSub + latSubBits
	sub := (i - latSub) % latSub
	w := math.Ldexp(1, e-latSubBits)
	lo = math.Ldexp(1, e) + float64(sub)*w
	return lo, lo + w
}

// record counts one latency if its bucket is in l.counts (small enough to
// be inlined in Aggregator.add); false: call recordWide. A new intervalLat's
// min is MaxUint32 (newIntervalLat), so the first latency sets it.
func (l *intervalLat) record(us uint32) bool {
	i := latBucket(us) - l.lo
	if uint(i) >= uint(len(l.counts)) {
		return false
	}
	l.counts[i]++
	l.min = min(l.min, us)
	l.max = max(l.max, us)
	return true
}

// recordWide widens l.counts to the bucket of us, with an octave to spare
// on the side it grows, and counts us.
func (l *intervalLat) recordWide(us uint32) {
	b := latBucket(us)
	lo, hi := b-latSub, b+1+latSub
	if len(l.counts) > 0 {
		lo, hi = min(l.lo, b), max(l.lo+len(l.counts), b+1)
		if b < l.lo {
			lo -= latSub
		} else {
			hi += latSub
		}
	}
	l.span(max(lo, 0), min(hi, latBuckets))
	l.record(us)
}

// span makes l.counts cover buckets [lo, hi), which hold its present ones.
func (l *intervalLat) span(lo, hi int) {
	c := make([]uint64, hi-lo)
	if len(l.counts) > 0 {
		copy(c[l.lo-lo:], l.counts)
	}
	l.counts, l.lo = c, lo
}

// quantile returns the q-quantile (0..1) in ms: the nearest-rank value's
// bucket middle, clamped into the interval's min and max.
func (l *intervalLat) quantile(q float64) float64 {
	var n uint64
	for _, c := range l.counts {
		n += c
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range l.counts {
		cum += c
		if cum >= rank {
			lo, hi := latBucketRange(l.lo + i)
			v := min(max((lo+hi)/2, float64(l.min)), float64(l.max))
			return round(v/1e3, 3)
		}
	}
	return round(float64(l.max)/1e3, 3)
}

// intervalConns counts connections first seen in an interval and
// connections closed after a request of that interval, by reason.
type intervalConns struct {
	opened uint64
	closed [8]uint64
}

// newIntervalLat returns the latency histogram of interval i, the one
// Aggregator.interval returned last, making it on its first answer as wide
// as the last one made.
func (a *Aggregator) newIntervalLat(i int) *intervalLat {
	if i >= len(a.tlLat) {
		a.tlLat = growSlice(a.tlLat, i)
	}
	if a.tlLat[i] == nil {
		l := &intervalLat{min: math.MaxUint32}
		if p := a.prevLat; p != nil {
			l.span(p.lo, p.lo+len(p.counts))
		}
		a.tlLat[i], a.prevLat = l, l
	}
	a.ivLat = a.tlLat[i]
	return a.ivLat
}

// addIntervalConns counts in interval i a connection first seen (newConn)
// and one closed after r.
func (a *Aggregator) addIntervalConns(i int, r *client.Result, newConn bool) {
	if !newConn && int(r.Close) >= len(intervalConns{}.closed) {
		return
	}
	if i >= len(a.tlConns) {
		a.tlConns = growSlice(a.tlConns, i)
	}
	c := &a.tlConns[i]
	if newConn {
		c.opened++
	}
	if r.Close != client.CloseNone && int(r.Close) < len(c.closed) {
		c.closed[r.Close]++
	}
}

// intervalFigures fills iv's latency and connection figures from interval k.
func (a *Aggregator) intervalFigures(k int, iv *Interval) {
	if k < len(a.tlLat) && a.tlLat[k] != nil {
		l := a.tlLat[k]
		p50, p99 := l.quantile(0.5), l.quantile(0.99)
		iv.LatencyP50, iv.LatencyP99 = &p50, &p99
	}
	if k < len(a.tlConns) {
		c := &a.tlConns[k]
		iv.Opened = c.opened
		for _, r := range client.CloseReasons() {
			if r != client.CloseNone && int(r) < len(c.closed) && c.closed[r] > 0 {
				if iv.Closed == nil {
					iv.Closed = map[string]uint64{}
				}
				iv.Closed[r.String()] = c.closed[r]
			}
		}
	}
}

// growSlice extends s so that index i is valid, amortising like append.
func growSlice[T any](s []T, i int) []T {
	if i < cap(s) {
		return s[:i+1]
	}
	n := make([]T, i+1, max(2*cap(s), i+1, 64))
	copy(n, s)
	return n
}
