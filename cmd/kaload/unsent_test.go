package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/report"
)

// An open-model run against a server that stalls after its first answers:
// 100/s for 2 s is 200 requests due; two busy connection slots send only
// some. hammer's summary and the results file read back by kaload report
// both count every due request as sent or unsent, the timeline covers the
// whole 2 s though nothing was sent in the stuck tail, the text report says
// the target was missed, and --expect unsent==0 fails.
func TestHammerCountsUnsent(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 20 {
			select { // stall: the slots stay busy until the run is over
			case <-release:
			case <-time.After(3 * time.Second):
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	file := filepath.Join(t.TempDir(), "run.kld")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", srv.URL, "-c", "2", "--rate", "100", "-d", "2s",
		"--timeout", "5s", "-o", file, "--format", "json", "--expect", "unsent==0")
	if code != exitExpectFail {
		t.Fatalf("exit %d, want 3 (unsent==0 fails); stderr:\n%s", code, stderr)
	}
	var hammered report.Report
	if err := json.Unmarshal([]byte(stdout), &hammered); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	check := func(name string, s *report.Report) {
		t.Helper()
		if s.Unsent == nil || s.Requests+*s.Unsent != 200 || *s.Unsent == 0 {
			t.Fatalf("%s: %d sent + %v unsent, want 200 due and some unsent", name, s.Requests, s.Unsent)
		}
		if len(s.Runs) != 1 || s.Runs[0].Unsent == nil || *s.Runs[0].Unsent != *s.Unsent || s.TargetRPS != 100 {
			t.Errorf("%s: runs %+v target %v", name, s.Runs, s.TargetRPS)
		}
		iv := s.Timeline.Intervals
		if len(iv) != 2 || iv[1].Requests != 0 || iv[1].Due != 100 || iv[1].Unsent != 100 {
			t.Errorf("%s: timeline %+v; want 2 intervals, the second with nothing sent and its 100 due unsent", name, iv)
		}
	}
	check("hammer", &hammered)

	code, stdout, stderr = runKaload(context.Background(), "report", file, "--format", "json")
	if code != exitOK {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	var read report.Report
	if err := json.Unmarshal([]byte(stdout), &read); err != nil {
		t.Fatal(err)
	}
	check("report", &read)
	if *read.Unsent != *hammered.Unsent {
		t.Errorf("the file says %d unsent, hammer said %d", *read.Unsent, *hammered.Unsent)
	}

	code, stdout, _ = runKaload(context.Background(), "report", file)
	want := "target 100/s not reached: " + strconv.FormatUint(*read.Unsent, 10) + " requests due but not sent; raise -c"
	if code != exitOK || !strings.Contains(stdout, want) || !strings.Contains(stdout, "unsent") {
		t.Errorf("text report lacks %q:\n%s", want, stdout)
	}
}
