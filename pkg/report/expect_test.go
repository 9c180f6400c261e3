package report

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

func TestParseExpectation(t *testing.T) {
	tests := []struct {
		expr   string
		metric string
		arg    string
		op     string
		value  float64
	}{
		{"backends>=2", "backends", "", ">=", 2},
		{"min_share>=0.3", "min_share", "", ">=", 0.3},
		{"max_share<=0.6", "max_share", "", "<=", 0.6},
		{"jain>=0.9", "jain", "", ">=", 0.9},
		{"errors==0", "errors", "", "==", 0},
		{"error_rate<0.01", "error_rate", "", "<", 0.01},
		{"p99<50ms", "p99", "", "<", 0.05},
		{"rps>=1000", "rps", "", ">=", 1000},
		{"share(pod-a)<=0.6", "share", "pod-a", "<=", 0.6},
		{"requests_per_connection<=5", "requests_per_connection", "", "<=", 5},
		{"rebalance<5s", "rebalance", "", "<", 5},
		{" p50 < 1.5ms ", "p50", "", "<", 0.0015},
		{"min_share >= 30%", "min_share", "", ">=", 0.3},
		{"errors=0", "errors", "", "==", 0},
		{"errors!=3", "errors", "", "!=", 3},
		{"share( a.b-c_0 )>0", "share", "a.b-c_0", ">", 0},
		{"max>1m", "max", "", ">", 60},
		{"requests>1e6", "requests", "", ">", 1e6},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			x, err := ParseExpectation(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if x.Metric != tt.metric || x.Arg != tt.arg || x.Op != tt.op || math.Abs(x.Value-tt.value) > 1e-12 || x.Expr != tt.expr {
				t.Errorf("got %+v", x)
			}
		})
	}
}

func TestParseExpectationErrors(t *testing.T) {
	tests := []struct{ expr, msg string }{
		{"", "no comparison operator"},
		{"backends", "no comparison operator"},
		{"nope>1", `unknown metric "nope"`},
		{"backends=>2", `unknown operator "=>"`},
		{"backends<>2", `unknown operator "<>"`},
		{">=2", "missing metric"},
		{"backends>=", "missing value"},
		{"backends>=two", "needs a number"},
		{"p99<50", "needs a duration with a unit"},
		{"rebalance<soon", "needs a duration"},
		{"share<=0.5", "share needs a backend name"},
		{"share()<=0.5", "share needs a backend name"},
		{"share(a<=0.5", "unclosed parenthesis"},
		{"jain(x)>=1", "only share, sockets and socket_share take an argument"},
		{"sockets>=1", "sockets needs a backend name"},
		{"jain>=NaN", "needs a number"},
		{"jain>=Inf", "needs a number"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := ParseExpectation(tt.expr)
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v is not an *ExprError", err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "valid metrics: requests, errors,") ||
				!strings.Contains(err.Error(), "share(NAME)") {
				t.Errorf("error %q does not say %q and list the metrics", err, tt.msg)
			}
		})
	}
	if _, err := ParseExpectations([]string{"jain>=0.9", "bogus<1"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("ParseExpectations did not report the bad one: %v", err)
	}
}

func TestEvaluate(t *testing.T) {
	a := NewAggregator(Options{})
	scaleUp(a, []int{2, 5, 6, 7, 7}) // hand-checked in TestRebalance
	s := a.Summary()
	tests := []struct {
		expr   string
		ok     bool
		actual string
	}{
		{"backends>=2", true, "3"},
		{"backends>3", false, "3"},
		{"min_share>=0.3", false, "0.135"},
		{"max_share<=0.6", true, "0.44"},
		{"jain>=0.9", false, "0.849365"},
		{"errors==0", true, "0"},
		{"error_rate<0.01", true, "0"},
		{"p99<50ms", true, "10.007ms"},
		{"p99<5ms", false, "10.007ms"},
		{"rps>=1000", false, "20.275"},
		{"share(pod-a)<=0.6", true, "0.44"},
		{"requests_per_connection<=5", false, "66.667"},
		{"rebalance<5s", true, "3s"},
		{"rebalance<2s", false, "3s"},
		{"requests==200", true, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			x, err := ParseExpectation(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			r := x.Evaluate(s)
			if r.OK != tt.ok || r.Actual != tt.actual || r.Expr != tt.expr || r.Value == nil {
				t.Errorf("got %+v, want ok %v actual %s", r, tt.ok, tt.actual)
			}
		})
	}

	exps, err := ParseExpectations([]string{"backends>=2", "rebalance<2s"})
	if err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprintf("%+v", *s)
	res, ok := Check(s, exps)
	if ok || len(res) != 2 || !res[0].OK || res[1].OK {
		t.Errorf("Check = %+v", res)
	}
	if after := fmt.Sprintf("%+v", *s); after != before {
		t.Error("Check changed the summary")
	}
}

