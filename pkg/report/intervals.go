package report

import (
	"math"
	"math/bits"

	"github.com/kaload/kaload/pkg/client"
)

// Per-interval latency is kept in a compact log-linear histogram: 8
// buckets per power of two of microseconds (a bucket is at most 12.5% wide),
// 240 counters for 1µs..1h, about 1 KB an interval. The whole run's HDR
// histogram (1µs..1h, 3 digits) takes 188 KB (ByteSize, measured): one per
// interval would be 190 times this. The timeline chart needs the shape;
// the exact percentiles stay with the whole-run histograms.
const (
	latSubBits = 3
	latSub     = 1 << latSubBits
	latBuckets = latSub + (32-latSubBits)*latSub
)

type intervalLat struct {
	counts   [latBuckets]uint32
	n        uint64
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

// record counts one latency; a new intervalLat's min is MaxUint32
// (newIntervalLat), so the first latency sets it.
func (l *intervalLat) record(us uint32) {
	l.min = min(l.min, us)
	l.max = max(l.max, us)
	l.n++
	if c := &l.counts[latBucket(us)]; *c < math.MaxUint32 {
		*c++
	}
}

// quantile returns the q-quantile (0..1) in ms: the nearest-rank value's
// bucket middle, clamped into the interval's min and max.
func (l *intervalLat) quantile(q float64) float64 {
	rank := uint64(math.Ceil(q * float64(l.n)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range l.counts {
		cum += uint64(c)
		if cum >= rank {
			lo, hi := latBucketRange(i)
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
// Aggregator.interval returned last, making it on its first answer.
func (a *Aggregator) newIntervalLat(i int) *intervalLat {
	if i >= len(a.tlLat) {
		a.tlLat = growSlice(a.tlLat, i)
	}
	if a.tlLat[i] == nil {
		a.tlLat[i] = &intervalLat{min: math.MaxUint32}
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
