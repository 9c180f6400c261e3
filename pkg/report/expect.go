package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Expectation is one parsed --expect expression, e.g. "p99<50ms" or "share(pod-a)<=0.6".
type Expectation struct {
	Expr   string  // as written
	Metric string  // e.g. "p99", "share"
	Arg    string  // the backend of share(NAME); empty otherwise
	Op     string  // one of < <= > >= == !=
	Value  float64 // seconds for duration metrics
}

// ExpectResult is an evaluated expectation; Actual is human readable, Value
// is machine readable (seconds for durations; null when infinite).
type ExpectResult struct {
	Expr   string   `json:"expr"`
	OK     bool     `json:"ok"`
	Actual string   `json:"actual"`
	Value  *float64 `json:"value"`
}

// ExprError is a malformed expression or an unknown metric: a usage error.
type ExprError struct {
	Expr string
	Msg  string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("bad expectation %q: %s (valid metrics: %s)", e.Expr, e.Msg, strings.Join(MetricNames(), ", "))
}

type metricKind uint8

const (
	kindNumber metricKind = iota
	kindDuration
)

type metric struct {
	name  string
	kind  metricKind
	help  string
	value func(s *Summary, arg string) float64 // durations in seconds
}

var metrics = []metric{
	{"requests", kindNumber, "requests that ended", func(s *Summary, _ string) float64 { return float64(s.Requests) }},
	{"errors", kindNumber, "failed requests", func(s *Summary, _ string) float64 { return float64(s.Errors) }},
	{"error_rate", kindNumber, "errors / requests", func(s *Summary, _ string) float64 { return s.ErrorRate }},
	{"rps", kindNumber, "requests per second", func(s *Summary, _ string) float64 { return s.RPS }},
	{"connections", kindNumber, "connections used", func(s *Summary, _ string) float64 { return float64(s.Connections) }},
	{"requests_per_connection", kindNumber, "requests / connections", func(s *Summary, _ string) float64 { return s.RequestsPerConnection }},
	{"backends", kindNumber, "backends that answered", func(s *Summary, _ string) float64 { return float64(len(s.Backends)) }},
	{"min_share", kindNumber, "smallest backend share (0..1)", func(s *Summary, _ string) float64 { return s.Fairness.MinShare }},
	{"max_share", kindNumber, "largest backend share (0..1)", func(s *Summary, _ string) float64 { return s.Fairness.MaxShare }},
	{"jain", kindNumber, "Jain's fairness index (1 = even)", func(s *Summary, _ string) float64 { return s.Fairness.Jain }},
	{"cv", kindNumber, "coefficient of variation of requests per backend", func(s *Summary, _ string) float64 { return s.Fairness.CV }},
	{"share", kindNumber, "share(NAME): one backend's share (0..1)", func(s *Summary, arg string) float64 {
		for _, b := range s.Backends {
			if b.Name == arg {
				return b.Share
			}
		}
		return 0
	}},
	{"p50", kindDuration, "median latency", func(s *Summary, _ string) float64 { return s.Latency.P50 / 1e3 }},
	{"p90", kindDuration, "90th percentile latency", func(s *Summary, _ string) float64 { return s.Latency.P90 / 1e3 }},
	{"p99", kindDuration, "99th percentile latency", func(s *Summary, _ string) float64 { return s.Latency.P99 / 1e3 }},
	{"max", kindDuration, "largest latency", func(s *Summary, _ string) float64 { return s.Latency.Max / 1e3 }},
	{"rebalance", kindDuration, "slowest time for a new backend to reach its fair share", func(s *Summary, _ string) float64 {
		d := s.RebalanceWorst()
		if d == time.Duration(math.MaxInt64) {
			return math.Inf(1)
		}
		return d.Seconds()
	}},
}

// MetricNames lists the metrics an expectation may name, share as share(NAME).
func MetricNames() []string {
	names := make([]string, len(metrics))
	for i, m := range metrics {
		names[i] = m.name
		if m.name == "share" {
			names[i] = "share(NAME)"
		}
	}
	return names
}

func lookupMetric(name string) *metric {
	for i := range metrics {
		if metrics[i].name == name {
			return &metrics[i]
		}
	}
	return nil
}