func TestEvaluateRebalanceEdges(t *testing.T) {
	never := NewAggregator(Options{})
	scaleUp(never, []int{1, 1, 1, 1, 1})
	x, _ := ParseExpectation("rebalance<5s")
	if r := x.Evaluate(never.Summary()); r.OK || r.Actual != "never" || r.Value != nil {
		t.Errorf("never: %+v", r)
	}
	steady := NewAggregator(Options{To: 5 * time.Second})
	scaleUp(steady, []int{1, 1, 1, 1, 1})
	if r := x.Evaluate(steady.Summary()); r.OK || r.Status != StatusNoData || r.Actual != "no data: no backend appeared mid-run" {
		t.Errorf("no scale-up: %+v", r)
	}
}

// Every metric: with data it evaluates; without data it is NO DATA (not
// met) with the reason; an expression that cannot be true or false by
// construction is an *ExprError (exit 2 in the commands).
func TestEveryMetricNeedsData(t *testing.T) {
	scaled := NewAggregator(Options{})
	scaleUp(scaled, []int{2, 5, 6, 7, 7}) // pod-a, pod-b from 0s, pod-c from 3s: hand-checked in TestRebalance
	withData := scaled.Summary()
	withData.Unsent = new(uint64) // as an open-model run that kept its rate would say

	empty := NewAggregator(Options{From: 10 * time.Second}) // a 4s run judged from 10s
	newFeeder(empty, 0).add("pod-a", 0, 4*time.Second, 40)
	inEmpty := "no requests in the window 10s..end"

	failed := NewAggregator(Options{})
	for i := range 5 {
		failed.addT(&client.Result{Start: time.Duration(i) * time.Second, Err: "dial tcp 127.0.0.1:1: connect: connection refused", ServerTotal: -1})
	}
	allFailed := "no responses: all 5 requests failed"

	tests := []struct {
		metric      string
		expr        string  // with data
		status      Status  // with data
		value       float64 // with data
		noData      *Summary
		noDataWhy   string
		impossible  string
		impossibleM string
	}{
		{"requests", "requests>=100", StatusPass, 200, nil, "", "requests<0", "can never be true"},
		{"errors", "errors==0", StatusPass, 0, empty.Summary(), inEmpty, "errors>=0", "can never be false"},
		{"error_rate", "error_rate<1%", StatusPass, 0, empty.Summary(), inEmpty, "error_rate>1", "can never be true"},
		{"rps", "rps>=10", StatusPass, 20.275, empty.Summary(), inEmpty, "rps<0", "can never be true"},
		{"connections", "connections<=3", StatusPass, 3, empty.Summary(), inEmpty, "connections>=0", "can never be false"},
		{"requests_per_connection", "requests_per_connection<=5", StatusFail, 66.667, failed.Summary(), "no connection was opened", "requests_per_connection<-1", "can never be true"},
		{"backends", "backends>=3", StatusPass, 3, empty.Summary(), inEmpty, "backends>=-1", "can never be false"},
		{"min_share", "min_share>=0.3", StatusFail, 0.135, empty.Summary(), inEmpty, "min_share>=2", "can never be true"},
		{"max_share", "max_share<=0.6", StatusPass, 0.44, failed.Summary(), "no backend answered: all 5 requests failed", "max_share<=100%", "can never be false"},
		{"jain", "jain>=0.9", StatusFail, 0.849365, empty.Summary(), inEmpty, "jain>1.5", "can never be true"},
		{"cv", "cv<1", StatusPass, 0.421129, failed.Summary(), "no backend answered: all 5 requests failed", "cv<0", "can never be true"},
		{"share", "share(pod-a)<=0.6", StatusPass, 0.44, withData, "no backend named pod-A; backends: pod-a, pod-b, pod-c", "share(pod-a)<=1", "can never be false"},
		{"p50", "p50<50ms", StatusPass, 0.005003, failed.Summary(), allFailed, "p50<-1ms", "can never be true"},
		{"p90", "p90<50ms", StatusPass, 0.009007, empty.Summary(), inEmpty, "p90>=0s", "can never be false"},
		{"p99", "p99<50ms", StatusPass, 0.010007, failed.Summary(), allFailed, "p99<0s", "can never be true"},
		{"max", "max<5ms", StatusFail, 0.01, failed.Summary(), allFailed, "max!=-1s", "can never be false"},
		{"unsent", "unsent==0", StatusPass, 0, failed.Summary(), "unsent requests are counted only with --rate, by kaload versions that count them", "unsent<0", "can never be true"},
		{"rebalance", "rebalance<10s", StatusPass, 3, failed.Summary(), "no backend appeared mid-run", "rebalance<0s", "can never be true"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.metric] = true
		t.Run(tt.metric, func(t *testing.T) {
			x, err := ParseExpectation(tt.expr)
			if err != nil || x.Metric != tt.metric {
				t.Fatalf("parse %s: %+v %v", tt.expr, x, err)
			}
			r := x.Evaluate(withData)
			if r.Status != tt.status || r.OK != (tt.status == StatusPass) || r.Value == nil || !near(*r.Value, tt.value) {
				t.Errorf("with data: %+v, want %s value %v", r, tt.status, tt.value)
			}
			if tt.noData != nil {
				nx := x
				if tt.metric == "share" {
					nx, _ = ParseExpectation("share(pod-A)<=0.6")
				}
				r := nx.Evaluate(tt.noData)
				if r.Status != StatusNoData || r.OK || r.Value != nil || r.Reason != tt.noDataWhy || r.Actual != "no data: "+tt.noDataWhy {
					t.Errorf("without data: %+v, want NO DATA because %q", r, tt.noDataWhy)
				}
			}
			_, err = ParseExpectation(tt.impossible)
			var ee *ExprError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.impossibleM) {
				t.Errorf("%s: error %v, want an *ExprError saying %q", tt.impossible, err, tt.impossibleM)
			}
		})
	}
	// The socket metrics have their own hand-computed tests (sockets_test.go).
	covered["sockets"], covered["socket_share"], covered["min_socket_share"] = true, true, true
	// The stage metrics too (stages_test.go).
	for _, m := range []string{"decision_to_ready", "ready_to_endpoint", "endpoint_to_first_request", "ready_to_fair_share", "decision_to_fair_share"} {
		covered[m] = true
	}
	for _, m := range metrics {
		if !covered[m.name] {
			t.Errorf("metric %s has no row in this table", m.name)
		}
	}
}

