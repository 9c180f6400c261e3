package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

// runKaload runs the command line in-process and returns its exit code and output.
func runKaload(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(ctx, args, &streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestHammerFlags(t *testing.T) {
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(bodyFile, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring of a usage error; "" = parses
		check   func(t *testing.T, o *hammerOptions)
	}{
		{name: "defaults", args: []string{"--url", "http://127.0.0.1:1/"}, check: func(t *testing.T, o *hammerOptions) {
			if o.Client.Connections != 10 || o.Client.Duration != 10*time.Second || o.Format != "table" {
				t.Errorf("defaults: %+v", o.Client)
			}
		}},
		{name: "requests alone lifts the duration limit", args: []string{"--url", "http://h/", "-n", "100"}, check: func(t *testing.T, o *hammerOptions) {
			if o.Client.Duration != 0 || o.Client.Requests != 100 {
				t.Errorf("got duration %s requests %d", o.Client.Duration, o.Client.Requests)
			}
		}},
		{name: "requests and duration both limit", args: []string{"--url", "http://h/", "-n", "100", "-d", "5s"}, check: func(t *testing.T, o *hammerOptions) {
			if o.Client.Duration != 5*time.Second {
				t.Errorf("duration %s", o.Client.Duration)
			}
		}},
		{name: "headers and body file", args: []string{"--url", "http://h/", "-X", "POST", "-H", "content-type: application/json", "-H", "X-A: 1", "--body", "@" + bodyFile}, check: func(t *testing.T, o *hammerOptions) {
			if got := o.Client.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if string(o.Client.Body) != `{"a":1}` || o.Client.Method != "POST" {
				t.Errorf("body %q method %s", o.Client.Body, o.Client.Method)
			}
		}},
		{name: "label and output recorded in meta", args: []string{"--url", "http://h/", "--label", "3", "-o", "-"}, check: func(t *testing.T, o *hammerOptions) {
			if o.Label != "3" || o.Meta["label"] != "3" || o.Output != "-" {
				t.Errorf("label %q meta %v", o.Label, o.Meta)
			}
		}},
		{name: "bad header", args: []string{"--url", "http://h/", "-H", "nocolon"}, wantErr: "--header"},
		{name: "missing body file", args: []string{"--url", "http://h/", "--body", "@/nonexistent/body"}, wantErr: "--body"},
		{name: "bad format", args: []string{"--url", "http://h/", "--format", "xml"}, wantErr: "--format"},
		{name: "negative cpus", args: []string{"--url", "http://h/", "--cpus", "-1"}, wantErr: "--cpus"},
		{name: "bad expectation", args: []string{"--url", "http://h/", "--expect", "nosuchmetric>1"}, wantErr: "valid metrics"},
		{name: "no url", args: nil, wantErr: "url"},
		{name: "zero connections", args: []string{"--url", "http://h/", "-c", "0"}, wantErr: "connections"},
		{name: "unknown flag", args: []string{"--url", "http://h/", "--frobnicate"}, wantErr: "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *hammerOptions
			var errb bytes.Buffer
			s := &streams{In: strings.NewReader(""), Out: io.Discard, Err: &errb}
			cmd := newCmdHammer(s, func(_ context.Context, o *hammerOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SilenceUsage = true
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				if ee := (*exitError)(nil); errors.As(err, &ee) && ee.code != exitUsage {
					t.Errorf("exit code %d, want %d", ee.code, exitUsage)
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

func TestHammerUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"hammer", "--url", "http://127.0.0.1:1/", "-H", "bad"},
		{"hammer", "--url", "http://127.0.0.1:1/", "--expect", "p99<<1"},
		{"hammer", "--url", "ftp://127.0.0.1:1/"},
		{"hammer", "extra-arg", "--url", "http://127.0.0.1:1/"},
	} {
		if code, _, stderr := runKaload(context.Background(), args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2; stderr %s", args, code, stderr)
		}
	}
}

// The proof through the command: with --max-requests 5 on the server,
// -n 1000 -c 10 uses exactly 200 connections, records 1000 results and no
// error, and the results file holds exactly what the summary reports.
func TestHammerRecyclingEndToEnd(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 5}).URL
	file := filepath.Join(t.TempDir(), "run.kld")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "1000", "-c", "10",
		"-o", file, "--label", "h0", "--format", "json", "--expect", "errors==0", "--expect", "requests_per_connection<=5")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	sum := report.Report{Summary: &report.Summary{}}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("json summary: %v\n%s", err, stdout)
	}
	if sum.Requests != 1000 || sum.Errors != 0 || sum.Connections != 200 {
		t.Errorf("requests %d errors %d connections %d, want 1000 0 200", sum.Requests, sum.Errors, sum.Connections)
	}
	if len(sum.Backends) != 1 || sum.Backends[0].Name != "pod-a" {
		t.Errorf("backends %+v", sum.Backends)
	}
	if len(sum.Expectations) != 2 || !sum.Expectations[0].OK || !sum.Expectations[1].OK {
		t.Errorf("expectations %+v", sum.Expectations)
	}

	r, err := results.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Header(); h.Label != "h0" || h.URL != url || h.Requests != 1000 {
		t.Errorf("header %+v", h)
	}
	var res client.Result
	n, conns := 0, map[uint64]bool{}
	for {
		err := r.Read(&res)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", n, err)
		}
		n++
		conns[res.Conn] = true
		if res.Backend != "pod-a" || res.Status != 200 || res.ConnReq < 1 || res.ConnReq > 5 {
			t.Fatalf("record %d: %+v", n, res)
		}
	}
	if n != 1000 || len(conns) != 200 {
		t.Errorf("file holds %d results on %d connections, want 1000 on 200", n, len(conns))
	}
}

