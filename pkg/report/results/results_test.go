package results

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kaload/kaload/pkg/client"
)

func init() {
	// Other golden tests of this package may register -update too; share it.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata")
	}
}

func updateGolden() bool {
	g, ok := flag.Lookup("update").Value.(flag.Getter)
	return ok && g.Get() == true
}

// realistic makes results like a closed-model run's: conns connections,
// each recycled by the server after perConn requests (Connection: close),
// three backends, latencies of 0.2-5ms, status 200, 64-byte bodies, emitted
// in completion order as the engine does, with a rare error.
type realistic struct {
	rng      *rand.Rand
	conns    []simConn
	nextSeq  uint64
	nextConn uint64
	perConn  uint32
	totals   [3]int64
}

type simConn struct {
	id      uint64
	backend int
	reqs    uint32
	cur     client.Result
	end     time.Duration
}

var simBackends = [3]string{"web-7d9f8b6c5d-x2k4p", "web-7d9f8b6c5d-q8m1z", "web-7d9f8b6c5d-h5n7r"}

func newRealistic(seed uint64, conns int, perConn uint32) *realistic {
	g := &realistic{rng: rand.New(rand.NewPCG(seed, 1)), perConn: perConn, conns: make([]simConn, conns)}
	for i := range g.conns {
		g.dial(&g.conns[i])
		g.start(&g.conns[i], 0)
	}
	return g
}

func (g *realistic) dial(c *simConn) {
	g.nextConn++
	c.id, c.backend, c.reqs = g.nextConn, g.rng.IntN(3), 0
}

func (g *realistic) start(c *simConn, at time.Duration) {
	c.reqs++
	lat := time.Duration(200_000 + g.rng.Int64N(4_800_000))
	g.totals[c.backend] += 1 + g.rng.Int64N(3) // other clients hit the pod too
	c.cur = client.Result{
		Seq: g.nextSeq, Start: at, Latency: lat, Status: 200, Backend: simBackends[c.backend],
		Conn: c.id, ConnReq: c.reqs, Bytes: 64, ServerTotal: g.totals[c.backend],
	}
	if c.reqs == g.perConn {
		c.cur.Close = client.CloseServer
	}
	if g.rng.IntN(2000) == 0 {
		c.cur = client.Result{Seq: g.nextSeq, Start: at, Latency: lat, Backend: simBackends[c.backend],
			Conn: c.id, ConnReq: c.reqs, Close: client.CloseError, ServerTotal: -1,
			Err: "read tcp 10.0.0.1:40312->10.96.0.10:80: read: connection reset by peer"}
	}
	g.nextSeq++
	c.end = at + lat
}

func (g *realistic) next(r *client.Result) {
	c := &g.conns[0]
	for i := range g.conns {
		if g.conns[i].end < c.end {
			c = &g.conns[i]
		}
	}
	*r = c.cur
	if r.Close != client.CloseNone {
		g.dial(c)
	}
	g.start(c, c.end)
}

func testHeader() Header {
	return Header{
		Kaload: "v0.1.0-test", Label: "job-3", URL: "http://web.default.svc:8080/",
		Start:       time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.UTC),
		Args:        []string{"kaload", "hammer", "--url", "http://web.default.svc:8080/", "-c", "10"},
		Connections: 10, Rate: 1500.5, Duration: 30 * time.Second, Requests: 0,
		Meta: map[string]string{"backend-header": "Accept-Request-hostname", "ünïcode": "ポッド"},
	}
}

func sameHeader(t *testing.T, got, want Header) {
	t.Helper()
	if !got.Start.Equal(want.Start) {
		t.Errorf("header start = %v, want %v", got.Start, want.Start)
	}
	got.Start, want.Start = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("header = %+v, want %+v", got, want)
	}
}

// encode writes rs in form f; flushEvery > 0 seals a block (binary) every
// so many records. It also returns the byte offset at which each record ends.
func encode(t testing.TB, f Format, h Header, rs []client.Result, flushEvery int) ([]byte, []int) {
	t.Helper()
	return encodeUnsent(t, f, h, rs, flushEvery, -1)
}

