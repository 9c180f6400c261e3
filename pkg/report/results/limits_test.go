package results

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

// craftBinary lays out a complete binary file around records the Writer
// would refuse, as a crafted or corrupt file could hold them.
func craftBinary(rs []client.Result) []byte {
	file := appendBinaryHeader(nil, []byte(`{"kaload":"crafted"}`))
	var e binEncoder
	e.reset()
	block := make([]byte, blockHeaderLen)
	for i := range rs {
		block = e.appendResult(block, &rs[i])
	}
	file = append(file, sealBlock(block, blockRecords)...)
	return append(file, appendBinaryTrailer(make([]byte, blockHeaderLen), int64(len(rs)), time.Unix(0, 0), -1)...)
}

// Impossible values are refused with the record's position; before, a
// negative start offset was dropped by the report without a word (trailer
// 3, report 2) and a latency of 2^62 ns made duration_seconds 4.6e9.
func TestImpossibleValuesRefused(t *testing.T) {
	ok := client.Result{Seq: 0, Start: time.Millisecond, Latency: time.Millisecond, Status: 200, Backend: "pod-a", ServerTotal: -1}
	long := strings.Repeat("n", maxStringLen+1)
	for _, tc := range []struct {
		name    string
		bad     client.Result
		jsonl   string // the bad record's line, as a crafted file would hold it
		binary  bool   // the binary form can hold it (strings it cannot: the writer clips)
		wantErr string
	}{
		{"negative start", client.Result{Seq: 1, Start: -5, Status: 200, ServerTotal: -1},
			`{"seq":1,"start_ns":-5,"latency_ns":0,"status":200}`, true, "start offset -5 ns outside"},
		{"latency 2^62", client.Result{Seq: 1, Start: 0, Latency: 1 << 62, Status: 200, ServerTotal: -1},
			`{"seq":1,"start_ns":0,"latency_ns":4611686018427387904,"status":200}`, true, "latency 4611686018427387904 ns outside"},
		{"negative latency", client.Result{Seq: 1, Latency: -1, Status: 200, ServerTotal: -1},
			`{"seq":1,"start_ns":0,"latency_ns":-1,"status":200}`, true, "latency -1 ns outside"},
		{"negative send delay", client.Result{Seq: 1, Delay: -3, Status: 200, ServerTotal: -1},
			`{"seq":1,"start_ns":0,"delay_ns":-3,"latency_ns":0,"status":200}`, true, "send delay -3 ns outside"},
		{"start past a year", client.Result{Seq: 1, Start: maxOffset + 1, Status: 200, ServerTotal: -1},
			`{"seq":1,"start_ns":31622400000000001,"latency_ns":0}`, true, "start offset 31622400000000001 ns outside"},
		{"backend name over 64 KiB", client.Result{},
			`{"seq":1,"start_ns":0,"latency_ns":0,"backend":"` + long + `"}`, false, "backend name of 65537 bytes exceeds the limit of 65536"},
		{"error text over 64 KiB", client.Result{},
			`{"seq":1,"start_ns":0,"latency_ns":0,"err":"` + long + `"}`, false, "error text of 65537 bytes exceeds the limit of 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// JSON Lines: the error names line 3 (header, a good record, the bad one).
			good := string(appendJSONLResult(nil, &ok))
			file := `{"kaload_results":1,"header":{}}` + "\n" + good + tc.jsonl + "\n" + `{"kaload_trailer":{"records":2}}` + "\n"
			_, rs, err := readAll(t, []byte(file))
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Line != 3 || !strings.Contains(err.Error(), tc.wantErr) || len(rs) != 1 {
				t.Errorf("jsonl: %d records, then %v; want line 3: %s", len(rs), err, tc.wantErr)
			}
			if !tc.binary {
				return
			}
			// Binary: the error names the bad record's byte offset.
			data := craftBinary([]client.Result{ok, tc.bad, ok})
			_, rs, err = readAll(t, data)
			if !errors.As(err, &ce) || ce.Offset <= 0 || int(ce.Offset) >= len(data) || !strings.Contains(err.Error(), "record 1: "+tc.wantErr) || len(rs) != 1 {
				t.Errorf("binary: %d records, then %v; want a byte offset and record 1: %s", len(rs), err, tc.wantErr)
			}
			// The Writer refuses it too, so what is written reads back.
			w, err := NewWriter(&bytes.Buffer{}, FormatBinary, Header{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.Write(&tc.bad); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Writer.Write: %v, want %s", err, tc.wantErr)
			}
			if err := w.Write(&ok); err != nil {
				t.Errorf("a refused record must not break the Writer: %v", err)
			}
		})
	}
}

// The JSON Lines reader interns at most 4 MB of strings: 4096 distinct
// 64 KiB names would otherwise stay in memory (256 MB) for the whole file.
func TestJSONLInternBounded(t *testing.T) {
	var d jsonlDecoder
	name := []byte(strings.Repeat("x", maxStringLen))
	for i := range 200 {
		name[0], name[1] = byte('a'+i%26), byte('a'+i/26)
		d.intern(name)
	}
	if d.internBytes > maxInternBytes || len(d.strs) != maxInternBytes/maxStringLen {
		t.Errorf("interned %d strings, %d bytes; bound %d bytes", len(d.strs), d.internBytes, maxInternBytes)
	}
}