// The four vacuous PASSes of issue 10, each now not met or refused.
func TestNoVacuousPass(t *testing.T) {
	two := NewAggregator(Options{})
	f := newFeeder(two, 0)
	f.add("pod-a", 0, 4*time.Second, 40)
	f.add("pod-b", 0, 4*time.Second, 40)
	late := NewAggregator(Options{From: 10 * time.Second})
	newFeeder(late, 0).add("pod-a", 0, 4*time.Second, 40)

	for _, tt := range []struct {
		s      *Summary
		expr   string
		reason string
	}{
		{two.Summary(), "share(pod-A)<=0.6", "no backend named pod-A; backends: pod-a, pod-b"},
		{late.Summary(), "p99<50ms", "no requests in the window 10s..end"},
		{late.Summary(), "error_rate<1%", "no requests in the window 10s..end"},
		{two.Summary(), "rebalance<10s", "no backend appeared mid-run"},
	} {
		x, err := ParseExpectation(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		res, ok := Check(tt.s, []Expectation{x})
		if ok || res[0].Status != StatusNoData || res[0].Reason != tt.reason {
			t.Errorf("%s: ok %v %+v, want NO DATA: %s", tt.expr, ok, res[0], tt.reason)
		}
	}
	if _, err := ParseExpectation("min_share>=2"); err == nil {
		t.Error("min_share>=2 accepted; a share cannot exceed 1")
	}
}

func FuzzParseExpectation(f *testing.F) {
	for _, s := range []string{"backends>=2", "min_share>=0.3", "p99<50ms", "share(pod-a)<=0.6", "rebalance<5s",
		"error_rate<1%", "share((x))>1", "x<<=>!1", "share(a)(b)<1", ""} {
		f.Add(s)
	}
	s := &Summary{Backends: []BackendSummary{{Name: "pod-a", Share: 1}}}
	f.Fuzz(func(t *testing.T, expr string) {
		x, err := ParseExpectation(expr)
		if err != nil {
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("%q: error %v is not an *ExprError", expr, err)
			}
			return
		}
		if lookupMetric(x.Metric) == nil || math.IsNaN(x.Value) {
			t.Fatalf("%q parsed to %+v", expr, x)
		}
		x.Evaluate(s)
		// The canonical form parses to the same expectation.
		canon := x.Metric
		if x.Arg != "" {
			canon += "(" + x.Arg + ")"
		}
		canon += x.Op + "0.5" // inside every metric's range
		if lookupMetric(x.Metric).kind == kindDuration {
			canon += "s"
		}
		y, err := ParseExpectation(canon)
		if err != nil || y.Metric != x.Metric || y.Arg != x.Arg || y.Op != x.Op {
			t.Fatalf("%q → %q → %+v, %v", expr, canon, y, err)
		}
	})
}