// encodeUnsent is encode with the trailer's unsent count (-1: not counted).
func encodeUnsent(t testing.TB, f Format, h Header, rs []client.Result, flushEvery int, unsent int64) ([]byte, []int) {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, f, h)
	if err != nil {
		t.Fatal(err)
	}
	w.SetUnsent(unsent)
	w.now = func() time.Time { return time.Date(2026, 1, 2, 15, 5, 0, 0, time.UTC) }
	ends := make([]int, len(rs))
	for i := range rs {
		if err := w.Write(&rs[i]); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		pending := len(w.buf)
		if f == FormatBinary && pending == blockHeaderLen {
			pending = 0
		}
		ends[i] = out.Len() + pending
		w.mu.Unlock()
		if flushEvery > 0 && (i+1)%flushEvery == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), ends
}

// readAll reads every record; err is the error that ended the reading.
func readAll(t testing.TB, data []byte) (Header, []client.Result, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, err
	}
	var rs []client.Result
	for i := 0; ; i++ {
		var res client.Result
		if err := r.Read(&res); err != nil {
			if err2 := r.Read(&res); err2 != err {
				t.Fatalf("Read after %v returned %v; want the same error again", err, err2)
			}
			return r.Header(), rs, err
		}
		rs = append(rs, res)
		if i > 10_000_000 {
			t.Fatal("reader does not stop")
		}
	}
}

func realisticSlice(seed uint64, n int) []client.Result {
	g := newRealistic(seed, 10, 100)
	rs := make([]client.Result, n)
	for i := range rs {
		g.next(&rs[i])
	}
	return rs
}

func manyErrors(n int) []client.Result {
	rs := make([]client.Result, n)
	for i := range rs {
		// More distinct backends and texts than the writer's intern tables
		// hold, and old ones coming back after their slot was reused.
		k := i
		if i%3 == 0 {
			k = i / 7
		}
		rs[i] = client.Result{Seq: uint64(i), Backend: fmt.Sprintf("10.1.%d.%d:8080", k/250, k%250), Close: client.CloseError,
			ServerTotal: int64(3 * k), Err: fmt.Sprintf("dial tcp 10.0.0.1:%d: connect: connection refused", k)}
	}
	return rs
}

func TestCodecRoundTrip(t *testing.T) {
	var closes []client.Result
	for i, c := range append([]client.CloseReason{client.CloseNone}, client.CloseReasons()...) {
		closes = append(closes, client.Result{Seq: uint64(i), Start: time.Duration(i) * time.Millisecond, Latency: time.Millisecond,
			Status: 200, Backend: "pod-a", Conn: uint64(i + 1), ConnReq: 1, Close: c, Bytes: 64, ServerTotal: int64(i)})
	}
	big := strings.Repeat("é", 30_000) // just under the 64 KiB limit of strings
	tests := []struct {
		name string
		rs   []client.Result
	}{
		{"none", nil},
		{"all fields", []client.Result{{Seq: 7, Start: 1500 * time.Microsecond, Latency: 830 * time.Microsecond, Status: 503,
			Backend: "pod-b", Conn: 3, ConnReq: 9, Close: client.CloseGoAway, Bytes: 1234, ServerTotal: 99, Err: "status 503"}}},
		{"every close reason", closes},
		{"unicode backends", []client.Result{
			{Backend: "pod-ü-ポッド-🚀", Status: 200, ServerTotal: 1},
			{Seq: 1, Backend: "quote\" back\\slash\nnewline\ttab\x01ctl\u2028", Status: 200, ServerTotal: 5},
			{Seq: 2, Backend: "pod-ü-ポッド-🚀", Status: 200, ServerTotal: 2, Err: "エラー: \"x\""},
		}},
		{"empty values", []client.Result{{}, {ServerTotal: -1}, {Seq: 1, ServerTotal: 0}}},
		{"huge values", []client.Result{
			{Seq: math.MaxUint64, Start: maxOffset, Latency: maxOffset, Status: math.MaxInt32, Backend: big,
				Conn: math.MaxUint64, ConnReq: math.MaxUint32, Bytes: math.MaxInt64, ServerTotal: math.MaxInt64, Err: big + "!"},
			{Seq: 0, Start: 0, Latency: 0, Status: -1, Backend: big,
				Conn: 0, ConnReq: 0, Bytes: math.MinInt64, ServerTotal: math.MinInt64},
			{Seq: math.MaxUint64 / 2, Start: maxOffset, Latency: 0, Status: 0, Backend: "", Conn: 1 << 63, Bytes: -1, ServerTotal: -2},
		}},
		{"out of order", []client.Result{
			{Seq: 5, Start: 5 * time.Millisecond, Status: 200, Conn: 5, ServerTotal: 10},
			{Seq: 2, Start: 2 * time.Millisecond, Status: 200, Conn: 2, ServerTotal: 3},
			{Seq: 3, Start: 2 * time.Millisecond, Status: 200, Conn: 9, ServerTotal: 4},
		}},
		{"realistic", realisticSlice(1, 5000)},
		{"many distinct errors", manyErrors(2*internCap + 500)},
		{"send delays", []client.Result{
			{Seq: 0, Start: 0, Delay: 35 * time.Microsecond, Status: 200, ServerTotal: -1},
			{Seq: 1, Start: 5 * time.Millisecond, Delay: 1800 * time.Millisecond, Status: 200, ServerTotal: -1},
			{Seq: 2, Start: 10 * time.Millisecond, Status: 200, ServerTotal: -1},
			{Seq: 3, Start: 15 * time.Millisecond, Delay: time.Hour, Status: 200, ServerTotal: -1, CloseCode: 1012, Close: client.CloseServer},
			{Seq: 4, Start: 20 * time.Millisecond, Delay: 1, Status: 200, ServerTotal: -1, Kind: client.KindSocket, GRPCCode: 14},
		}},
	}
	for _, tt := range tests {
		for _, f := range []Format{FormatBinary, FormatJSONL} {
			t.Run(tt.name+"/"+f.String(), func(t *testing.T) {
				data, _ := encode(t, f, testHeader(), tt.rs, 0)
				h, got, err := readAll(t, data)
				if err != io.EOF {
					t.Fatalf("read: %v; want io.EOF", err)
				}
				sameHeader(t, h, testHeader())
				if len(got) != len(tt.rs) {
					t.Fatalf("read %d records, want %d", len(got), len(tt.rs))
				}
				for i := range got {
					if !reflect.DeepEqual(got[i], tt.rs[i]) {
						t.Fatalf("record %d:\n got %+v\nwant %+v", i, abbrev(got[i]), abbrev(tt.rs[i]))
					}
				}
				r, _ := NewReader(bytes.NewReader(data))
				var res client.Result
				for r.Read(&res) == nil {
				}
				tr, ok := r.Trailer()
				if !ok || tr.Records != int64(len(tt.rs)) || !tr.End.Equal(time.Date(2026, 1, 2, 15, 5, 0, 0, time.UTC)) || tr.Unsent != -1 {
					t.Errorf("trailer = %+v, %v", tr, ok)
				}
				if r.Format() != f {
					t.Errorf("detected %v, want %v", r.Format(), f)
				}
			})
		}
	}
}

