package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

// scenario builds one of the three runs issue 10's proof names; every
// figure the test asserts was computed by hand from these loads.
func scenario(t *testing.T, name string) *Report {
	t.Helper()
	var a *Aggregator
	var exprs []string
	switch name {
	case "idle-backend":
		// web-u and web-v 500 requests each over 10s, servers closing every
		// connection after 5 (100 connections each); web-w is known, idle.
		a = NewAggregator(Options{Backends: []string{"web-u", "web-v", "web-w"}})
		f := newFeeder(a, 5)
		f.add("web-u", 0, 10*time.Second, 500)
		f.add("web-v", 0, 10*time.Second, 500)
		exprs = []string{"min_share>=0.2", "share(web-w)>0"}
	case "all-failed":
		// 7 dials refused, one per 1.5s from 0s: nothing answered.
		a = NewAggregator(Options{})
		for i := range 7 {
			a.addT(&client.Result{Start: time.Duration(i) * 1500 * time.Millisecond, Err: "dial tcp 127.0.0.1:9: connect: connection refused", ServerTotal: -1})
		}
		exprs = []string{"p99<50ms", "error_rate<1%", "backends>=1"}
	case "scale-up":
		// 20 requests a second for 10s; pod-c from 5s with 2, 5, 6, 7, 7 of
		// them (hand-checked in TestRebalance); servers close after 10.
		a = NewAggregator(Options{})
		scaleUpWith(newFeeder(a, 10), []int{2, 5, 6, 7, 7})
		exprs = []string{"rebalance<5s", "min_share>=0.1"}
	}
	s := a.Summary()
	exps, err := ParseExpectations(exprs)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Check(s, exps)
	return &Report{Summary: s, Expectations: res}
}

func TestScenarioGolden(t *testing.T) {
	type check struct{ format, want string }
	tests := []struct {
		name   string
		checks []check
		json   func(t *testing.T, m map[string]any)
	}{
		{"idle-backend", []check{
			// Jain = 1000² / (3 · 2·500²) = 0.667; cv = sd(500,500,0)/333.3 = 235.7/333.3 = 0.707.
			{"table", "Fairness: Jain 0.667, min share 0.0%, max share 50.0%, max/min ∞, cv 0.707"},
			{"table", "│ web-w   │        0 │  0.0% │     0 │        - │      0 │          - │         - │      - │      - │       - │       - │"},
			{"table", "web-w never received a connection although the servers closed 200: is it behind the balancer?"},
			{"table", "│ FAIL   │ min_share>=0.2 │ 0      │"},
			{"table", "Connections used: 200 for 1000 requests; 5.00 requests per connection"},
			{"markdown", "| web-w | 0 | 0.0% | 0 | - | 0 | - | - | - | - | - | - | - |"},
			{"markdown", "❌ FAIL | `share(web-w)>0` | 0 |"},
			{"html", "<td>web-w</td><td>0</td><td>0.0%</td><td>0</td><td>-</td><td>0</td><td>-</td><td>-</td><td>-</td>"},
			{"html", "max/min ∞"},
		}, func(t *testing.T, m map[string]any) {
			w := m["backends"].([]any)[2].(map[string]any)
			if w["name"] != "web-w" || w["first_seen_seconds"] != nil || w["last_seen_seconds"] != nil || w["latency"] != nil || w["requests_per_connection"] != nil {
				t.Errorf("idle backend in JSON: %v", w)
			}
			f := m["fairness"].(map[string]any)
			if f["max_min_ratio"] != nil || f["min_share"] != 0.0 || f["jain"] != 0.666667 {
				t.Errorf("fairness %v", f)
			}
			if m["outcome"] != "stuck" {
				t.Errorf("outcome %v", m["outcome"])
			}
		}},
		{"all-failed", []check{
			{"table", "Requests: 7 in 9.00s (0.8/s), errors: 7 (100.0%)"},
			{"table", "connection refused 7: dial tcp 127.0.0.1:9: connect: connection refused (is anything listening at that address?)"},
			{"table", "Latency: no data: none of the 7 requests got a response"},
			{"table", "Fairness: no data: no backend answered: all 7 requests failed"},
			{"table", "│ NO DATA │ p99<50ms      │ no data: no responses: all 7 requests failed │"},
			{"table", "│ FAIL    │ error_rate<1% │ 1  "},
			{"table", "Verdict: no data: no backend answered; all 7 requests failed"},
			{"markdown", "⚠️ NO DATA | `p99<50ms` | no data: no responses: all 7 requests failed |"},
			{"html", "<td class=\"fail\">NO DATA</td><td><code>p99&lt;50ms</code></td>"},
		}, func(t *testing.T, m map[string]any) {
			if m["latency"] != nil || m["fairness"] != nil || m["requests_per_connection"] != nil {
				t.Errorf("placeholder figures: latency %v fairness %v rpc %v", m["latency"], m["fairness"], m["requests_per_connection"])
			}
			ex := m["error_examples"].(map[string]any)
			if ex["connection refused"] != "dial tcp 127.0.0.1:9: connect: connection refused" {
				t.Errorf("error examples %v", ex)
			}
			e := m["expectations"].([]any)[0].(map[string]any)
			if e["status"] != "NO DATA" || e["ok"] != false || e["value"] != nil || e["reason"] != "no responses: all 7 requests failed" {
				t.Errorf("expectation %v", e)
			}
		}},
		{"scale-up", []check{
			// pod-c: 27 of 100 requests after 5s = 27%, fair 1/3; 6 of 20 in
			// the third interval reaches 80% of 1/3 (5.33) and stays: 3s.
			{"table", "Rebalance: pod-c appeared at 5.0s, reached 80% of its fair share after 3.0s (27.0% after it appeared, fair 33.3%)"},
			{"table", "│ PASS   │ rebalance<5s   │ 3s     │"},
			{"table", "│ PASS   │ min_share>=0.1 │ 0.135  │"},
			{"table", "Fairness: Jain 0.849, min share 13.5%, max share 44.0%, max/min 3.26, cv 0.421"},
			{"table", "pod-c appeared at 5.0s and reached its fair share after 3.0s (27.0%, fair 33.3%)"},
			{"markdown", "✅ PASS | `rebalance<5s` | 3s |"},
			{"html", "reached 80% of its fair share after 3.0s"},
		}, func(t *testing.T, m map[string]any) {
			r := m["rebalance"].([]any)[0].(map[string]any)
			if r["backend"] != "pod-c" || r["fair_share_after_seconds"] != 3.0 || r["share_after"] != 0.27 || r["fair_share"] != 0.333333 || r["outcome"] != "rebalanced" {
				t.Errorf("rebalance %v", r)
			}
			if m["outcome"] != "rebalanced" {
				t.Errorf("outcome %v", m["outcome"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scenario(t, tt.name)
			out := map[string]string{}
			for _, f := range []struct{ format, ext string }{{"table", "txt"}, {"json", "json"}, {"markdown", "md"}, {"html", "html"}} {
				var buf bytes.Buffer
				if err := Render(&buf, r, f.format); err != nil {
					t.Fatal(err)
				}
				golden(t, tt.name+"."+f.ext, buf.Bytes())
				out[f.format] = buf.String()
			}
			for _, c := range tt.checks {
				if !strings.Contains(out[c.format], c.want) {
					t.Errorf("%s lacks %q:\n%s", c.format, c.want, out[c.format])
				}
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(out["json"]), &m); err != nil {
				t.Fatal(err)
			}
			tt.json(t, m)
		})
	}
}
