package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kubeStateMetrics are the kube-state-metrics series the dashboard may
// query, as its documentation (docs/horizontalpodautoscaler-metrics.md)
// names them.
var kubeStateMetrics = []string{
	"kube_horizontalpodautoscaler_labels",
	"kube_horizontalpodautoscaler_metadata_generation",
	"kube_horizontalpodautoscaler_spec_max_replicas",
	"kube_horizontalpodautoscaler_spec_min_replicas",
	"kube_horizontalpodautoscaler_spec_target_metric",
	"kube_horizontalpodautoscaler_status_condition",
	"kube_horizontalpodautoscaler_status_current_replicas",
	"kube_horizontalpodautoscaler_status_desired_replicas",
}

// metricNames reads the metric families a /metrics page declares; a
// histogram's series add _bucket, _sum and _count.
func metricNames(url string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+s] = true
				}
			}
		}
	}
	return names, sc.Err()
}

// TestGrafanaDashboard: deploy/grafana's dashboard is valid JSON, every
// query names only metrics the real kaload binaries export (scraped from
// kaload serve and from a running kaload hammer --metrics-addr) or that
// kube-state-metrics documents, and every panel has a query.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(repoRoot + "/deploy/grafana/kaload-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID, Title string
		Panels     []struct {
			ID      int
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name, Type string
				Query      json.RawMessage
			}
		}
		Annotations struct{ List []struct{ Expr string } }
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("not valid JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard lacks uid, title or panels")
	}

	// The metrics kaload really exports: a server, and a hammer against it.
	srv, err := startServe(t, nil, []string{"serve", "--listen=127.0.0.1:0", "--hostname=pod-a", "--max-requests=5"})
	if err != nil {
		t.Fatalf("kaload serve: %v", err)
	}
	known, err := metricNames("http://" + srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	// Two hammers: one against the server, one against a closed port (its
	// errors are the only way kaload_hammer_errors_total gets a series).
	for _, target := range []string{"http://" + srv.addr + "/", "http://127.0.0.1:1/"} {
		for n := range hammerMetrics(t, target) {
			known[n] = true
		}
	}
	for _, n := range kubeStateMetrics {
		known[n] = true
	}

	// Identifiers that name series: the kaload_ and kube_ families, and any
	// other identifier used as a selector (followed by { or [).
	ident := regexp.MustCompile(`"[^"]*"|[a-zA-Z_:][a-zA-Z0-9_:]*\s*[{\[]?`)
	check := func(where, expr string) {
		var named []string
		for _, tok := range ident.FindAllString(expr, -1) {
			if strings.HasPrefix(tok, `"`) {
				continue // a label value
			}
			name := strings.TrimRight(tok, " \t{[")
			if strings.HasPrefix(name, "kaload_") || strings.HasPrefix(name, "kube_") || strings.HasSuffix(tok, "{") || strings.HasSuffix(tok, "[") {
				named = append(named, name)
			}
		}
		if len(named) == 0 {
			t.Errorf("%s: query %q names no metric", where, expr)
		}
		for _, n := range named {
			if !known[n] {
				t.Errorf("%s: %s is neither exported by kaload nor documented by kube-state-metrics", where, n)
			}
		}
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check(fmt.Sprintf("panel %q", p.Title), tg.Expr)
			queries++
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		check("variable "+v.Name, q.Query)
	}
	for _, a := range dash.Annotations.List {
		check("annotation", a.Expr)
	}
	// The hammer's per-pod share and the HPA are the point of the dashboard.
	for _, want := range []string{"kaload_hammer_requests_total", "kaload_requests_total", "kube_horizontalpodautoscaler_status_current_replicas"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the dashboard never queries %s", want)
		}
	}
	if queries < 8 {
		t.Errorf("%d queries", queries)
	}
}

// hammerMetrics runs kaload hammer --metrics-addr against url and returns
// the metric names it serves mid-run.
func hammerMetrics(t *testing.T, url string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hammer := exec.CommandContext(ctx, kaloadBin, "hammer", "--url="+url, "--duration=2s", "--quiet",
		"--label=grafana", "--metrics-addr=127.0.0.1:0")
	stderr, err := hammer.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hammer.Start(); err != nil {
		t.Fatal(err)
	}
	defer hammer.Wait()
	sc := bufio.NewScanner(stderr)
	var metricsURL string
	for metricsURL == "" && sc.Scan() {
		if m := regexp.MustCompile(`metrics on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			metricsURL = m[1]
		}
	}
	go func() {
		for sc.Scan() { // drain stderr so the hammer never blocks on it
		}
	}()
	if metricsURL == "" {
		t.Fatalf("kaload hammer %s did not say where its metrics are", url)
	}
	time.Sleep(300 * time.Millisecond) // some requests, so every vector has series
	names, err := metricNames(metricsURL)
	if err != nil {
		t.Fatalf("scrape the hammer: %v", err)
	}
	return names
}