func abbrev(r client.Result) client.Result {
	if len(r.Backend) > 40 {
		r.Backend = r.Backend[:40] + "..."
	}
	if len(r.Err) > 40 {
		r.Err = r.Err[:40] + "..."
	}
	return r
}

// TestCodecSize proves the binary form's budget: at most 24 bytes per
// request on average for a typical run.
func TestCodecSize(t *testing.T) {
	const n = 100_000
	g := newRealistic(42, 10, 100)
	var out bytes.Buffer
	w, err := NewWriter(&out, FormatBinary, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	var res client.Result
	for range n {
		g.next(&res)
		if err := w.Write(&res); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	per := float64(out.Len()) / n
	t.Logf("binary: %d bytes for %d results = %.2f bytes/result", out.Len(), n, per)
	if per > 24 {
		t.Errorf("%.2f bytes per result, budget is 24", per)
	}
	_, rs, err := readAll(t, out.Bytes())
	if err != io.EOF || len(rs) != n {
		t.Fatalf("read back %d records, err %v", len(rs), err)
	}
}

func smallFile() []client.Result {
	rs := smallFileV4()
	// Version 5: send delays (the open model's wait for a free slot).
	rs[6].Delay = 2 * time.Millisecond
	rs[16].Delay = 40 * time.Microsecond
	return rs
}

// smallUnsent is the golden files' trailer count of unsent requests.
const smallUnsent = 13267

// smallFileV4 is what the version 4 golden files hold.
func smallFileV4() []client.Result {
	rs := smallFileV3()
	// Version 4: gRPC status codes.
	rs[16].GRPCCode, rs[16].Err, rs[16].Close = 14, "rpc error: code = Unavailable desc = closing transport", client.CloseGoAway
	rs[17].GRPCCode, rs[17].Err = 5, "rpc error: code = NotFound desc = no such thing"
	return rs
}

// smallFileV3 is what the version 2 and 3 golden files hold.
func smallFileV3() []client.Result {
	rs := smallFileV1()
	// Version 2: WebSocket close codes and socket records.
	rs[12].Close, rs[12].CloseCode = client.CloseServer, 1012
	rs[13].Kind, rs[13].CloseCode, rs[13].Close, rs[13].Status = client.KindSocket, 1001, client.CloseServer, 101
	rs[14].Kind, rs[14].ConnReq = client.KindSocket, 0
	rs[15].Close, rs[15].CloseCode = client.CloseEOF, 1006
	return rs
}

// smallFileV1 is what the version 1 golden files hold.
func smallFileV1() []client.Result {
	rs := realisticSlice(7, 40)
	rs[3].Err, rs[3].Status, rs[3].Close = "timeout", 0, client.CloseError
	rs[9].Err, rs[9].Close = "timeout", client.CloseError
	rs[5].Backend = "pod-ü"
	return rs
}

// TestCodecTruncatedEveryOffset cuts a small file at every byte: the reader
// returns exactly the records that ended before the cut, then ErrTruncated.
func TestCodecTruncatedEveryOffset(t *testing.T) {
	rs := smallFile()
	for _, f := range []Format{FormatBinary, FormatJSONL} {
		for _, flushEvery := range []int{0, 1, 6} {
			rs := rs
			if f == FormatJSONL {
				if flushEvery > 0 {
					continue // flushing does not change the bytes of JSON Lines
				}
				rs = rs[:12] // reparsing JSON at every cut is slow under -race
			}
			t.Run(fmt.Sprintf("%v/flush%d", f, flushEvery), func(t *testing.T) {
				t.Parallel()
				data, ends := encode(t, f, testHeader(), rs, flushEvery)
				for cut := 0; cut < len(data); cut++ {
					want := 0
					for want < len(ends) && ends[want] <= cut {
						want++
					}
					_, got, err := readAll(t, data[:cut])
					switch {
					case cut == 0:
						if err == nil || !strings.Contains(err.Error(), "empty file, not a kaload results file") {
							t.Fatalf("cut at 0: %v", err)
						}
						continue
					case !errors.Is(err, ErrTruncated):
						t.Fatalf("cut at %d: err %v, want ErrTruncated", cut, err)
					case !strings.Contains(err.Error(), fmt.Sprintf("truncated at byte %d after %d records", cut, want)):
						t.Fatalf("cut at %d: message %q", cut, err)
					case len(got) != want:
						t.Fatalf("cut at %d: %d records, want %d", cut, len(got), want)
					}
					for i := range got {
						if !reflect.DeepEqual(got[i], rs[i]) {
							t.Fatalf("cut at %d: record %d = %+v, want %+v", cut, i, got[i], rs[i])
						}
					}
				}
			})
		}
	}
}

// TestCodecCorruptBinary flips every byte after the magic: the reader never
// panics and never returns the file as good; a flip inside a block is a
// CorruptError naming that block's offset.
func TestCodecCorruptBinary(t *testing.T) {
	rs := smallFile()
	data, ends := encode(t, FormatBinary, testHeader(), rs, 10)
	for off := len(binaryMagic) + 1; off < len(data); off++ {
		bad := bytes.Clone(data)
		bad[off] ^= 0x5a
		_, _, err := readAll(t, bad)
		var ce *CorruptError
		if !errors.As(err, &ce) && !errors.Is(err, ErrTruncated) {
			t.Fatalf("flip at %d: err %v; want a CorruptError or a truncation", off, err)
		}
	}
	// A byte inside the second records block: the error names that block.
	blockStart := ends[9] // records 10.. are in the second block
	bad := bytes.Clone(data)
	bad[blockStart+blockHeaderLen+3] ^= 0x01
	_, got, err := readAll(t, bad)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err %v, want *CorruptError", err)
	}
	if ce.Offset != int64(blockStart) || len(got) != 10 {
		t.Errorf("offset %d after %d records, want %d after 10", ce.Offset, len(got), blockStart)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("corrupt results file at byte %d: checksum mismatch", blockStart)) {
		t.Errorf("message %q", err)
	}
}

func TestCodecBadInput(t *testing.T) {
	rs := smallFile()
	bin, binEnds := encode(t, FormatBinary, testHeader(), rs, 0)
	jl, _ := encode(t, FormatJSONL, testHeader(), rs, 0)
	lines := strings.SplitAfter(string(jl), "\n")
	replaceLine := func(n int, s string) []byte { // 1-based
		l := append([]string(nil), lines...)
		l[n-1] = s
		return []byte(strings.Join(l, ""))
	}
	newer := bytes.Clone(bin)
	newer[len(binaryMagic)] = binaryVersion + 1
	tests := []struct {
		name    string
		data    []byte
		records int    // returned before the error
		want    string // in the message
		line    int    // CorruptError.Line, when > 0
	}{
		{"empty", nil, 0, "empty file, not a kaload results file", 0},
		{"text", []byte("hello\n"), 0, "not a kaload results file", 0},
		{"other json", []byte(`{"a":1}` + "\n"), 0, "not a kaload results file", 0},
		{"binary newer version", newer, 0, fmt.Sprintf("results file format version %d is newer than this kaload reads (up to %d): upgrade kaload", binaryVersion+1, binaryVersion), 0},
		{"jsonl newer version", []byte(fmt.Sprintf(`{"kaload_results":%d,"header":{"future":true}}`+"\n", jsonlVersion+1)), 0,
			fmt.Sprintf("results file format version %d is newer than this kaload reads (up to %d): upgrade kaload", jsonlVersion+1, jsonlVersion), 0},
		{"jsonl bad kind", replaceLine(4, `{"seq":2,"kind":"stream"}`+"\n"), 2, `line 4: unknown record kind "stream"`, 4},
		{"jsonl negative unsent", replaceLine(len(lines)-1, `{"kaload_trailer":{"records":40,"unsent":-1}}`+"\n"), len(rs), "trailer counts -1 unsent requests", len(lines) - 1},
		{"jsonl bad line", replaceLine(5, "{\"seq\": oops}\n"), 3, "corrupt results file at line 5: invalid character", 5},
		{"jsonl not an object", replaceLine(3, "[1,2]\n"), 1, "corrupt results file at line 3: not a JSON object", 3},
		{"jsonl bad close", replaceLine(4, `{"seq":2,"close":"slammed"}`+"\n"), 2, `line 4: unknown close reason "slammed"`, 4},
		{"jsonl second header", replaceLine(4, `{"kaload_results":1,"header":{}}`+"\n"), 2, "line 4: a second header line", 4},
		{"jsonl bad trailer count", replaceLine(len(lines)-1, `{"kaload_trailer":{"records":3}}`+"\n"), len(rs), "trailer counts 3 records but the file holds 40", len(lines) - 1},
		{"jsonl after trailer", append(bytes.Clone(jl), "{\"seq\":1}\n"...), len(rs), "data after the trailer", len(lines)},
		{"binary after trailer", append(bytes.Clone(bin), 'x'), len(rs), fmt.Sprintf("corrupt results file at byte %d: data after the trailer", len(bin)), 0},
		{"binary garbage block", append(bytes.Clone(bin[:binEnds[len(rs)-1]]), "Zgarbage-garbage"...), len(rs),
			fmt.Sprintf("corrupt results file at byte %d: unknown block kind 0x5a", binEnds[len(rs)-1]), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := readAll(t, tt.data)
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
			if len(got) != tt.records {
				t.Errorf("%d records before the error, want %d", len(got), tt.records)
			}
			if tt.line > 0 {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Line != tt.line {
					t.Errorf("err %#v, want a CorruptError at line %d", err, tt.line)
				}
			}
		})
	}
}

func TestCodecFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.kres")
	if _, err := OpenFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.kres")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(empty); err == nil || err.Error() != empty+": empty file, not a kaload results file" {
		t.Errorf("empty file: %v", err)
	}
	if _, err := CreateFile("-", testHeader()); err == nil {
		t.Error(`CreateFile("-") succeeded`)
	}
	if _, err := CreateFile(filepath.Join(dir, "no", "such", "dir.kres"), testHeader()); err == nil || !strings.Contains(err.Error(), "dir.kres") {
		t.Errorf("CreateFile in a missing dir: %v", err)
	}
	rs := smallFile()
	for _, name := range []string{"run.kres", "run.jsonl", "RUN.JSONL"} {
		path := filepath.Join(dir, name)
		w, err := CreateFile(path, testHeader())
		if err != nil {
			t.Fatal(err)
		}
		for i := range rs {
			if err := w.Write(&rs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if w.Count() != int64(len(rs)) {
			t.Errorf("Count = %d", w.Count())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err == nil {
			t.Error("second Close succeeded")
		}
		if err := w.Write(&rs[0]); err == nil {
			t.Error("Write after Close succeeded")
		}
		r, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if r.Format() != FormatForPath(path) {
			t.Errorf("%s: detected %v", name, r.Format())
		}
		n := 0
		var res client.Result
		for ; r.Read(&res) == nil; n++ {
		}
		if n != len(rs) {
			t.Errorf("%s: %d records", name, n)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		// A truncated file names itself.
		data, _ := os.ReadFile(path)
		os.WriteFile(path, data[:len(data)-3], 0o644)
		r, err = OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for err = r.Read(&res); err == nil; err = r.Read(&res) {
		}
		if !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), path+": results file truncated at byte ") {
			t.Errorf("%s: %v", name, err)
		}
		r.Close()
	}
}

// TestCodecClipsHugeStrings: a backend or error text over the limit is cut
// at a rune boundary, the same in both forms, instead of failing the run.
func TestCodecClipsHugeStrings(t *testing.T) {
	huge := "x" + strings.Repeat("ü", maxStringLen) // 2 bytes a rune: the limit falls inside one
	want := huge[:maxStringLen-1]
	for _, f := range []Format{FormatBinary, FormatJSONL} {
		data, _ := encode(t, f, testHeader(), []client.Result{{Backend: huge, Err: huge, ServerTotal: -1}}, 0)
		_, rs, err := readAll(t, data)
		if err != io.EOF || len(rs) != 1 {
			t.Fatalf("%v: %d records, %v", f, len(rs), err)
		}
		if rs[0].Backend != want || rs[0].Err != want {
			t.Errorf("%v: backend of %d bytes, err of %d bytes; want %d", f, len(rs[0].Backend), len(rs[0].Err), len(want))
		}
	}
}

func TestFormatForPath(t *testing.T) {
	for path, want := range map[string]Format{
		"-": FormatBinary, "run.kres": FormatBinary, "run": FormatBinary, "run.json": FormatBinary,
		"run.jsonl": FormatJSONL, "dir.jsonl/run.bin": FormatBinary, "/tmp/a.JsonL": FormatJSONL,
	} {
		if got := FormatForPath(path); got != want {
			t.Errorf("FormatForPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestCodecWriteInvalidClose(t *testing.T) {
	w, err := NewWriter(io.Discard, FormatBinary, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(&client.Result{Close: 200}); err == nil || !strings.Contains(err.Error(), "invalid close reason 200") {
		t.Errorf("err %v", err)
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestCodecWriteErrorSticks(t *testing.T) {
	w, err := NewWriter(&failingWriter{after: 1}, FormatBinary, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(&client.Result{})
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush: %v", err)
	}
	if err := w.Write(&client.Result{}); err == nil {
		t.Error("Write after a failed flush succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed flush succeeded")
	}
	if _, err := NewWriter(&failingWriter{}, FormatJSONL, testHeader()); err == nil {
		t.Error("NewWriter on a failing writer succeeded")
	}
	if _, err := NewWriter(io.Discard, FormatJSONL, Header{Rate: math.NaN()}); err == nil {
		t.Error("NewWriter with a NaN rate succeeded")
	}
}

func TestCodecConcurrentWriters(t *testing.T) {
	defer goleak.VerifyNone(t)
	const workers, each = 8, 1000
	for _, f := range []Format{FormatBinary, FormatJSONL} {
		var out syncBuffer
		w, err := NewWriter(&out, f, testHeader())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					seq := uint64(g*each + i)
					r := client.Result{Seq: seq, Start: time.Duration(seq), Status: 200, Backend: simBackends[i%3], Conn: uint64(g + 1), ConnReq: uint32(i + 1), ServerTotal: int64(seq)}
					if i%300 == 0 {
						r.Err = fmt.Sprintf("error %d", g)
						w.Flush()
					}
					if err := w.Write(&r); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if w.Count() != workers*each {
			t.Errorf("Count = %d", w.Count())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, rs, err := readAll(t, out.Bytes())
		if err != io.EOF || len(rs) != workers*each {
			t.Fatalf("%v: %d records, %v", f, len(rs), err)
		}
		seen := make([]bool, workers*each)
		for _, r := range rs {
			g := int(r.Conn - 1)
			if seen[r.Seq] || r.Start != time.Duration(r.Seq) || r.ServerTotal != int64(r.Seq) || r.Backend != simBackends[(int(r.Seq)-g*each)%3] {
				t.Fatalf("%v: bad or repeated record %+v", f, r)
			}
			seen[r.Seq] = true
		}
	}
}

// syncBuffer lets the test read what the flusher goroutine wrote.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// TestCodecPeriodicFlush writes one record and never calls Flush: it must
// reach the file on its own within a few seconds.
func TestCodecPeriodicFlush(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the parallel subtests, unlike defer
	for _, name := range []string{"run.kres", "run.jsonl"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), name)
			w, err := CreateFile(path, testHeader())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			want := client.Result{Seq: 0, Latency: time.Millisecond, Status: 200, Backend: "pod-a", Conn: 1, ConnReq: 1, ServerTotal: -1}
			if err := w.Write(&want); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				_, rs, err := readAll(t, data)
				if len(rs) == 1 {
					if !reflect.DeepEqual(rs[0], want) || !errors.Is(err, ErrTruncated) {
						t.Fatalf("read %+v, %v", rs[0], err)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("record not in the file after 3s (%d bytes, %v)", len(data), err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestCodecGoldenV1 reads the version 1 files the writer made before
// WebSocket fields existed: old files stay readable.
func TestCodecGoldenV1(t *testing.T) {
	for _, name := range []string{"small-v1.kres", "small-v1.jsonl"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "codec", name))
			if err != nil {
				t.Fatal(err)
			}
			_, back, err := readAll(t, data)
			if err != io.EOF || !reflect.DeepEqual(back, smallFileV1()) {
				t.Errorf("%s reads back %d records, %v", name, len(back), err)
			}
		})
	}
}

// TestCodecUnsentRoundTrip: the trailer's unsent count survives both forms,
// including "not counted".
func TestCodecUnsentRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatBinary, FormatJSONL} {
		for _, unsent := range []int64{-1, 0, 1, smallUnsent, math.MaxInt64} {
			data, _ := encodeUnsent(t, f, testHeader(), smallFile(), 7, unsent)
			r, err := NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var res client.Result
			for r.Read(&res) == nil {
			}
			if tr, ok := r.Trailer(); !ok || tr.Unsent != unsent || tr.Records != 40 {
				t.Errorf("%v unsent %d: trailer %+v, %v", f, unsent, tr, ok)
			}
		}
	}
}

// TestCodecGoldenV4 reads the version 4 files the writer made before send
// delays and unsent counts: no delays, unsent not counted.
func TestCodecGoldenV4(t *testing.T) {
	for _, name := range []string{"small-v4.kres", "small-v4.jsonl"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "codec", name))
			if err != nil {
				t.Fatal(err)
			}
			if v := versionOf(t, data); v != 4 {
				t.Fatalf("%s is version %d", name, v)
			}
			r, err := NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var back []client.Result
			var res client.Result
			for r.Read(&res) == nil {
				back = append(back, res)
			}
			if !reflect.DeepEqual(back, smallFileV4()) {
				t.Errorf("%s reads back %d records, not what was written", name, len(back))
			}
			if tr, ok := r.Trailer(); !ok || tr.Records != 40 || tr.Unsent != -1 {
				t.Errorf("trailer %+v, %v; want 40 records, unsent not counted", tr, ok)
			}
		})
	}
}

// TestCodecV4NoDelay: the delay bit was reserved in version 4, so a version
// 4 file that sets it is corrupt, not silently read as version 5.
func TestCodecV4NoDelay(t *testing.T) {
	rs := []client.Result{{Seq: 0, Delay: time.Millisecond, Status: 200, Backend: "a", Conn: 1, ConnReq: 1, ServerTotal: -1}}
	data, _ := encode(t, FormatBinary, testHeader(), rs, 0)
	data[len(binaryMagic)] = 4
	_, _, err := readAll(t, data)
	if err == nil || !strings.Contains(err.Error(), "a send delay in a version 4 file") {
		t.Fatalf("err %v, want the delay named", err)
	}
}

// TestCodecV1NoExtension: the extension flag was reserved in version 1, so
// a version 1 file that sets it is corrupt, not silently read as version 2.
func TestCodecV1NoExtension(t *testing.T) {
	rs := []client.Result{{Seq: 0, Status: 200, Backend: "a", Conn: 1, ConnReq: 1, ServerTotal: -1, CloseCode: 1012, Close: client.CloseServer}}
	data, _ := encode(t, FormatBinary, testHeader(), rs, 0)
	data[len(binaryMagic)] = 1
	_, _, err := readAll(t, data)
	if err == nil || !strings.Contains(err.Error(), "reserved flag set in record tag") {
		t.Fatalf("err %v, want the reserved flag named", err)
	}
}

// TestCodecGolden pins both forms byte for byte; these files also seed FuzzReader.
func TestCodecGolden(t *testing.T) {
	rs := smallFile()
	for _, name := range []string{"small.kres", "small.jsonl"} {
		t.Run(name, func(t *testing.T) {
			got, _ := encodeUnsent(t, FormatForPath(name), testHeader(), rs, 15, smallUnsent)
			path := filepath.Join("testdata", "codec", name)
			if updateGolden() {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what the writer makes now; a format change needs a version bump (go test -update rewrites it)", path)
			}
			// The stored file reads back as what was written, so old files stay readable.
			_, back, err := readAll(t, want)
			if err != io.EOF || !reflect.DeepEqual(back, rs) {
				t.Errorf("%s reads back %d records, %v", path, len(back), err)
			}
		})
	}
}

// TestCodecJQ checks that the JSON Lines form is what jq users expect.
func TestCodecJQ(t *testing.T) {
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Skip("jq not installed")
	}
	data, _ := encode(t, FormatJSONL, testHeader(), smallFile(), 0)
	cmd := exec.Command(jq, "-r", `select(.backend == "pod-ü") | "\(.seq) \(.conn) \(.server_total)"`)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	r := smallFile()[5]
	if want := fmt.Sprintf("%d %d %d\n", r.Seq, r.Conn, r.ServerTotal); string(out) != want {
		t.Errorf("jq says %q, want %q", out, want)
	}
	cmd = exec.Command(jq, "-s", `[.[] | select(.seq != null)] | length`)
	cmd.Stdin = bytes.NewReader(data)
	if out, err = cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "40" {
		t.Errorf("jq count: %q, %v", out, err)
	}
}

