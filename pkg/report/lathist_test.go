package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kaload/kaload/pkg/client"
)

// hdrIndex must be the library's index for every value: recorded both ways,
// each value a different number of times, the counts and every percentile
// must be the same.
func TestHDRIndexMatches(t *testing.T) {
	var vals []int64
	for v := int64(0); v <= 20000; v++ {
		vals = append(vals, v)
	}
	for s := 11; s < 32; s++ {
		for _, d := range []int64{-2, -1, 0, 1, 2, 3} {
			vals = append(vals, 1<<s+d)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		vals = append(vals, rng.Int64N(histMaxMicros+1))
	}
	vals = append(vals, histMaxMicros-1, histMaxMicros)
	ref := hdrhistogram.New(1, histMaxMicros, histSigFigs)
	var h latHist
	for i, v := range vals {
		k := int64(1 + i%5)
		if err := ref.RecordValues(v, k); err != nil {
			t.Fatal(err)
		}
		for range k {
			h.record(v)
		}
	}
	want := ref.Export().Counts
	if hdrCounts > len(want) {
		t.Fatalf("the library has %d counts, hdrCounts says %d", len(want), hdrCounts)
	}
	got := h.hdr().Export().Counts
	if !slices.Equal(got, want) {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("count %d: %d, want %d", i, got[i], want[i])
			}
		}
	}
	imp := h.hdr()
	if imp.TotalCount() != ref.TotalCount() {
		t.Fatalf("total %d, want %d", imp.TotalCount(), ref.TotalCount())
	}
	for q := 0.0; q <= 100; q += 0.25 {
		if g, w := imp.ValueAtQuantile(q), ref.ValueAtQuantile(q); g != w {
			t.Fatalf("p%v: %d, want %d", q, g, w)
		}
	}
	var empty latHist
	if empty.hdr() != nil {
		t.Fatal("an empty latHist built a histogram")
	}
	for i := range hdrCounts {
		if j := hdrIndex(hdrValue(i)); j != i {
			t.Fatalf("hdrIndex(hdrValue(%d) = %d) = %d", i, hdrValue(i), j)
		}
	}
}

// hdr ends its range at the highest value counted; the percentiles must be
// those of the full range whatever that value is.
func TestHDRShortRangeSamePercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, top := range []int64{0, 1, 2, 3, 2047, 2048, 2049, 4095, 4096, 5000, 1 << 20, 123456789, histMaxMicros} {
		ref := hdrhistogram.New(1, histMaxMicros, histSigFigs)
		var h latHist
		for i := range 3000 {
			v := top
			if i%3 != 0 {
				v = rng.Int64N(top + 1)
			}
			if err := ref.RecordValue(v); err != nil {
				t.Fatal(err)
			}
			h.record(v)
		}
		got := h.hdr()
		if got.TotalCount() != ref.TotalCount() {
			t.Fatalf("top %d: total %d, want %d", top, got.TotalCount(), ref.TotalCount())
		}
		for q := 0.0; q <= 100; q += 0.125 {
			if g, w := got.ValueAtQuantile(q), ref.ValueAtQuantile(q); g != w {
				t.Fatalf("top %d: p%v = %d, want %d", top, q, g, w)
			}
		}
	}
}

// Percentiles by hand: 1..1000 µs once each (exact below 2048 µs) give
// p50 0.5 ms, p90 0.9 ms, p99 0.99 ms; 99 answers of 3000 µs and one of
// 5001 µs on another backend: between 2048 and 4095 µs the buckets are 2 µs
// wide, so 3000 reads as its bucket's highest value, 3001 µs (p50 = p99 =
// 3.001 ms); the whole run's p99 is the 1089th of 1100 values, 3000 µs.
func TestLatencyPercentilesByHand(t *testing.T) {
	a := NewAggregator(Options{})
	seq := uint64(0)
	add := func(backend string, us int64) {
		a.addT(&client.Result{Seq: seq, Start: time.Duration(seq) * time.Millisecond, Latency: time.Duration(us) * time.Microsecond,
			Status: 200, Backend: backend, Conn: 1, ConnReq: uint32(seq + 1), ServerTotal: -1})
		seq++
	}
	for us := int64(1); us <= 1000; us++ {
		add("a", us)
	}
	for range 99 {
		add("b", 3000)
	}
	add("b", 5001)
	s := a.Summary()
	want := map[string][3]float64{"a": {0.5, 0.9, 0.99}, "b": {3.001, 3.001, 3.001}}
	for _, b := range s.Backends {
		w := want[b.Name]
		if b.Latency == nil || b.Latency.P50 != w[0] || b.Latency.P90 != w[1] || b.Latency.P99 != w[2] {
			t.Errorf("backend %s latency %+v, want p50/p90/p99 %v", b.Name, b.Latency, w)
		}
	}
	if l := s.Latency; l == nil || l.P50 != 0.55 || l.P99 != 3.001 || l.Max != 5.001 {
		t.Errorf("run latency %+v, want p50 0.55, p99 3.001, max 5.001", s.Latency)
	}
}

// An interval's latency counts hold only the span of buckets it saw (or
// its predecessor's), widened either way as latencies come; its quantiles
// must be those of the full 240 buckets (the reference here, as
// intervalLat was before).
func TestIntervalLatWindowSameQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, seq := range [][]uint32{
		{500},
		{0},
		{uint32(histMaxMicros)},
		{500, 1, uint32(histMaxMicros), 3, 700, 0},
		{200, 300, 5000, 100, 90000, 7},
	} {
		for range 3 {
			for _, span := range [][2]int{{0, 0}, {40, 90}, {0, latBuckets}, {100, 101}} {
				checkIntervalLat(t, seq, span[0], span[1])
			}
			seq = append(seq, uint32(rng.Int64N(histMaxMicros+1)), uint32(rng.IntN(10000)))
		}
	}
	var seq []uint32
	for range 5000 {
		seq = append(seq, uint32(rng.ExpFloat64()*2000))
	}
	checkIntervalLat(t, seq, 0, 0)
	checkIntervalLat(t, seq, 60, 80)
}

func checkIntervalLat(t *testing.T, seq []uint32, lo, hi int) {
	t.Helper()
	l := &intervalLat{min: math.MaxUint32}
	if hi > lo {
		l.span(lo, hi) // as newIntervalLat starts it: the previous one's span
	}
	var ref [latBuckets]uint64
	minUs, maxUs := uint32(math.MaxUint32), uint32(0)
	for _, us := range seq {
		if !l.record(us) {
			l.recordWide(us)
		}
		ref[latBucket(us)]++
		minUs, maxUs = min(minUs, us), max(maxUs, us)
	}
	for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 1} {
		rank := max(uint64(math.Ceil(q*float64(len(seq)))), 1)
		var cum uint64
		want := round(float64(maxUs)/1e3, 3)
		for i, c := range ref {
			if cum += c; cum >= rank {
				a, b := latBucketRange(i)
				want = round(min(max((a+b)/2, float64(minUs)), float64(maxUs))/1e3, 3)
				break
			}
		}
		if got := l.quantile(q); got != want {
			t.Fatalf("%v (span %d..%d): q%v = %v, want %v", seq, lo, hi, q, got, want)
		}
	}
}
