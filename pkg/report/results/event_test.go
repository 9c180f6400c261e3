package results

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

func testEvents() []Event {
	return []Event{
		{T: 0, Kind: EventHPA, Object: "hpa/web", Detail: "desired=2 current=2 metric=cpu:40%/50%"},
		{T: 4 * time.Second, Kind: EventHPA, Object: "hpa/web", Detail: "desired=4 current=2 metric=cpu:95%/50%"},
		{T: 4*time.Second + 12*time.Millisecond, Kind: EventPodCreated, Object: "pod/web-7d4f-ü", Detail: "backend=web-7d4f-ü"},
		{T: 6 * time.Second, Kind: EventPodReady, Object: "pod/web-7d4f-ü", Detail: "ip=10.0.0.7 \"quoted\"\n\ttab"},
		{T: -time.Millisecond, Kind: EventWatchLost, Object: "watch/pods"},
		{T: math.MaxInt64, Kind: "future.kind"},
	}
}

// encodeWithEvents writes rs with an event before every other record.
func encodeWithEvents(t testing.TB, f Format, rs []client.Result, evs []Event) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, f, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return time.Date(2026, 1, 2, 15, 5, 0, 0, time.UTC) }
	ei := 0
	for i := range rs {
		if i%2 == 0 && ei < len(evs) {
			if err := w.WriteEvent(evs[ei]); err != nil {
				t.Fatal(err)
			}
			ei++
		}
		if err := w.Write(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for ; ei < len(evs); ei++ {
		if err := w.WriteEvent(evs[ei]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func readEvents(t *testing.T, data []byte) ([]client.Result, []Event, *Reader, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, nil, err
	}
	var rs []client.Result
	for {
		var res client.Result
		if err := r.Read(&res); err != nil {
			return rs, r.Events(), r, err
		}
		rs = append(rs, res)
	}
}

func TestCodecEventsRoundTrip(t *testing.T) {
	big := strings.Repeat("é", maxStringLen) // clipped to the limit at a rune boundary
	tests := []struct {
		name string
		rs   []client.Result
		evs  []Event
	}{
		{"events only", nil, testEvents()},
		{"interleaved", smallFile(), testEvents()},
		{"many", realisticSlice(3, 3000), func() []Event {
			var evs []Event
			for i := range 2000 {
				evs = append(evs, Event{T: time.Duration(i) * time.Millisecond, Kind: EventEndpointReady,
					Object: fmt.Sprintf("pod/web-%d", i), Detail: fmt.Sprintf("ip=10.0.%d.%d ready=true serving=true terminating=false", i/250, i%250)})
			}
			return evs
		}()},
	}
	for _, tt := range tests {
		for _, f := range []Format{FormatBinary, FormatJSONL} {
			t.Run(tt.name+"/"+f.String(), func(t *testing.T) {
				data := encodeWithEvents(t, f, tt.rs, tt.evs)
				rs, evs, r, err := readEvents(t, data)
				if err != io.EOF {
					t.Fatalf("read: %v", err)
				}
				if len(rs) != len(tt.rs) || (len(rs) > 0 && !reflect.DeepEqual(rs, tt.rs)) {
					t.Fatalf("results differ: %d read, %d written", len(rs), len(tt.rs))
				}
				if !reflect.DeepEqual(evs, tt.evs) {
					t.Fatalf("events:\n got %+v\nwant %+v", evs, tt.evs)
				}
				if tr, _ := r.Trailer(); tr.Records != int64(len(tt.rs)) {
					t.Errorf("trailer counts %d, want the %d results only", tr.Records, len(tt.rs))
				}
			})
		}
	}
	t.Run("clipped", func(t *testing.T) {
		for _, f := range []Format{FormatBinary, FormatJSONL} {
			data := encodeWithEvents(t, f, nil, []Event{{Kind: "k", Object: big, Detail: big + "x"}})
			_, evs, _, err := readEvents(t, data)
			if err != io.EOF || len(evs) != 1 || evs[0].Object != clipString(big) || evs[0].Detail != clipString(big) {
				t.Fatalf("%v: %d events, %v", f, len(evs), err)
			}
		}
	})
}

// TestCodecGoldenV2 reads the version 2 and 3 files the writer made before
// events and gRPC codes existed: old files stay readable, with no events.
func TestCodecGoldenV2(t *testing.T) {
	for _, name := range []string{"small-v2.kres", "small-v2.jsonl", "small-v3.kres", "small-v3.jsonl"} {
		data, err := os.ReadFile(filepath.Join("testdata", "codec", name))
		if err != nil {
			t.Fatal(err)
		}
		wantV := 2
		if strings.Contains(name, "v3") {
			wantV = 3
		}
		if v := versionOf(t, data); v != wantV {
			t.Fatalf("%s is version %d", name, v)
		}
		rs, evs, _, err := readEvents(t, data)
		if err != io.EOF || !reflect.DeepEqual(rs, smallFileV3()) || len(evs) != 0 {
			t.Errorf("%s: %d records, %d events, %v", name, len(rs), len(evs), err)
		}
	}
}

// versionOf returns the format version a file declares.
func versionOf(t *testing.T, data []byte) int {
	if bytes.HasPrefix(data, []byte(binaryMagic)) {
		return int(data[len(binaryMagic)])
	}
	var v int
	if _, err := fmt.Sscanf(string(data), `{"kaload_results":%d`, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCodecEventsGolden pins the event encoding of both forms byte for byte.
func TestCodecEventsGolden(t *testing.T) {
	rs := smallFile()[:6]
	for _, name := range []string{"events.kres", "events.jsonl"} {
		t.Run(name, func(t *testing.T) {
			got := encodeWithEvents(t, FormatForPath(name), rs, testEvents())
			wantV := map[Format]int{FormatBinary: binaryVersion, FormatJSONL: jsonlVersion}[FormatForPath(name)]
			if v := versionOf(t, got); v != wantV || v < eventsVersion || v < jsonlEventsVersion {
				t.Fatalf("a file with events is version %d", v)
			}
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
		})
	}
}

func TestCodecEventsBad(t *testing.T) {
	v2jl, err := os.ReadFile(filepath.Join("testdata", "codec", "small-v2.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(v2jl), "\n")
	withLine := func(head string, line string) []byte {
		l := append([]string{head}, lines[1:]...)
		l[3] = line + "\n"
		return []byte(strings.Join(l, ""))
	}
	head := func(v int) string {
		return strings.Replace(lines[0], `"kaload_results":2`, fmt.Sprintf(`"kaload_results":%d`, v), 1)
	}
	// A binary version 2 file whose records carry an event item.
	v2bin := encodeWithEvents(t, FormatBinary, smallFile()[:2], []Event{{Kind: "k"}})
	v2bin[len(binaryMagic)] = 2
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"event line in version 1", withLine(head(1), `{"event":{"t_ns":1,"kind":"pod.ready"}}`), "line 4: an event line in a version 1 file"},
		{"event line in version 2", withLine(head(2), `{"event":{"t_ns":1,"kind":"pod.ready"}}`), "line 4: an event line in a version 2 file"},
		{"event without kind", withLine(head(jsonlVersion), `{"event":{"t_ns":1,"object":"pod/a"}}`), `line 4: event without "kind"`},
		{"event without time", withLine(head(jsonlVersion), `{"event":{"kind":"pod.ready"}}`), `line 4: event without "t_ns"`},
		{"event bad time", withLine(head(jsonlVersion), `{"event":{"t_ns":"soon","kind":"pod.ready"}}`), "line 4: json: cannot unmarshal"},
		{"binary event in version 2", v2bin, "unknown item tag 0x03"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := readEvents(t, tt.data)
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want a CorruptError containing %q", err, tt.want)
			}
		})
	}

	w, err := NewWriter(io.Discard, FormatBinary, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(Event{T: time.Second}); err == nil {
		t.Error("an event without a kind was written")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(Event{Kind: "k"}); err == nil {
		t.Error("WriteEvent after Close succeeded")
	}
}

// TestCodecEventsTruncated: a file cut short keeps the events before the cut.
func TestCodecEventsTruncated(t *testing.T) {
	for _, f := range []Format{FormatBinary, FormatJSONL} {
		data := encodeWithEvents(t, f, smallFile()[:4], testEvents()[:3])
		full := len(testEvents()[:3])
		prev := 0
		for cut := range len(data) {
			_, evs, _, err := readEvents(t, data[:cut])
			if err == nil || err == io.EOF {
				t.Fatalf("%v cut at %d: %v", f, cut, err)
			}
			if len(evs) < prev || len(evs) > full || len(evs) > 0 && !reflect.DeepEqual(evs, testEvents()[:len(evs)]) {
				t.Fatalf("%v cut at %d: %d events %+v", f, cut, len(evs), evs)
			}
			prev = len(evs)
		}
		if prev != full {
			t.Errorf("%v: the last cut kept %d of %d events", f, prev, full)
		}
	}
}

func TestEventField(t *testing.T) {
	tests := []struct {
		detail, key, want string
		ok                bool
	}{
		{"desired=4 current=2 metric=cpu:95%/50%", "current", "2", true},
		{"desired=4 current=2", "metric", "", false},
		{"backend=web-1", "backend", "web-1", true},
		{"  ip=10.0.0.7   ready=true ", "ready", "true", true},
		{"x ip= y", "ip", "", true},
		{"", "ip", "", false},
	}
	for _, tt := range tests {
		got, ok := EventField(tt.detail, tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("EventField(%q, %q) = %q %v, want %q %v", tt.detail, tt.key, got, ok, tt.want, tt.ok)
		}
	}
}
