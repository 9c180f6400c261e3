package results

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/kaload/kaload/pkg/client"
)

const benchRecords = 1_000_000

var benchFiles = map[Format][]byte{}
var benchFilesMu sync.Mutex

// benchFile is a realistic results file of 1M records, made once per form.
func benchFile(b *testing.B, f Format) []byte {
	benchFilesMu.Lock()
	defer benchFilesMu.Unlock()
	if data, ok := benchFiles[f]; ok {
		return data
	}
	var out bytes.Buffer
	w, err := NewWriter(&out, f, testHeader())
	if err != nil {
		b.Fatal(err)
	}
	g := newRealistic(99, 10, 100)
	var res client.Result
	for range benchRecords {
		g.next(&res)
		if err := w.Write(&res); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	benchFiles[f] = out.Bytes()
	return out.Bytes()
}

// benchRead reads records of a 1M-record file; one op is one record, so
// ns/op is the decoding cost per request and allocs/op should be 0.
func benchRead(b *testing.B, f Format) {
	data := benchFile(b, f)
	b.SetBytes(int64(len(data) / benchRecords))
	b.ReportAllocs()
	var r *Reader
	var res client.Result
	var sum int64
	b.ResetTimer()
	cpu0 := codecCPUTime()
	for i := 0; i < b.N; i++ {
		if r == nil {
			var err error
			if r, err = NewReader(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Read(&res); err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			r = nil
			i--
			continue
		}
		sum += int64(res.Latency)
	}
	b.StopTimer()
	// The machine is shared: CPU time says more than wall time.
	b.ReportMetric(float64(codecCPUTime()-cpu0)/float64(b.N), "cpu-ns/record")
	if sum == 0 {
		b.Fatal("nothing read")
	}
}

func BenchmarkReadBinary(b *testing.B) { benchRead(b, FormatBinary) }
func BenchmarkReadJSONL(b *testing.B)  { benchRead(b, FormatJSONL) }

// BenchmarkWrite encodes realistic results to io.Discard; one op is one record.
func BenchmarkWrite(b *testing.B) {
	rs := realisticSlice(5, 1<<16)
	for _, f := range []Format{FormatBinary, FormatJSONL} {
		b.Run(f.String(), func(b *testing.B) {
			var cw countingWriter
			w, err := NewWriter(&cw, f, testHeader())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := codecCPUTime()
			for i := 0; b.Loop(); i++ {
				if err := w.Write(&rs[i&(len(rs)-1)]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(codecCPUTime()-cpu0)/float64(b.N), "cpu-ns/record")
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(cw.n)/float64(b.N), "bytes/record")
		})
	}
}

// BenchmarkWriteParallel shows the cost of the Writer's lock under contention.
func BenchmarkWriteParallel(b *testing.B) {
	rs := realisticSlice(5, 1<<16)
	w, err := NewWriter(io.Discard, FormatBinary, testHeader())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if err := w.Write(&rs[i&(len(rs)-1)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	w.Close()
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestReadBinaryNoAllocs: once the backend names are interned, decoding a
// record allocates nothing.
func TestReadBinaryNoAllocs(t *testing.T) {
	g := newRealistic(3, 10, 100)
	var out bytes.Buffer
	w, _ := NewWriter(&out, FormatBinary, testHeader())
	var res client.Result
	for range 5000 {
		g.next(&res)
		res.Err, res.Status = "", 200 // the rare error would be interned mid-run
		w.Write(&res)
	}
	w.Close()
	r, err := NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		r.Read(&res)
	}
	if n := testing.AllocsPerRun(2000, func() {
		if err := r.Read(&res); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

// BenchmarkJSONLLine compares the JSON Lines fast path with encoding/json on
// the same lines, side by side; one op is one line.
func BenchmarkJSONLLine(b *testing.B) {
	rs := realisticSlice(6, 1024)
	lines := make([][]byte, len(rs))
	for i := range rs {
		lines[i] = bytes.TrimSpace(appendJSONLResult(nil, &rs[i]))
	}
	b.Run("fast", func(b *testing.B) {
		var d jsonlDecoder
		var res client.Result
		b.ReportAllocs()
		cpu0 := codecCPUTime()
		for i := 0; b.Loop(); i++ {
			if !d.fastRecord(lines[i&1023], &res) {
				b.Fatal("fast path refused a line")
			}
		}
		b.ReportMetric(float64(codecCPUTime()-cpu0)/float64(b.N), "cpu-ns/record")
	})
	b.Run("encoding-json", func(b *testing.B) {
		var res client.Result
		b.ReportAllocs()
		cpu0 := codecCPUTime()
		for i := 0; b.Loop(); i++ {
			if _, _, err := slowRecord(lines[i&1023], &res); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(codecCPUTime()-cpu0)/float64(b.N), "cpu-ns/record")
	})
}
