package report

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
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
		{"jain(x)>=1", "only share takes an argument"},
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
		{"share(pod-z)>0", false, "0"},
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
	if r := x.Evaluate(steady.Summary()); !r.OK || r.Actual != "0s (no backend appeared mid-run)" {
		t.Errorf("no scale-up: %+v", r)
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
		canon += x.Op + "0"
		if lookupMetric(x.Metric).kind == kindDuration {
			canon += "s"
		}
		y, err := ParseExpectation(canon)
		if err != nil || y.Metric != x.Metric || y.Arg != x.Arg || y.Op != x.Op {
			t.Fatalf("%q → %q → %+v, %v", expr, canon, y, err)
		}
	})
}