func TestHammerExpectFailureExits3AfterReport(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a"}).URL
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "50", "-c", "2",
		"--expect", "backends>=2", "--expect", "errors==0", "--junit", junit)
	if code != exitExpectFail {
		t.Fatalf("exit %d, want 3; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "pod-a") || !strings.Contains(stdout, "backends>=2") {
		t.Errorf("report not printed before failing:\n%s", stdout)
	}
	x, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(x, []byte("<testsuite")) || !bytes.Contains(x, []byte("failure")) {
		t.Errorf("junit:\n%s", x)
	}
}

// -o - streams the results file to stdout (for a Kubernetes Job's log or a
// pipe) and moves the summary to stderr.
func TestHammerStreamsResultsToStdout(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 10}).URL
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "100", "-c", "4", "-o", "-")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "pod-a") {
		t.Errorf("summary not on stderr:\n%s", stderr)
	}
	r, err := results.NewReader(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("stdout is not a results file: %v", err)
	}
	var res client.Result
	n := 0
	for r.Read(&res) == nil {
		n++
	}
	if n != 100 {
		t.Errorf("stdout holds %d results, want 100", n)
	}
}

// Ctrl-C (the context main cancels on SIGINT) ends the run cleanly: exit 0,
// a complete results file holding exactly the requests the summary reports.
func TestHammerInterruptKeepsEverything(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 7}).URL
	file := filepath.Join(t.TempDir(), "run.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	code, stdout, stderr := runKaload(ctx, "hammer", "--url", url, "-d", "1m", "-c", "4", "--rate", "400", "-o", file, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", stderr)
	}
	var sum report.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	r, err := results.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var res client.Result
	n := uint64(0)
	for {
		err := r.Read(&res)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		n++
	}
	if n == 0 || n != sum.Requests {
		t.Errorf("file holds %d results, summary reports %d", n, sum.Requests)
	}
	if tr, ok := r.Trailer(); !ok || tr.Records != int64(n) {
		t.Errorf("trailer %+v %v, want count %d", tr, ok, n)
	}
}

// On a terminal the live line shows requests/s, errors and backends seen.
func TestHammerProgressOnTerminal(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a"}).URL
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"hammer", "--url", url, "-d", "800ms", "-c", "2", "--rate", "200"},
		&streams{In: strings.NewReader(""), Out: &out, Err: &errb, ErrTTY: true})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "req/s") || !strings.Contains(s, "1 backends") {
		t.Errorf("no progress line on the terminal:\n%q", s)
	}

	errb.Reset()
	code = run(context.Background(), []string{"hammer", "--url", url, "-d", "300ms", "-c", "2", "--quiet"},
		&streams{In: strings.NewReader(""), Out: &out, Err: &errb, ErrTTY: true})
	if code != 0 || strings.Contains(errb.String(), "req/s") {
		t.Errorf("--quiet drew progress (exit %d):\n%q", code, errb.String())
	}
}

// Failed requests are data, not a runtime error: against a port nobody
// listens on every request fails, the run exits 0 and says why.
func TestHammerFailedRequestsAreData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", "http://"+addr+"/", "-n", "5", "-c", "1",
		"--timeout", "2s", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	var sum report.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 5 || sum.Errors != 5 {
		t.Errorf("requests %d errors %d, want 5 and 5", sum.Requests, sum.Errors)
	}
	if !strings.Contains(stderr, "connection attempts failed") {
		t.Errorf("stderr does not report the failed dials:\n%s", stderr)
	}
	if !strings.Contains(stderr, "ALL 5 REQUESTS FAILED") || !strings.Contains(stderr, "is anything listening") {
		t.Errorf("stderr does not say loudly that every request failed, and why:\n%s", stderr)
	}
	if sum.Latency != nil || sum.ErrorExamples["connection refused"] == "" {
		t.Errorf("all failed: latency %+v (want none), examples %v", sum.Latency, sum.ErrorExamples)
	}
	if code, _, _ := runKaload(context.Background(), "hammer", "--url", "http://"+addr+"/", "-n", "5", "-c", "1",
		"--timeout", "2s", "--expect", "errors==0"); code != exitExpectFail {
		t.Errorf("--expect errors==0 on a failing run: exit %d, want 3", code)
	}
	// No response, no latency: NO DATA, not a pass (same rules as report).
	if code, stdout, _ := runKaload(context.Background(), "hammer", "--url", "http://"+addr+"/", "-n", "3", "-c", "1",
		"--timeout", "2s", "--expect", "p99<1s"); code != exitExpectFail || !strings.Contains(stdout, "no data: no responses: all 3 requests failed") {
		t.Errorf("--expect p99<1s with no response: exit %d, want 3 with NO DATA\n%s", code, stdout)
	}
}

