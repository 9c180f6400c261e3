package report

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

// synthetic fills rs with a 10-minute run at ~16k req/s over 64 keep-alive
// connections spread on the given number of backends, recycled every 100
// requests: consecutive results come from different connections, as they do
// from the engine, so the backend changes on most records.
func synthetic(n, backends int) []client.Result {
	names := make([]string, backends)
	for i := range names {
		names[i] = "pod-" + strconv.Itoa(i)
	}
	const conns = 64
	connID := make([]uint64, conns)
	connReq := make([]uint32, conns)
	next := uint64(0)
	rs := make([]client.Result, n)
	for i := range rs {
		c := i % conns
		if connID[c] == 0 || connReq[c] == 100 {
			next++
			connID[c], connReq[c] = next, 0
		}
		connReq[c]++
		r := &rs[i]
		*r = client.Result{
			Seq: uint64(i), Start: time.Duration(i) * 60 * time.Microsecond,
			Latency: time.Duration(200+i*7919%5000) * time.Microsecond,
			Status:  200, Backend: names[int(connID[c])%backends], Conn: connID[c], ConnReq: connReq[c],
			Bytes: 2, ServerTotal: int64(i),
		}
		if connReq[c] == 100 {
			r.Close = client.CloseServer
		}
		if i%1000 == 999 {
			r.Status = 503
		}
	}
	return rs
}

// BenchmarkAggregate measures Add alone: one op is one result. In the
// failing case every other result failed: a reset connection or a 503.
func BenchmarkAggregate(b *testing.B) {
	for _, c := range []struct {
		backends int
		failing  bool
	}{{3, false}, {40, false}, {3, true}} {
		name := strconv.Itoa(c.backends) + "-backends"
		if c.failing {
			name += "-failing"
		}
		b.Run(name, func(b *testing.B) {
			rs := synthetic(1<<16, c.backends)
			for i := range rs {
				if c.failing && i%2 == 1 {
					if i%4 == 1 {
						rs[i].Err = "read tcp 127.0.0.1:4711->127.0.0.1:8080: read: connection reset by peer"
					} else {
						rs[i].Status = 503
					}
				}
			}
			a := NewAggregator(Options{})
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				r := &rs[i&(len(rs)-1)]
				// Keep offsets growing as in a long run (10M results ≈ 10 minutes).
				r.Start = time.Duration(i) * 60 * time.Microsecond
				a.addT(r)
			}
			b.StopTimer()
			reportCPU(b, cpu)
			if s := a.Summary(); s.Requests != uint64(b.N) {
				b.Fatalf("requests %d, want %d", s.Requests, b.N)
			}
		})
	}
}

// BenchmarkDecodeAggregate is what `kaload report` does per record: decode a
// binary results file and fold every record in. One op is one record; the
// budget is 2s per 10M records, 200 ns/op.
func BenchmarkDecodeAggregate(b *testing.B) {
	const n = 1 << 20
	var file bytes.Buffer
	w, err := results.NewWriter(&file, results.FormatBinary, results.Header{Kaload: "bench", Start: t0, Connections: 64})
	if err != nil {
		b.Fatal(err)
	}
	for i, r := range synthetic(n, 3) {
		r.Start = time.Duration(i) * 60 * time.Microsecond
		if err := w.Write(&r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(file.Len() / n))
	b.ReportAllocs()
	b.ResetTimer()
	var r client.Result
	cpu := processCPU()
	for done := 0; done < b.N; {
		rd, err := results.NewReader(bytes.NewReader(file.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		a := NewAggregator(Options{})
		run, err := a.AddRun(rd.Header())
		if err != nil {
			b.Fatal(err)
		}
		for ; done < b.N; done++ {
			err := rd.Read(&r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			run.Add(&r)
		}
		a.Summary()
	}
	b.StopTimer()
	reportCPU(b, cpu)
}

// reportCPU adds cpu-ns/op: process CPU time per op since start, which a
// loaded machine inflates far less than wall time (it includes GC).
func reportCPU(b *testing.B, start time.Duration) {
	if d := processCPU() - start; d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// TestAggregateBoundedMemory feeds 2M results and checks the heap did not
// grow with them: the aggregator keeps no per-request state.
func TestAggregateBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds 2M results")
	}
	rs := synthetic(1<<14, 3)
	a := NewAggregator(Options{})
	var before, after runtime.MemStats
	feed := func(from, to int) {
		for i := from; i < to; i++ {
			r := rs[i&(len(rs)-1)]
			r.Start = time.Duration(i) * 60 * time.Microsecond
			r.Conn += uint64(i/len(rs)) * 1000 // fresh connections as the run goes on
			a.addT(&r)
		}
	}
	feed(0, 1<<20)
	runtime.GC()
	runtime.ReadMemStats(&before)
	feed(1<<20, 2<<20)
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Another 1M results over 63s more: a few hundred bytes of timeline and
	// a connection bitset of at most a few KB; allow 1 MB of noise.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Errorf("heap grew by %d bytes for 1M more results", grown)
	}
	if s := a.Summary(); s.Requests != 2<<20 {
		t.Errorf("requests = %d", s.Requests)
	}
}

// BenchmarkSummary: an hour at 1s intervals with 40 backends, half of them
// added mid-run. Summary's cost must stay linear in intervals × backends.
func BenchmarkSummary(b *testing.B) {
	a := NewAggregator(Options{})
	for k := range 3600 {
		for i := range 40 {
			if i >= 20 && k < 1800+i*10 {
				continue
			}
			a.addT(&client.Result{Start: time.Duration(k) * time.Second, Status: 200, Backend: "pod-" + strconv.Itoa(i),
				Conn: uint64(i + 1), ConnReq: 1, ServerTotal: -1})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if s := a.Summary(); len(s.Rebalance) != 20 {
			b.Fatalf("rebalance = %d entries", len(s.Rebalance))
		}
	}
}
