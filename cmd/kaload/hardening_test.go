package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/hostile"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

// uniqueBackendServer names a new backend in every response, as a server
// that sends its request counter in the backend header would.
func uniqueBackendServer(t *testing.T) string {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(client.DefaultBackendHeader, "b-"+strconv.FormatInt(n.Add(1), 10))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The summary folds backend names past --max-backends into one row and says
// so loudly; the results file keeps every name exactly.
func TestHammerFoldsBackendsPastTheCap(t *testing.T) {
	url := uniqueBackendServer(t)
	file := filepath.Join(t.TempDir(), "run.kld")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "500", "-c", "2",
		"--max-backends", "50", "-o", file, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var sum report.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.FoldedBackends != 450 || len(sum.Backends) != 51 || sum.Backends[50].Name != report.OtherBackend || sum.Backends[50].Requests != 450 {
		t.Fatalf("folded %d, %d rows (last %+v); want 450 names in row 51", sum.FoldedBackends, len(sum.Backends), sum.Backends[len(sum.Backends)-1])
	}
	if strings.Count(stderr, "warning") != 2 || !strings.Contains(stderr, "450 more backend names than the 50") {
		t.Errorf("stderr does not warn at once and at the end:\n%s", stderr)
	}
	names := map[string]bool{}
	for _, r := range checkCompleteFile(t, file) {
		names[r.Backend] = true
	}
	if len(names) != 500 {
		t.Errorf("results file holds %d distinct backends, want 500", len(names))
	}
	if code, _, stderr := runKaload(context.Background(), "hammer", "--url", url, "-n", "1", "--max-backends", "0"); code != exitUsage || !strings.Contains(stderr, "--max-backends") {
		t.Errorf("--max-backends 0: exit %d %s", code, stderr)
	}
}

// kaload report applies the same cap to files: 2,000 names, 1,000 tracked.
func TestReportFoldsBackendsPastTheCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "many.jsonl")
	w, err := results.CreateFile(path, results.Header{Kaload: "test", Start: reportT0})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := w.Write(&client.Result{Seq: uint64(i), Start: time.Duration(i) * time.Millisecond, Status: 200,
			Backend: "b-" + strconv.Itoa(i), Conn: uint64(i + 1), ConnReq: 1, ServerTotal: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runReportCmd(t, "report", path, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum report.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 2000 || sum.FoldedBackends != 1000 || len(sum.Backends) != 1001 {
		t.Fatalf("requests %d folded %d rows %d", sum.Requests, sum.FoldedBackends, len(sum.Backends))
	}
	if !strings.Contains(stderr, "warning: 1000 more backend names") {
		t.Errorf("no warning:\n%s", stderr)
	}
	code, stdout, _ = runReportCmd(t, "report", path, "--format", "json", "--max-backends", "-1")
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || code != 0 || len(sum.Backends) != 2000 {
		t.Errorf("--max-backends -1: exit %d, %d rows, %v", code, len(sum.Backends), err)
	}
}

// kaloadProcess starts the test binary as kaload with args.
func kaloadProcess(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KALOAD_TEST_MAIN=1")
	return cmd
}

// silentServer accepts connections and reads requests but never answers.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hostile.Serve(ln, hostile.Silent))
	return "http://" + ln.Addr().String() + "/"
}

// checkCompleteFile reads a results file to its trailer and returns its records.
func checkCompleteFile(t *testing.T, path string) []client.Result {
	t.Helper()
	r, err := results.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rs []client.Result
	for {
		var res client.Result
		err := r.Read(&res)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d records: %v", len(rs), err)
		}
		rs = append(rs, res)
	}
	if tr, ok := r.Trailer(); !ok || tr.Records != int64(len(rs)) {
		t.Fatalf("trailer %+v %v for %d records", tr, ok, len(rs))
	}
	return rs
}

