package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kaload/kaload/internal/lab"
	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

// runReportCmd runs a kaload command line in-process.
func runReportCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

var reportT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// writeResults writes a results file: pod-a and pod-b share the first 5s,
// pod-c joins at 5s and gets a third from then on; every 4th request closes
// its connection. Returns the path.
func writeResults(t *testing.T, dir, name, label string, start time.Time) string {
	t.Helper()
	path := filepath.Join(dir, name)
	w, err := results.CreateFile(path, results.Header{Kaload: "test", Label: label, URL: "http://svc/", Start: start, Connections: 3})
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	conn := map[string][2]uint64{} // backend -> {id, requests on it}
	nextConn := uint64(0)
	for ms := 0; ms < 10000; ms += 10 {
		backends := []string{"pod-a", "pod-b"}
		if ms >= 5000 {
			backends = append(backends, "pod-c")
		}
		b := backends[(ms/10)%len(backends)]
		c := conn[b]
		if c[1] == 0 || c[1] == 4 {
			nextConn++
			c = [2]uint64{nextConn, 0}
		}
		c[1]++
		conn[b] = c
		r := client.Result{Seq: seq, Start: time.Duration(ms) * time.Millisecond, Latency: time.Duration(1+ms%7) * time.Millisecond,
			Status: 200, Backend: b, Conn: c[0], ConnReq: uint32(c[1]), ServerTotal: int64(seq)}
		if c[1] == 4 {
			r.Close = client.CloseServer
		}
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o *reportOptions)
	}{
		{"defaults", []string{"a.kld"}, "", func(t *testing.T, o *reportOptions) {
			if o.Output.Format != "table" || o.Window.Interval != time.Second || o.Window.From != 0 || o.Window.To != 0 || len(o.Files) != 1 {
				t.Errorf("options %+v", o)
			}
		}},
		{"everything", []string{"a.kld", "b.jsonl", "--from", "5s", "--to", "1m", "--interval", "250ms", "--format", "json", "-o", "out.json",
			"--expect", "backends>=2", "--expect", "share(pod-a)<=0.6", "--junit", "j.xml"}, "", func(t *testing.T, o *reportOptions) {
			if o.Window.From != 5*time.Second || o.Window.To != time.Minute || o.Window.Interval != 250*time.Millisecond ||
				o.Output != (reportOutput{Format: "json", File: "out.json", JUnit: "j.xml"}) ||
				len(o.Files) != 2 || len(o.Expects) != 2 || o.Expects[1].Arg != "pod-a" {
				t.Errorf("options %+v", o)
			}
		}},
		{"known backends", []string{"a.kld", "--backends", "pod-a,pod-b", "--backends", "pod-c"}, "", func(t *testing.T, o *reportOptions) {
			if strings.Join(o.Window.Backends, " ") != "pod-a pod-b pod-c" {
				t.Errorf("backends %q", o.Window.Backends)
			}
		}},
		{"bad format", []string{"a.kld", "--format", "yaml"}, `--format "yaml": valid formats are table, json, markdown, csv, html`, nil},
		{"bad expect", []string{"a.kld", "--expect", "speed>3"}, `unknown metric "speed"`, nil},
		{"to before from", []string{"a.kld", "--from", "10s", "--to", "5s"}, "--to 5s must be after --from 10s", nil},
		{"negative from", []string{"a.kld", "--from", "-1s"}, "must not be negative", nil},
		{"zero interval", []string{"a.kld", "--interval", "0s"}, "--interval 0s: must be positive", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *reportOptions
			s := &streams{Out: io.Discard, Err: io.Discard}
			cmd := newCmdReport(s, func(_ context.Context, o *reportOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestReportExitCodes(t *testing.T) {
	dir := t.TempDir()
	file := writeResults(t, dir, "run.kld", "h0", reportT0)

	t.Run("pass", func(t *testing.T) {
		code, out, errs := runReportCmd(t, "report", file, "--expect", "backends>=2", "--expect", "errors==0",
			"--expect", "requests_per_connection<=5", "--expect", "rebalance<5s", "--expect", "share(pod-a)<=0.6", "--expect", "p99<50ms")
		if code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		for _, want := range []string{"pod-c", "Verdict: 3 backends", "pod-c appeared at 5.0s and reached its fair share after 1.0s",
			"Connections used: 251 for 1000 requests (perfect keep-alive would be 3)", "PASS"} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("fail exits 3 after the report", func(t *testing.T) {
		junit := filepath.Join(dir, "junit.xml")
		code, out, errs := runReportCmd(t, "report", file, "--expect", "backends>=2", "--expect", "min_share>=0.3", "--junit", junit)
		if code != exitExpectFail {
			t.Fatalf("exit %d, want 3\n%s%s", code, out, errs)
		}
		if !strings.Contains(out, "FAIL") || !strings.Contains(out, "min_share>=0.3") || !strings.Contains(out, "Verdict:") {
			t.Errorf("report not printed before failing:\n%s", out)
		}
		raw, err := os.ReadFile(junit)
		if err != nil {
			t.Fatal(err)
		}
		var suites struct {
			Suites []struct {
				Tests    int `xml:"tests,attr"`
				Failures int `xml:"failures,attr"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(raw, &suites); err != nil || suites.Suites[0].Tests != 2 || suites.Suites[0].Failures != 1 {
			t.Errorf("junit %+v %v:\n%s", suites, err, raw)
		}
	})
	t.Run("bad expression exits 2 listing metrics", func(t *testing.T) {
		code, _, errs := runReportCmd(t, "report", file, "--expect", "p99<fast")
		if code != exitUsage || !strings.Contains(errs, "needs a duration") || !strings.Contains(errs, "valid metrics: requests, errors") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("help", func(t *testing.T) {
		code, out, _ := runReportCmd(t, "report", "--help")
		if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "share(NAME)") || !strings.Contains(out, "--junit") {
			t.Errorf("exit %d, help:\n%s", code, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if len([]rune(l)) > 110 {
				t.Errorf("help line too long for a terminal: %q", l)
			}
		}
	})
	t.Run("no file exits 2", func(t *testing.T) {
		if code, _, errs := runReportCmd(t, "report"); code != exitUsage {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("json window", func(t *testing.T) {
		code, out, errs := runReportCmd(t, "report", file, "--from", "5s", "--format", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var s report.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		if s.Requests != 500 || len(s.Backends) != 3 || len(s.Rebalance) != 0 || s.Fairness == nil || s.Fairness.Jain < 0.999 {
			t.Errorf("window summary: requests %d backends %d rebalance %v jain %v", s.Requests, len(s.Backends), s.Rebalance, s.Fairness.Jain)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"report", "-", "--format", "json"}, &streams{In: f, Out: &out, Err: &errb})
		var s report.Summary
		if code != exitOK || json.Unmarshal(out.Bytes(), &s) != nil || s.Requests != 1000 {
			t.Errorf("exit %d, requests %d, stderr %q", code, s.Requests, errb.String())
		}
		code = run(context.Background(), []string{"report", "-", "-"}, &streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != exitUsage {
			t.Errorf("stdin twice: exit %d", code)
		}
	})
	t.Run("output file", func(t *testing.T) {
		for _, format := range report.Formats {
			out := filepath.Join(dir, "out."+format)
			code, stdout, errs := runReportCmd(t, "report", file, "--format", format, "-o", out)
			if code != exitOK || stdout != "" {
				t.Fatalf("%s: exit %d stdout %q stderr %q", format, code, stdout, errs)
			}
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				t.Errorf("%s: %v", format, err)
			}
		}
	})
}

func TestReportMerge(t *testing.T) {
	dir := t.TempDir()
	a := writeResults(t, dir, "a.kld", "h0", reportT0)
	// The second hammer started 2s later and wrote JSON Lines.
	b := filepath.Join(dir, "b.jsonl")
	src, err := results.OpenFile(writeResults(t, dir, "tmp.kld", "h1", reportT0.Add(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := os.Create(b)
	if err != nil {
		t.Fatal(err)
	}
	w, err := results.NewWriter(f, results.FormatJSONL, src.Header())
	if err != nil {
		t.Fatal(err)
	}
	var r client.Result
	for src.Read(&r) == nil {
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, out, errs := runReportCmd(t, "report", b, a, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Requests != 2000 || len(s.Runs) != 2 || s.Runs[0].Label != "h1" || s.PerfectConnections != 6 || s.Connections != 502 {
		t.Fatalf("merged: requests %d runs %+v perfect %d connections %d", s.Requests, s.Runs, s.PerfectConnections, s.Connections)
	}
	// h1's pod-c arrives at its own 5s: 7s of the merged run; h0's at 5s.
	if c := s.Backends[2]; c.Name != "pod-c" || *c.FirstSeenSeconds != 5 || c.Requests != 334 {
		t.Errorf("pod-c = %+v", c)
	}
	if s.DurationSeconds < 11.99 || s.DurationSeconds > 12.01 {
		t.Errorf("merged duration %v, want 12s", s.DurationSeconds)
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	good := writeResults(t, dir, "good.kld", "", reportT0)
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The binary form starts with a magic string and a version byte.
	newer := append([]byte(nil), raw...)
	newer[len("KALOAD\x00")] = 7 // the version byte after the magic

	var jsonl bytes.Buffer
	jw, err := results.NewWriter(&jsonl, results.FormatJSONL, results.Header{Kaload: "test", Start: reportT0})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := jw.Write(&client.Result{Seq: uint64(i), Status: 200, Backend: "pod-a", Conn: 1, ConnReq: uint32(i + 1), ServerTotal: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := jw.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(jsonl.String(), "\n")
	lines[3] = "{\"seq\": oops}\n"

	tests := []struct {
		name  string
		path  string
		code  int
		wants []string
	}{
		{"missing", filepath.Join(dir, "nope.kld"), exitRuntime, []string{"nope.kld", "no such file"}},
		{"empty", write("empty.kld", nil), exitRuntime, []string{"empty.kld", "empty file"}},
		{"not results", write("text.kld", []byte("hello\n")), exitRuntime, []string{"text.kld", "not a kaload results file"}},
		{"truncated", write("cut.kld", raw[:len(raw)*2/3]), exitOK, []string{"cut.kld", "warning", "truncated"}},
		{"newer binary", write("new.kld", newer), exitRuntime, []string{"new.kld", "version 7 is newer"}},
		{"newer jsonl", write("new.jsonl", []byte(`{"kaload_results":99,"start":"2026-01-01T00:00:00Z"}`+"\n")), exitRuntime, []string{"new.jsonl", "version 99 is newer"}},
		{"bad jsonl line", write("bad.jsonl", []byte(strings.Join(lines, ""))), exitRuntime, []string{"bad.jsonl", "line 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runReportCmd(t, "report", tt.path)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errs)
			}
			for _, w := range tt.wants {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
			if tt.code == exitOK && !strings.Contains(out, "Verdict:") {
				t.Errorf("no report for the records before the cut:\n%s", out)
			}
		})
	}
}

// startService is a Service in front of backends: like kube-proxy, it picks
// a backend per connection (in turn) and then only copies bytes.
func startService(t *testing.T, backends ...string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bal := lab.NewBalancer(lab.PolicyRoundRobin, 0)
	bal.SetBackends(backends...)
	done := make(chan error, 1)
	go func() { done <- bal.Serve(context.Background(), ln) }()
	return ln.Addr().String(), func() {
		bal.Close()
		<-done
		bal.Wait()
	}
}

func TestReportEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 10})
	b := servertest.Start(t, server.Config{Hostname: "pod-b", MaxRequests: 10})
	lb, stopLB := startService(t, a.Addr, b.Addr)
	file := filepath.Join(t.TempDir(), "run.kld")

	code, out, errs := runReportCmd(t, "hammer", "--url", "http://"+lb+"/", "-n", "600", "-c", "4", "-o", file, "--quiet")
	stopLB()
	b.Stop()
	a.Stop()
	if code != exitOK {
		t.Fatalf("hammer exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = runReportCmd(t, "report", file, "--format", "json", "--expect", "backends==2", "--expect", "errors==0",
		"--expect", "requests_per_connection<=10", "--expect", "min_share>=0.3", "--expect", "max_share<=0.7", "--expect", "jain>=0.9")
	if code != exitOK {
		t.Fatalf("report exit %d\n%s%s", code, out, errs)
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Requests != 600 || s.Connections < 60 || s.CloseReasons["server-close"] < 56 {
		t.Errorf("requests %d connections %d close reasons %v", s.Requests, s.Connections, s.CloseReasons)
	}
	for _, bk := range s.Backends {
		// Total-Request of the first and last request by start time: with 4
		// connections in flight either end may be off by a few.
		if bk.RequestsPerConnection == nil || *bk.RequestsPerConnection > 10 || bk.ServerTotalDelta == nil || *bk.ServerTotalDelta < int64(bk.Requests)-10 || *bk.ServerTotalDelta >= int64(bk.Requests)+10 {
			t.Errorf("backend %+v, server delta %v", bk, *bk.ServerTotalDelta)
		}
	}

	code, out, errs = runReportCmd(t, "report", file, "--expect", "backends>=3", "--expect", "share(pod-a)<=0.1")
	if code != exitExpectFail || strings.Count(out, "FAIL") != 2 || !strings.Contains(out, "pod-b") {
		t.Errorf("failing report: exit %d\n%s%s", code, out, errs)
	}
}

// A directory argument stands for the results files in it (a hammer Job's volume).
func TestReportDirectory(t *testing.T) {
	dir := t.TempDir()
	writeResults(t, dir, "hammer-0.kld", "hammer-0", reportT0)
	writeResults(t, dir, "hammer-1.kld", "hammer-1", reportT0)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not results"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runReportCmd(t, "report", dir, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Requests != 2000 || len(s.Runs) != 2 || s.Runs[0].Label != "hammer-0" || s.Runs[1].Label != "hammer-1" {
		t.Errorf("requests %d runs %+v", s.Requests, s.Runs)
	}

	empty := t.TempDir()
	code, _, errs = runReportCmd(t, "report", empty)
	if code != exitRuntime || !strings.Contains(errs, empty) || !strings.Contains(errs, "no results files") {
		t.Errorf("empty directory: exit %d, stderr %q", code, errs)
	}
}

// A lab output folder holds unrelated scenarios: report refuses to merge
// them and lists each scenario's files; shards of one run still merge.
func TestReportRefusesDifferentExperiments(t *testing.T) {
	dir := t.TempDir()
	for _, sc := range []string{"max-requests=0", "max-requests=5"} {
		path := filepath.Join(dir, strings.ReplaceAll(sc, "=", "-")+".kld")
		w, err := results.CreateFile(path, results.Header{Kaload: "test", Label: sc, URL: "lab://" + sc, Start: reportT0,
			Meta: map[string]string{"lab.scenario": sc}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&client.Result{Status: 200, Backend: "pod-1", Conn: 1, ConnReq: 1, ServerTotal: -1}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runReportCmd(t, "report", dir)
	if code != exitUsage || out != "" || !strings.Contains(errs, "2 different experiments") ||
		!strings.Contains(errs, "lab scenario max-requests=0: kaload report "+filepath.Join(dir, "max-requests-0.kld")) ||
		!strings.Contains(errs, "lab scenario max-requests=5: kaload report "+filepath.Join(dir, "max-requests-5.kld")) {
		t.Errorf("exit %d\nstdout %q\nstderr %s", code, out, errs)
	}

	shards := t.TempDir()
	writeResults(t, shards, "hammer-0.kld", "hammer-0", reportT0)
	writeResults(t, shards, "hammer-1.kld", "hammer-1", reportT0)
	writeResults(t, shards, "before.kld", "before", reportT0)
	code, _, errs = runReportCmd(t, "report", filepath.Join(shards, "hammer-0.kld"), filepath.Join(shards, "hammer-1.kld"))
	if code != exitOK {
		t.Errorf("shards of one run: exit %d: %s", code, errs)
	}
	if code, _, errs := runReportCmd(t, "report", shards, "--merge"); code != exitOK {
		t.Errorf("--merge: exit %d: %s", code, errs)
	}
	code, _, errs = runReportCmd(t, "report", shards)
	if code != exitUsage || !strings.Contains(errs, "hammer http://svc/: kaload report "+filepath.Join(shards, "hammer-0.kld")+" "+filepath.Join(shards, "hammer-1.kld")) {
		t.Errorf("a differently labelled run among shards: exit %d: %s", code, errs)
	}
}

// Issue 10's four vacuous PASSes through the command, and issue 17's gate:
// each is now NO DATA (exit 3) with the reason, or a usage error (exit 2).
func TestReportNoVacuousPass(t *testing.T) {
	dir := t.TempDir()
	run := writeResults(t, dir, "run.kld", "h0", reportT0) // pod-a, pod-b from 0s, pod-c from 5s; 10s
	sticky := filepath.Join(dir, "sticky.kld")
	w, err := results.CreateFile(sticky, results.Header{Kaload: "test", URL: "http://svc/", Start: reportT0, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := w.Write(&client.Result{Seq: uint64(i), Start: time.Duration(i) * 40 * time.Millisecond, Latency: time.Millisecond,
			Status: 200, Backend: "web-1", Conn: 1, ConnReq: uint32(i + 1), ServerTotal: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		says []string
	}{
		{"a backend name that does not exist", []string{run, "--expect", "share(pod-A)<=0.6"}, exitExpectFail,
			[]string{"NO DATA", "no backend named pod-A; backends: pod-a, pod-b, pod-c"}},
		{"a window after the run", []string{run, "--from", "20s", "--expect", "p99<50ms", "--expect", "error_rate<1%"}, exitExpectFail,
			[]string{"no data: no requests in the window 20s..end"}},
		{"no backend appeared", []string{run, "--to", "4s", "--expect", "rebalance<10s"}, exitExpectFail,
			[]string{"no data: no backend appeared mid-run"}},
		{"a share above 1", []string{run, "--expect", "min_share>=2"}, exitUsage,
			[]string{"min_share>=2 can never be true: min_share lies in 0..1"}},
		{"one backend answered, none known", []string{sticky, "--expect", "min_share>=0.05"}, exitExpectFail,
			[]string{"NO DATA", "only 1 backend answered; idle pods are invisible without --watch or --backends"}},
		{"one backend answered, ten known", []string{sticky, "--expect", "min_share>=0.05", "--backends",
			"web-1,web-2,web-3,web-4,web-5,web-6,web-7,web-8,web-9,web-10"}, exitExpectFail,
			[]string{"FAIL", "web-2, web-3, web-4, web-5, web-6, web-7, web-8, web-9, web-10 received no requests"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runReportCmd(t, append([]string{"report"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			for _, w := range tt.says {
				if !strings.Contains(out+errs, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errs)
				}
			}
		})
	}
	// JUnit: a NO DATA expectation is a failure with the reason.
	junit := filepath.Join(dir, "expect.xml")
	if code, _, _ := runReportCmd(t, "report", run, "--from", "20s", "--expect", "p99<50ms", "--junit", junit); code != exitExpectFail {
		t.Errorf("exit %d", code)
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), `failures="1"`) || !strings.Contains(string(x), "NO DATA for p99&lt;50ms: no requests in the window 20s..end") {
		t.Errorf("junit %s %v", x, err)
	}
}
