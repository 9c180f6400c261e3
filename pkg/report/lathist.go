package report

import (
	"math/bits"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latHist counts latencies in µs by the index an HDR histogram of
// 1µs..histMaxMicros at histSigFigs digits gives them, and builds that HDR
// histogram (hdr) with exactly these counts when a summary needs its
// percentiles. Recording is an index computation and an increment instead of
// a call into the HDR histogram (measured: 58 of the 830 instructions a
// record cost), and the counts grow with the highest latency seen: a backend
// answering within 10 ms holds 33 KB instead of the HDR's 188 KB.
type latHist struct {
	counts []int64
	n      uint64
}

const (
	// An HDR histogram with 3 significant digits has 2048 sub-buckets per
	// bucket (the smallest power of two >= 2*10^3); the lowest value 1 makes
	// its unit magnitude 0. TestHDRIndexMatches holds these to the library.
	hdrSubHalfMag = 10
	hdrSubMask    = 1<<(hdrSubHalfMag+1) - 1
)

// hdrIndex is the HDR histogram's countsIndexFor(us), for 0 <= us <= histMaxMicros.
func hdrIndex(us int64) int {
	b := bits.Len64(uint64(us)|hdrSubMask) - (hdrSubHalfMag + 1) // the bucket
	return (b+1)<<hdrSubHalfMag + int(us>>b) - 1<<hdrSubHalfMag
}

// hdrCounts is how many counts hold every index up to histMaxMicros's (the
// library's are a few hundred more: its last bucket is whole).
var hdrCounts = hdrIndex(histMaxMicros) + 1

// record counts one latency, 0 <= us <= histMaxMicros.
func (h *latHist) record(us int64) {
	i := hdrIndex(us)
	if i >= len(h.counts) {
		h.grow(i)
	}
	h.counts[i]++
	h.n++
}

func (h *latHist) grow(i int) {
	n := make([]int64, min(max(2*len(h.counts), i+1, 1024), hdrCounts))
	copy(n, h.counts)
	h.counts = n
}

// add adds o's counts to h's.
func (h *latHist) add(o *latHist) {
	if len(o.counts) > len(h.counts) {
		h.grow(len(o.counts) - 1)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// hdr returns the HDR histogram holding h's counts; nil when h is empty.
// Its range ends at the highest value counted, not at histMaxMicros: an HDR
// histogram's buckets and percentiles depend only on its lowest value and
// digits (TestHDRIndexMatches compares them with the full range's), and its
// counts are then a fraction of the full range's 188 KB.
func (h *latHist) hdr() *hdrhistogram.Histogram {
	if h.n == 0 {
		return nil
	}
	last := len(h.counts) - 1
	for last > 0 && h.counts[last] == 0 {
		last--
	}
	return hdrhistogram.Import(&hdrhistogram.Snapshot{
		LowestTrackableValue:  1,
		HighestTrackableValue: max(hdrValue(last), 2), // the library's least
		SignificantFigures:    histSigFigs,
		Counts:                h.counts[:last+1],
	})
}

// hdrValue is the lowest value of HDR index i: hdrIndex(hdrValue(i)) == i.
func hdrValue(i int) int64 {
	b := i>>hdrSubHalfMag - 1
	sub := i&(1<<hdrSubHalfMag-1) + 1<<hdrSubHalfMag
	if b < 0 {
		b, sub = 0, sub-1<<hdrSubHalfMag
	}
	return int64(sub) << b
}
