package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenSummary is a fixed two-file run, written with the codec and read
// back as kaload report does: pod-a and pod-b from the start, pod-c scaled
// up at 5s, a few errors and server closes.
func goldenSummary(t *testing.T) *Report {
	t.Helper()
	var files [2]bytes.Buffer
	writers := [2]*results.Writer{}
	for i, label := range []string{"hammer-0", "hammer-1"} {
		h := results.Header{Kaload: "test", Label: label, URL: "http://svc:8080/", Start: t0.Add(time.Duration(i) * 500 * time.Millisecond), Connections: 2}
		w, err := results.NewWriter(&files[i], results.FormatBinary, h)
		if err != nil {
			t.Fatal(err)
		}
		writers[i] = w
	}
	sink := func(w *results.Writer) func(*client.Result) {
		return func(r *client.Result) {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := newSinkFeeder(sink(writers[0]), 0)
	scaleUpWith(f, []int{2, 5, 6, 7, 7})
	f = newSinkFeeder(sink(writers[1]), 5)
	f.add("pod-a", 0, 4*time.Second, 20)
	f.add("pod-b", 0, 4*time.Second, 20)
	f.add("pod-c", 4500*time.Millisecond, 5*time.Second, 30)
	f.sink(&client.Result{Seq: 1, Start: 7 * time.Second, Latency: 2 * time.Second, Err: "read tcp: i/o timeout", Backend: "pod-c", Conn: 50, ConnReq: 1, Close: client.CloseError, ServerTotal: -1})
	f.sink(&client.Result{Seq: 2, Start: 8 * time.Second, Err: "dial tcp: connect: connection refused", ServerTotal: -1})
	f.sink(&client.Result{Seq: 3, Start: 8 * time.Second, Latency: 3 * time.Millisecond, Status: 503, Backend: "pod-b", Conn: 51, ConnReq: 1, ServerTotal: 7})
	a := NewAggregator(Options{Interval: time.Second})
	var readers []*results.Reader
	var runs []*Run
	for i, w := range writers {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rd, err := results.NewReader(bytes.NewReader(files[i].Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		run, err := a.AddRun(rd.Header())
		if err != nil {
			t.Fatal(err)
		}
		readers, runs = append(readers, rd), append(runs, run)
	}
	for i, rd := range readers {
		var r client.Result
		for {
			err := rd.Read(&r)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			runs[i].Add(&r)
		}
	}
	s := a.Summary()
	exps, err := ParseExpectations([]string{"backends>=2", "min_share>=0.3", "p99<50ms", "share(pod-a)<=0.6", "rebalance<5s", "error_rate<0.01"})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Check(s, exps)
	return &Report{Summary: s, Expectations: res}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	s := goldenSummary(t)
	for _, tt := range []struct{ format, file string }{
		{"table", "report.txt"},
		{"markdown", "report.md"},
		{"json", "report.json"},
		{"csv", "timeline.csv"},
		{"html", "report.html"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, s, tt.format); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, buf.Bytes())
		})
	}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.xml", buf.Bytes())
}

func TestRenderJSONContract(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, goldenSummary(t), "json"); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	// docs/design.md's contract, field by field.
	for _, k := range []string{"requests", "errors", "connections", "duration_seconds", "rps", "backends", "fairness", "latency", "close_reasons", "expectations",
		"error_kinds", "error_examples", "rebalance", "outcome", "verdict"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %q", k)
		}
	}
	b := m["backends"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "requests", "share", "connections", "requests_per_connection", "first_seen_seconds"} {
		if _, ok := b[k]; !ok {
			t.Errorf("backends[0] lacks %q", k)
		}
	}
	rb := m["rebalance"].([]any)[0].(map[string]any)
	for _, k := range []string{"backend", "fair_share", "share_after", "outcome"} {
		if _, ok := rb[k]; !ok {
			t.Errorf("rebalance[0] lacks %q", k)
		}
	}
	for obj, keys := range map[string][]string{"fairness": {"jain", "min_share", "max_share"}, "latency": {"p50_ms", "p90_ms", "p99_ms", "max_ms"}} {
		for _, k := range keys {
			if _, ok := m[obj].(map[string]any)[k]; !ok {
				t.Errorf("%s lacks %q", obj, k)
			}
		}
	}
	e := m["expectations"].([]any)[0].(map[string]any)
	for _, k := range []string{"expr", "ok", "status", "actual"} {
		if _, ok := e[k]; !ok {
			t.Errorf("expectations[0] lacks %q", k)
		}
	}
}

func TestRenderHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, goldenSummary(t), "html"); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained", bad)
		}
	}
	if !strings.Contains(page, "<svg") || strings.Count(page, "<rect") < 20 {
		t.Errorf("page lacks the SVG timeline")
	}
}

func TestJUnitParses(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, goldenSummary(t)); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	su := suites.Suites[0]
	if su.Tests != 6 || su.Failures != 2 || su.Cases[1].Failure == nil || su.Cases[0].Failure != nil {
		t.Errorf("suite = %+v", su)
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	err := Render(&bytes.Buffer{}, &Report{Summary: &Summary{}}, "yaml")
	if err == nil || !strings.Contains(err.Error(), "table, json, markdown, csv, html") {
		t.Errorf("error = %v", err)
	}
}

// An empty summary renders in every format without panicking.
func TestRenderEmpty(t *testing.T) {
	s := NewAggregator(Options{}).Summary()
	for _, f := range Formats {
		if err := Render(&bytes.Buffer{}, &Report{Summary: s}, f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSparkRune(t *testing.T) {
	for _, tt := range []struct {
		share float64
		want  rune
	}{{0, ' '}, {0.001, '▁'}, {0.125, '▁'}, {0.13, '▂'}, {0.5, '▄'}, {1, '█'}, {1.5, '█'}} {
		if got := sparkRune(tt.share); got != tt.want {
			t.Errorf("sparkRune(%v) = %q, want %q", tt.share, got, tt.want)
		}
	}
}

func TestRenderTimelineWidth(t *testing.T) {
	a := NewAggregator(Options{Interval: 100 * time.Millisecond})
	f := newFeeder(a, 0)
	f.add("pod-a", 0, 10*time.Second, 1000)           // 100 intervals
	f.add("pod-b", 5*time.Second, 5*time.Second, 500) // the second half
	var buf bytes.Buffer
	if err := renderTimeline(&buf, a.Summary().Timeline, 10); err != nil {
		t.Fatal(err)
	}
	want := "Share per 1.0s (█ = 100%, blank = none):\n" +
		"  pod-a │█████▄▄▄▄▄│\n" +
		"  pod-b │     ▄▄▄▄▄│\n" +
		"        0.0s   10.0s\n\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