// TestJSONLFastPathTaken: the lines the Writer makes take the fast path
// (so its speed is real) and decode without allocating once interned.
func TestJSONLFastPathTaken(t *testing.T) {
	var d jsonlDecoder
	for _, r := range append(realisticSlice(8, 500), smallFile()...) {
		line := bytes.TrimSpace(appendJSONLResult(nil, &r))
		var got client.Result
		if !d.fastRecord(line, &got) || !reflect.DeepEqual(got, r) {
			t.Fatalf("fast path on %s: %+v", line, got)
		}
	}
	data, _ := encode(t, FormatJSONL, testHeader(), realisticSlice(9, 3000), 0)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var res client.Result
	for range 100 {
		r.Read(&res)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if err := r.Read(&res); err != nil {
			t.Fatal(err)
		}
	}); n > 0.01 {
		t.Errorf("%v allocations per JSON Lines record", n)
	}
}

// TestCodecInternBounded: a run with endless distinct errors and backends
// keeps the writer's tables at their cap (slots are reused) and still
// reads back exactly (TestCodecRoundTrip "many distinct errors").
func TestCodecInternBounded(t *testing.T) {
	w, err := NewWriter(io.Discard, FormatBinary, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rs := manyErrors(2*internCap + 500)
	for i := range rs {
		w.Write(&rs[i])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, in := range []*interner{&w.bin.backends, &w.bin.errs} {
		if len(in.slots) != internCap || len(in.index) != internCap || in.next == 0 {
			t.Errorf("interner: %d slots, %d indexed, next %d; want %d and reuse", len(in.slots), len(in.index), in.next, internCap)
		}
	}
	if len(w.bin.lastTotal) != internCap {
		t.Errorf("%d server totals kept", len(w.bin.lastTotal))
	}
}

// TestCodecV3NoGRPCCode: a version 3 file cannot carry a gRPC code; one
// that claims to is corrupt, not read as version 4.
func TestCodecV3NoGRPCCode(t *testing.T) {
	rs := []client.Result{{Seq: 0, Status: 200, Backend: "a", Conn: 1, ConnReq: 1, ServerTotal: -1, GRPCCode: 14, Err: "unavailable"}}
	data, _ := encode(t, FormatBinary, testHeader(), rs, 0)
	data[len(binaryMagic)] = 3
	_, _, err := readAll(t, data)
	if err == nil || !strings.Contains(err.Error(), "a gRPC code in a version 3 file") {
		t.Fatalf("err %v, want the gRPC code named", err)
	}
}
