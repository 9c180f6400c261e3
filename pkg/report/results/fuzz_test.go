package results

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kaload/kaload/pkg/client"
)

// FuzzReader feeds arbitrary bytes to the reader: it must never panic, never
// return more records than the bytes could hold, end only with io.EOF, a
// truncation or a CorruptError, and whatever it accepts as a complete file
// must survive being written and read again.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "codec", "*"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)*2/3])
	}
	for _, form := range []Format{FormatBinary, FormatJSONL} {
		data, _ := encode(f, form, testHeader(), manyErrors(50), 7)
		f.Add(data)
		data, _ = encode(f, form, Header{}, []client.Result{{}}, 0)
		f.Add(data)
	}
	for _, form := range []Format{FormatBinary, FormatJSONL} {
		f.Add(encodeWithEvents(f, form, smallFile()[:5], testEvents()))
	}
	f.Add([]byte("KALOAD\x00\x02"))
	f.Add([]byte(`{"kaload_results":1,"header":{}}` + "\n" + `{"seq":1,"close":"goaway","server_total":-1}` + "\n"))
	// The limits: offsets and latencies in 0..maxOffset, strings up to 64 KiB.
	f.Add(craftBinary([]client.Result{{Start: 1}, {Seq: 1, Start: -5}, {Seq: 2, Latency: 1 << 62}}))
	f.Add(craftBinary([]client.Result{{Start: maxOffset, Latency: maxOffset}}))
	f.Add([]byte(`{"kaload_results":1,"header":{}}` + "\n" + `{"seq":0,"start_ns":-1,"latency_ns":4611686018427387904}` + "\n"))
	f.Add([]byte(`{"kaload_results":1,"header":{}}` + "\n" + `{"seq":0,"backend":"` + strings.Repeat("b", maxStringLen+1) + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if r != nil {
				t.Fatal("NewReader returned a reader and an error")
			}
			return
		}
		var rs []client.Result
		for {
			var res client.Result
			err = r.Read(&res)
			if err != nil {
				break
			}
			if checkTimes(res.Start, res.Delay, res.Latency) != nil || len(res.Backend) > maxStringLen || len(res.Err) > maxStringLen {
				t.Fatalf("record %d passed the limits: start %d latency %d backend %d bytes err %d bytes",
					len(rs), res.Start, res.Latency, len(res.Backend), len(res.Err))
			}
			rs = append(rs, res)
			if len(rs) > len(data) {
				t.Fatalf("%d records from %d bytes", len(rs), len(data))
			}
		}
		var ce *CorruptError
		switch {
		case err == io.EOF:
		case errors.Is(err, ErrTruncated), errors.As(err, &ce):
			return
		default:
			t.Fatalf("Read ended with %T %v", err, err)
		}
		if tr, ok := r.Trailer(); !ok || tr.Records != int64(len(rs)) {
			t.Fatalf("complete file with trailer %+v %v and %d records", tr, ok, len(rs))
		}
		h := r.Header()
		evs := r.Events()
		again, _ := encodeLenient(t, r.Format(), h, rs, evs)
		if again == nil {
			return
		}
		rd, err := NewReader(bytes.NewReader(again))
		if err != nil {
			t.Fatal(err)
		}
		var back []client.Result
		for {
			var res client.Result
			if err = rd.Read(&res); err != nil {
				break
			}
			back = append(back, res)
		}
		if err != io.EOF || len(back) != len(rs) {
			t.Fatalf("re-encoded file reads back %d of %d records: %v", len(back), len(rs), err)
		}
		if got := rd.Events(); len(got) != len(evs) || len(evs) > 0 && !reflect.DeepEqual(got, evs) {
			t.Fatalf("re-encoded file reads back events %+v, want %+v", got, evs)
		}
		for i := range back {
			if !reflect.DeepEqual(back[i], rs[i]) {
				t.Fatalf("record %d: re-encoded %+v, read %+v", i, back[i], rs[i])
			}
		}
	})
}

// encodeLenient is encode for headers the writer may refuse (e.g. a rate of
// 1e400 decoded as +Inf); it returns nil then.
func encodeLenient(t *testing.T, f Format, h Header, rs []client.Result, evs []Event) ([]byte, error) {
	var out bytes.Buffer
	w, err := NewWriter(&out, f, h)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if err := w.WriteEvent(e); err != nil {
			t.Fatalf("writing event %+v that was read: %v", e, err)
		}
	}
	for i := range rs {
		if err := w.Write(&rs[i]); err != nil {
			t.Fatalf("writing record %d that was read: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), nil
}

// FuzzJSONLFast holds the JSON Lines fast path to encoding/json: whatever
// line it accepts, the slow path accepts with the same meaning.
func FuzzJSONLFast(f *testing.F) {
	for _, r := range append(smallFile(), manyErrors(5)...) {
		f.Add(bytes.TrimSpace(appendJSONLResult(nil, &r)))
	}
	for _, s := range []string{
		`{"seq":-0}`, `{"seq":18446744073709551615,"start_ns":-9223372036854775808}`, `{"seq":18446744073709551616}`,
		`{"start_ns":9223372036854775808}`, `{"seq":1,"seq":2}`, `{"status":1e3}`, `{"backend":"a\"b"}`,
		`{"conn_req":4294967296}`, `{"close":"goaway","err":"ÿ"}`, `{"seq":01}`, `{"seq":1,}`, `{"seq" :1}`,
		`{"start_ns":-1}`, `{"latency_ns":4611686018427387904}`, `{"start_ns":31622400000000000,"latency_ns":31622400000000000}`,
		`{"start_ns":31622400000000001}`, `{"backend":"` + strings.Repeat("b", maxStringLen+1) + `"}`,
		`{"err":"` + strings.Repeat("e", maxStringLen) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var d jsonlDecoder
		var fast, slow client.Result
		if !d.fastRecord(line, &fast) {
			return
		}
		tr, ev, err := slowRecord(line, &slow)
		if err != nil || tr != nil || ev != nil {
			t.Fatalf("fast path took %q, slow path: %v %v %v", line, tr, ev, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", line, fast, slow)
		}
	})
}
