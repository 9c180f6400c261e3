package report

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

// FuzzAggregate feeds arbitrary results (as a corrupt but decodable file
// could hold) and checks that nothing panics, every figure stays consistent
// and every format renders.
func FuzzAggregate(f *testing.F) {
	f.Add(int64(0), int64(time.Millisecond), 200, "pod-a", uint64(1), uint32(1), uint8(0), int64(5), "", int64(0), int64(0))
	f.Add(int64(-5), int64(-1), 0, "", uint64(0), uint32(0), uint8(200), int64(-1), "dial: refused", int64(time.Second), int64(time.Nanosecond))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), 503, "pod-b|<x>", uint64(math.MaxUint64), uint32(math.MaxUint32), uint8(4), int64(math.MinInt64), "timeout", int64(-3), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, start, latency int64, status int, backend string, conn uint64, connReq uint32, closeR uint8, total int64, errS string, from, interval int64) {
		opts := Options{From: time.Duration(max(from, 0)), Interval: time.Duration(interval)}
		a := NewAggregator(opts)
		var added uint64
		for i := range 3 {
			r := client.Result{Start: time.Duration(start) + time.Duration(i)*time.Millisecond, Latency: time.Duration(latency),
				Status: status, Backend: backend, Conn: conn + uint64(i%2), ConnReq: connReq, Close: client.CloseReason(closeR),
				ServerTotal: total, Err: errS}
			if r.Start >= opts.From {
				added++
			}
			a.addT(&r)
			if i == 1 {
				backend = "other"
			}
		}
		s := a.Summary()
		if s.Requests != added || s.Errors > s.Requests {
			t.Fatalf("requests %d (want %d), errors %d", s.Requests, added, s.Errors)
		}
		var shares float64
		var sum uint64
		for _, b := range s.Backends {
			shares += b.Share
			sum += b.Requests
		}
		if sum+s.Unattributed != s.Requests || (len(s.Backends) > 0 && math.Abs(shares-1) > 1e-5) {
			t.Fatalf("backends hold %d + %d unattributed of %d requests, shares sum to %v", sum, s.Unattributed, s.Requests, shares)
		}
		// Every metric evaluates without a placeholder: a value or NO DATA with a reason.
		for _, m := range metrics {
			r := Expectation{Expr: m.name, Metric: m.name, Arg: backend, Op: ">", Value: 0.5}.Evaluate(s)
			if (r.Status == StatusNoData) != (r.Reason != "") || r.Status == StatusNoData && (r.OK || r.Value != nil) {
				t.Fatalf("%s: %+v", m.name, r)
			}
		}
		formats := Formats
		if len(s.Timeline.Intervals) > 5000 {
			// A huge timeline (tiny interval) is correct but slow to print
			// in full; the table draws it downsampled.
			formats = []string{"table", "markdown", "html"}
		}
		for _, format := range formats {
			if err := Render(&bytes.Buffer{}, &Report{Summary: s}, format); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
		}
		if err := WriteJUnit(&bytes.Buffer{}, &Report{Summary: s}); err != nil {
			t.Fatal(err)
		}
	})
}