// A second Ctrl-C aborts the requests in flight: against a server that
// never answers, with --timeout 10s, SIGINT at 0.5 s and again at 1 s end
// the run at once instead of at 10 s. The file is complete and every
// request in it is recorded as interrupted.
func TestHammerSecondInterruptAborts(t *testing.T) {
	url := silentServer(t)
	file := filepath.Join(t.TempDir(), "run.kld")
	cmd := kaloadProcess(t, "hammer", "--url", url, "-c", "4", "-d", "1m", "--timeout", "10s", "-o", file, "--format", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 20 s later; stderr:\n%s", stderr.String())
	}
	if el := time.Since(began); err != nil || el > 5*time.Second {
		t.Fatalf("exit %v after %v (the timeout was 10 s); stderr:\n%s", err, el, stderr.String())
	}
	for _, want := range []string{"Ctrl-C again aborts them", "aborting the requests in flight", "interrupted after"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	var sum report.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	rs := checkCompleteFile(t, file)
	if len(rs) != 4 || sum.Requests != 4 || sum.ErrorKinds["interrupted"] != 4 {
		t.Fatalf("file %d records, summary %d requests, error kinds %v; want 4 interrupted", len(rs), sum.Requests, sum.ErrorKinds)
	}
	for _, r := range rs {
		if r.Err != client.ErrInterrupted {
			t.Errorf("record %+v, want %q", r, client.ErrInterrupted)
		}
	}
}

// failAfter accepts n bytes, then fails every write like a full disk.
type failAfter struct {
	mu   sync.Mutex
	n    int
	data bytes.Buffer
}

func (f *failAfter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.data.Len()+len(p) > f.n {
		k := f.n - f.data.Len()
		f.data.Write(p[:k])
		return k, syscall.ENOSPC
	}
	return f.data.Write(p)
}

// The first failed write stops the run at once and says so; the summary is
// still printed from memory, the exit code is 1, and the part of the file
// that was written reads as a truncated file.
func TestHammerWriteErrorKeepsSummary(t *testing.T) {
	url := uniqueBackendServer(t)
	out := &failAfter{n: 100 << 10}
	var errb bytes.Buffer
	began := time.Now()
	code := run(context.Background(), []string{"hammer", "--url", url, "-c", "2", "-d", "30s", "-o", "-", "--expect", "requests>0"},
		&streams{In: strings.NewReader(""), Out: out, Err: &errb})
	stderr := errb.String()
	if code != exitRuntime {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if el := time.Since(began); el > 15*time.Second {
		t.Errorf("the run went on for %v after the disk filled", el)
	}
	stop := strings.Index(stderr, "no space left on device; stopping the run")
	verdict := strings.Index(stderr, "Verdict:")
	final := strings.LastIndex(stderr, "kaload: results file: ")
	if stop < 0 || verdict < stop || final < verdict || !strings.Contains(stderr[final:], "readable by 'kaload report'") || !strings.Contains(stderr, "PASS") {
		t.Fatalf("want the failure at once, then the summary, then the error; stderr:\n%s", stderr)
	}
	r, err := results.NewReader(bytes.NewReader(out.data.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var res client.Result
	n := 0
	for err = r.Read(&res); err == nil; err = r.Read(&res) {
		n++
	}
	if !errors.Is(err, results.ErrTruncated) || n == 0 {
		t.Errorf("partial file: %d records then %v", n, err)
	}
}

// The same with a real full filesystem (a 256 KiB tmpfs), when this test
// may mount one: the summary goes to stdout, the partial file stays readable.
func TestHammerDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	url := uniqueBackendServer(t)
	file := filepath.Join(dir, "run.jsonl")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", url, "-c", "2", "-d", "30s", "-o", file, "--format", "json")
	if code != exitRuntime || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var sum report.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || sum.Requests == 0 {
		t.Fatalf("no summary on stdout (%v):\n%s", err, stdout)
	}
	code, _, rstderr := runKaload(context.Background(), "report", file)
	if code != 0 || !strings.Contains(rstderr, "truncated") {
		t.Errorf("report of the partial file: exit %d, stderr %s", code, rstderr)
	}
}

// -o - into a pipe whose reader went away: "output closed", exit 1 and the
// summary on stderr, not a silent death by SIGPIPE (exit 141).
func TestHammerClosedPipe(t *testing.T) {
	url := uniqueBackendServer(t)
	cmd := kaloadProcess(t, "hammer", "--url", url, "-c", "2", "-d", "30s", "-o", "-")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(pipe, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	pipe.Close() // like `| head -c 100`
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 20 s after the pipe closed; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stderr:\n%s", err, stderr.String())
	}
	if s := stderr.String(); !strings.Contains(s, "output closed") || !strings.Contains(s, "Verdict:") {
		t.Errorf("stderr:\n%s", s)
	}
}

// A crafted record no run can hold is an error naming its line, not a
// record the report drops (the trailer said 3, the report counted 2) or a
// duration of 146 years; a 64 KiB+ backend name too.
func TestReportRefusesImpossibleRecords(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, line, want string }{
		{"negative.jsonl", `{"seq":1,"start_ns":-5,"latency_ns":1000,"status":200,"backend":"a"}`, "line 3: start offset -5 ns outside"},
		{"latency.jsonl", `{"seq":1,"start_ns":0,"latency_ns":4611686018427387904,"status":200,"backend":"a"}`, "line 3: latency 4611686018427387904 ns outside"},
		{"longname.jsonl", `{"seq":1,"start_ns":0,"latency_ns":1000,"status":200,"backend":"` + strings.Repeat("n", 100_000) + `"}`, "line 3: backend name of 100000 bytes exceeds the limit of 65536"},
	} {
		path := filepath.Join(dir, tc.name)
		good := `{"seq":0,"start_ns":0,"latency_ns":1000,"status":200,"backend":"a"}`
		data := `{"kaload_results":1,"header":{"start":"2026-01-01T00:00:00Z"}}` + "\n" + good + "\n" + tc.line + "\n" +
			strings.Replace(good, `"seq":0`, `"seq":2`, 1) + "\n" + `{"kaload_trailer":{"records":3}}` + "\n"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runReportCmd(t, "report", path)
		if code != exitRuntime || !strings.Contains(stderr, tc.name) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tc.name, code, stderr, tc.want)
		}
	}
}

// The real engine drops a connection whose request timed out; the summary
// counts each such redial (issue 17: report redials caused by timeouts).
func TestHammerCountsTimeoutRedials(t *testing.T) {
	url := silentServer(t)
	code, out, errs := runReportCmd(t, "hammer", "--url", url, "-n", "3", "-c", "1", "--timeout", "200ms", "--format", "json", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if s.Requests != 3 || s.Errors != 3 || s.TimeoutRedials != 3 {
		t.Errorf("requests %d errors %d timeout_redials %d", s.Requests, s.Errors, s.TimeoutRedials)
	}
}