// ParseExpectations parses every expression; the first bad one is returned
// as an *ExprError.
func ParseExpectations(exprs []string) ([]Expectation, error) {
	out := make([]Expectation, 0, len(exprs))
	for _, e := range exprs {
		x, err := ParseExpectation(e)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// ParseExpectation parses "METRIC OP VALUE". VALUE is a number, a percentage
// ("30%") or, for latency and rebalance, a duration with a unit ("50ms").
func ParseExpectation(expr string) (Expectation, error) {
	bad := func(format string, args ...any) (Expectation, error) {
		return Expectation{}, &ExprError{Expr: expr, Msg: fmt.Sprintf(format, args...)}
	}
	s := strings.TrimSpace(expr)
	// The operator is the first run of <, >, =, ! outside share(...).
	start := -1
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && strings.IndexByte("<>=!", c) >= 0:
			start = i
		}
		if start >= 0 {
			break
		}
	}
	if start < 0 && depth > 0 {
		return bad("unclosed parenthesis")
	}
	if start < 0 {
		return bad("no comparison operator (use one of < <= > >= == !=)")
	}
	end := start
	for end < len(s) && strings.IndexByte("<>=!", s[end]) >= 0 {
		end++
	}
	x := Expectation{Expr: expr, Op: s[start:end]}
	switch x.Op {
	case "<", "<=", ">", ">=", "==", "!=":
	case "=":
		x.Op = "=="
	default:
		return bad("unknown operator %q (use one of < <= > >= == !=)", x.Op)
	}
	lhs := strings.TrimSpace(s[:start])
	rhs := strings.TrimSpace(s[end:])
	if lhs == "" {
		return bad("missing metric before %q", x.Op)
	}
	if rhs == "" {
		return bad("missing value after %q", x.Op)
	}
	name := lhs
	if open := strings.IndexByte(lhs, '('); open >= 0 {
		if !strings.HasSuffix(lhs, ")") {
			return bad("unclosed parenthesis in %q", lhs)
		}
		name = strings.TrimSpace(lhs[:open])
		x.Arg = strings.TrimSpace(lhs[open+1 : len(lhs)-1])
		if name != "share" {
			return bad("only share takes an argument, as in share(pod-a)")
		}
		if x.Arg == "" || strings.ContainsAny(x.Arg, "()") {
			return bad("share needs a backend name, as in share(pod-a)")
		}
	} else if name == "share" {
		return bad("share needs a backend name, as in share(pod-a)")
	}
	m := lookupMetric(name)
	if m == nil {
		return bad("unknown metric %q", name)
	}
	x.Metric = m.name
	switch m.kind {
	case kindDuration:
		d, err := time.ParseDuration(rhs)
		if err != nil {
			return bad("%s needs a duration with a unit, like 50ms or 2s; got %q", name, rhs)
		}
		x.Value = d.Seconds()
	default:
		v, err := parseNumber(rhs)
		if err != nil {
			return bad("%s needs a number (or a percentage like 30%%); got %q", name, rhs)
		}
		x.Value = v
	}
	return x, nil
}

func parseNumber(s string) (float64, error) {
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = strings.TrimSpace(t), 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a finite number: %q", s)
	}
	return v * scale, nil
}

// Check evaluates every expectation against s and reports whether all were
// met. It does not change s.
func Check(s *Summary, exps []Expectation) ([]ExpectResult, bool) {
	out := make([]ExpectResult, 0, len(exps))
	ok := true
	for _, x := range exps {
		r := x.Evaluate(s)
		ok = ok && r.OK
		out = append(out, r)
	}
	return out, ok
}

// Evaluate compares the expectation's metric in s with its value.
func (x Expectation) Evaluate(s *Summary) ExpectResult {
	m := lookupMetric(x.Metric)
	if m == nil {
		return ExpectResult{Expr: x.Expr, Actual: "unknown metric"}
	}
	v := m.value(s, x.Arg)
	r := ExpectResult{Expr: x.Expr, OK: compare(v, x.Op, x.Value)}
	if !math.IsInf(v, 0) && !math.IsNaN(v) {
		r.Value = &v
	}
	switch {
	case math.IsInf(v, 1):
		r.Actual = "never"
	case m.kind == kindDuration:
		r.Actual = fmtDuration(v)
	default:
		r.Actual = strconv.FormatFloat(round(v, 6), 'f', -1, 64)
	}
	if m.name == "rebalance" && len(s.Rebalance) == 0 {
		r.Actual += " (no backend appeared mid-run)"
	}
	return r
}

func compare(v float64, op string, want float64) bool {
	switch op {
	case "<":
		return v < want
	case "<=":
		return v <= want
	case ">":
		return v > want
	case ">=":
		return v >= want
	case "==":
		return v == want
	case "!=":
		return v != want
	}
	return false
}

// fmtDuration prints seconds with a unit a person expects for its size.
func fmtDuration(sec float64) string {
	switch {
	case sec == 0:
		return "0s"
	case sec < 1e-3:
		return strconv.FormatFloat(round(sec*1e6, 1), 'f', -1, 64) + "µs"
	case sec < 1:
		return strconv.FormatFloat(round(sec*1e3, 3), 'f', -1, 64) + "ms"
	default:
		return strconv.FormatFloat(round(sec, 3), 'f', -1, 64) + "s"
	}
}
