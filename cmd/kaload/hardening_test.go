package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// readAllResults reads a results file to its end and returns its records.
func readAllResults(t *testing.T, path string) []client.Result {
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
			return rs
		}
		if err != nil {
			t.Fatalf("after %d records: %v", len(rs), err)
		}
		rs = append(rs, res)
	}
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
	for _, r := range readAllResults(t, file) {
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