// --cpus bounds the run's GOMAXPROCS and gives it back afterwards.
func TestHammerCPUs(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a"}).URL
	before := runtime.GOMAXPROCS(0)
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "200", "-c", "4", "--cpus", "1", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `"requests": 200`) {
		t.Errorf("summary:\n%s", stdout)
	}
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS %d after the run, was %d", after, before)
	}
}

// Without --cpus a target on this host gets one CPU, said on stderr and in
// the results file; --cpus 0 keeps every CPU and says nothing.
func TestHammerAutoCPUs(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: there is nothing to leave to the server")
	}
	url := servertest.Start(t, server.Config{Hostname: "pod-a"}).URL
	out := filepath.Join(t.TempDir(), "run.kld")
	code, _, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "20", "-c", "2", "-o", out)
	if code != 0 || !strings.Contains(stderr, "the target is on this host: using 1 CPU") {
		t.Errorf("default flags: exit %d, stderr:\n%s", code, stderr)
	}
	rd, err := results.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if got := rd.Header().Meta["cpus"]; got != "1 (auto: target on this host)" {
		t.Errorf("results header meta cpus = %q", got)
	}
	code, _, stderr = runKaload(context.Background(), "hammer", "--url", url, "-n", "20", "-c", "2", "--cpus", "0")
	if code != 0 || strings.Contains(stderr, "on this host") {
		t.Errorf("--cpus 0: exit %d, stderr:\n%s", code, stderr)
	}
}

// One server answering: fairness is NO DATA unless --backends names the
// pods; named, the idle one counts and the gate fails on data.
func TestHammerKnownBackends(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a"}).URL
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "50", "-c", "2", "--expect", "min_share>=0.1")
	if code != exitExpectFail || !strings.Contains(stdout, "NO DATA") || !strings.Contains(stdout, "only 1 backend answered") {
		t.Errorf("without --backends: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runKaload(context.Background(), "hammer", "--url", url, "-n", "50", "-c", "2", "--expect", "min_share>=0.1",
		"--backends", "pod-a,pod-b")
	if code != exitExpectFail || !strings.Contains(stdout, "│ FAIL   │ min_share>=0.1 │ 0") || !strings.Contains(stdout, "pod-b received no requests") {
		t.Errorf("with --backends: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestHammerLive: --live without a terminal prints one line per
// --interval naming the backend's share; the terminal bar shows the shares
// too, and with -n counts requests.
func TestHammerLive(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a"}).URL
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"hammer", "--url", url, "-d", "1100ms", "-c", "2", "--rate", "200", "--live", "--interval", "250ms"},
		&streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var lines []string
	for _, l := range strings.Split(errb.String(), "\n") {
		if strings.HasPrefix(l, "kaload: ") && strings.Contains(l, " req/s ") {
			lines = append(lines, l)
		}
	}
	// 1.1s of 250ms intervals: 4 lines (the ticker stops with the run).
	if len(lines) < 2 || len(lines) > 5 {
		t.Fatalf("%d live lines, want about 4:\n%s", len(lines), errb.String())
	}
	if !strings.Contains(lines[0], "/1.1s ") || !strings.Contains(lines[0], "| pod-a 100% new: pod-a") {
		t.Errorf("first line %q lacks the limit or pod-a's share as new", lines[0])
	}
	if !strings.HasSuffix(lines[1], "| pod-a 100%") {
		t.Errorf("second line %q: want pod-a 100%% and nothing new", lines[1])
	}

	errb.Reset()
	code = run(context.Background(), []string{"hammer", "--url", url, "-n", "300", "-c", "2", "--rate", "300", "--interval", "200ms"},
		&streams{In: strings.NewReader(""), Out: &out, Err: &errb, ErrTTY: true})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "pod-a 100%") || !regexp.MustCompile(`\d+/300`).MatchString(s) {
		t.Errorf("the bar lacks the shares or the request count:\n%q", s)
	}
}
