package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

// labSummary is 10s at 40 requests/s from two pods; pod-c, scaled in at
// 4s, gets newShare of each second's requests from 5s on; with recycling
// every connection closes after 5 requests.
func labSummary(t *testing.T, newShare float64, recycle uint32) *report.Summary {
	t.Helper()
	a := report.NewAggregator(report.Options{Backends: []string{"pod-a", "pod-b", "pod-c"}})
	run, err := a.AddRun(results.Header{Kaload: "v0.test", URL: "http://127.0.0.1:8080/",
		Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 10 * time.Second, Rate: 40, Connections: 4})
	if err != nil {
		t.Fatal(err)
	}
	conn, perConn := map[string]uint64{}, map[string]uint32{}
	var seq uint64
	for k := range 10 {
		for i := range 40 {
			be := []string{"pod-a", "pod-b"}[i%2]
			if k >= 5 && float64(i) < newShare*40 {
				be = "pod-c"
			}
			perConn[be]++
			r := client.Result{Seq: seq, Start: time.Duration(k)*time.Second + time.Duration(i)*25*time.Millisecond,
				Latency: time.Duration(2+i%5+k) * time.Millisecond, Status: 200, Backend: be, ConnReq: perConn[be], ServerTotal: -1}
			seq++
			// One connection per backend until it closes: ids 10n+backend.
			r.Conn = 10*conn[be] + uint64(be[len(be)-1]-'a') + 1
			if recycle > 0 && perConn[be] == recycle {
				r.Close = client.CloseServer
				perConn[be] = 0
				conn[be]++
			}
			run.Add(&r)
		}
	}
	run.Finish(10*time.Second, 0)
	return a.Summary()
}

func htmlResult(t *testing.T) *Result {
	t.Helper()
	exps, err := report.ParseExpectations([]string{"min_share>=0.25"})
	if err != nil {
		t.Fatal(err)
	}
	sc := func(name string, maxReq int, share float64, outcome Outcome, verdict string) ScenarioResult {
		s := labSummary(t, share, uint32(maxReq))
		res, ok := report.Check(s, exps)
		return ScenarioResult{Name: name, MaxRequests: maxReq, PodsBefore: 2, PodsAfter: 3, Outcome: outcome, Verdict: verdict,
			ScaleEvents: []ScaleEventJS{{AtSeconds: 4, From: 2, To: 3}}, ExpectOK: ok,
			Run: s, AfterScale: &report.Report{Summary: s, Expectations: res}}
	}
	return &Result{Mode: "fixed", Balancer: PolicyRandom, Seed: 1, Rate: 40, Conns: 4, Duration: 10, Capacity: 150,
		Scenarios: []ScenarioResult{
			sc("max-requests=0", 0, 0, OutcomeStuck, "new pods got 0% of requests (fair 33%)"),
			sc("max-requests=5", 5, 0.3, OutcomeRebalanced, "new pods got 30% of requests (fair 33%)"),
		}}
}

func TestRenderHTMLGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderHTML(&buf, htmlResult(t)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Side by side on the same axes: both columns' requests/s charts have
	// the same ticks, and each marks the scale event.
	charts := regexp.MustCompile(`(?s)<svg class="chart" data-chart="rps".*?</svg>`).FindAllString(page, -1)
	if len(charts) != 2 {
		t.Fatalf("%d requests/s charts, want one per scenario", len(charts))
	}
	ticks := regexp.MustCompile(`<g class="tick">.*?</g>`)
	if a, b := ticks.FindAllString(charts[0], -1), ticks.FindAllString(charts[1], -1); strings.Join(a, "") != strings.Join(b, "") || len(a) == 0 {
		t.Errorf("the scenarios' axes differ:\n%v\n%v", a, b)
	}
	for i, ch := range charts {
		if !strings.Contains(ch, `data-kind="scale"`) {
			t.Errorf("scenario %d: no scale marker", i)
		}
	}
	if !strings.Contains(page, "grid-template-columns:repeat(2,") {
		t.Error("the scenarios are not side by side")
	}
	golden := filepath.Join("testdata", "lab.html")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("HTML differs from %s (go test -update to accept)", golden)
	}
}
