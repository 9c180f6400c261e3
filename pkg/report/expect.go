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

// Status is the outcome of an expectation.
type Status string

const (
	StatusPass   Status = "PASS"
	StatusFail   Status = "FAIL"
	StatusNoData Status = "NO DATA" // the metric was not measured: not met
)

// ExpectResult is an evaluated expectation; Actual is human readable, Value
// is machine readable (seconds for durations; null when infinite or not
// measured). OK is true only for PASS; NO DATA says why in Reason.
type ExpectResult struct {
	Expr   string   `json:"expr"`
	OK     bool     `json:"ok"`
	Status Status   `json:"status"`
	Actual string   `json:"actual"`
	Value  *float64 `json:"value"`
	Reason string   `json:"reason,omitempty"`
}

// ExprError is a malformed expression, an unknown metric or a comparison
// that cannot be true or false by construction: a usage error.
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

// A metric's value: v, or why it was not measured (noData non-empty).
type metricFunc func(s *Summary, arg string) (v float64, noData string)

type metric struct {
	name   string
	kind   metricKind
	help   string
	lo, hi float64 // every value the metric can take lies in lo..hi
	value  metricFunc
}

var inf = math.Inf(1)

// needRequests wraps a metric that means nothing without requests in the window.
func needRequests(f func(s *Summary) float64) metricFunc {
	return func(s *Summary, _ string) (float64, string) {
		if s.Requests == 0 {
			return 0, "no requests in the window " + windowRange(s.Window)
		}
		return f(s), ""
	}
}

func needFairness(f func(x *Fairness) float64) metricFunc {
	return func(s *Summary, _ string) (float64, string) {
		if s.Fairness == nil {
			return 0, s.FairnessNoData
		}
		return f(s.Fairness), ""
	}
}

func needLatency(f func(l *Latency) float64) metricFunc {
	return func(s *Summary, _ string) (float64, string) {
		switch {
		case s.Requests == 0:
			return 0, "no requests in the window " + windowRange(s.Window)
		case s.Latency == nil:
			return 0, fmt.Sprintf("no responses: all %d requests failed", s.Requests)
		}
		return f(s.Latency) / 1e3, ""
	}
}

var metrics = []metric{
	{"requests", kindNumber, "requests that ended", 0, inf, func(s *Summary, _ string) (float64, string) { return float64(s.Requests), "" }},
	{"errors", kindNumber, "failed requests", 0, inf, needRequests(func(s *Summary) float64 { return float64(s.Errors) })},
	{"error_rate", kindNumber, "errors / requests (0..1)", 0, 1, needRequests(func(s *Summary) float64 { return s.ErrorRate })},
	{"rps", kindNumber, "requests per second", 0, inf, needRequests(func(s *Summary) float64 { return s.RPS })},
	{"connections", kindNumber, "connections used", 0, inf, needRequests(func(s *Summary) float64 { return float64(s.Connections) })},
	{"requests_per_connection", kindNumber, "requests / connections", 0, inf, func(s *Summary, _ string) (float64, string) {
		if s.RequestsPerConnection == nil {
			if s.Requests == 0 {
				return 0, "no requests in the window " + windowRange(s.Window)
			}
			return 0, "no connection was opened"
		}
		return *s.RequestsPerConnection, ""
	}},
	{"backends", kindNumber, "backends that answered", 0, inf, needRequests(func(s *Summary) float64 {
		n := 0
		for _, b := range s.Backends {
			if b.Requests > 0 {
				n++
			}
		}
		return float64(n)
	})},
	{"min_share", kindNumber, "smallest backend share (0..1)", 0, 1, needFairness(func(f *Fairness) float64 { return f.MinShare })},
	{"max_share", kindNumber, "largest backend share (0..1)", 0, 1, needFairness(func(f *Fairness) float64 { return f.MaxShare })},
	{"jain", kindNumber, "Jain's fairness index (1 = even)", 0, 1, needFairness(func(f *Fairness) float64 { return f.Jain })},
	{"cv", kindNumber, "coefficient of variation of requests per backend", 0, inf, needFairness(func(f *Fairness) float64 { return f.CV })},
	{"share", kindNumber, "share(NAME): one backend's share (0..1)", 0, 1, func(s *Summary, arg string) (float64, string) {
		var names []string
		for _, b := range s.Backends {
			if b.Name == arg {
				if s.Fairness == nil {
					return 0, s.FairnessNoData
				}
				return b.Share, ""
			}
			names = append(names, b.Name)
		}
		if len(names) == 0 {
			if s.FairnessNoData != "" {
				return 0, s.FairnessNoData
			}
			return 0, fmt.Sprintf("no backend named %s: no backend answered", arg)
		}
		return 0, fmt.Sprintf("no backend named %s; backends: %s", arg, strings.Join(names, ", "))
	}},
	{"sockets", kindNumber, "sockets(NAME): WebSockets one backend holds at the end", 0, inf, func(s *Summary, arg string) (float64, string) {
		b, why := socketBackend(s, arg)
		if b == nil {
			return 0, why
		}
		return float64(b.HeldAtEnd), ""
	}},
	{"socket_share", kindNumber, "socket_share(NAME): one backend's share of the WebSockets held at the end (0..1)", 0, 1, func(s *Summary, arg string) (float64, string) {
		b, why := socketBackend(s, arg)
		switch {
		case b == nil:
			return 0, why
		case s.Sockets.HeldAtEnd == 0:
			return 0, s.Sockets.NoData
		}
		return b.Share, ""
	}},
	{"min_socket_share", kindNumber, "smallest backend share of the WebSockets held at the end (0..1)", 0, 1, func(s *Summary, _ string) (float64, string) {
		switch {
		case s.Sockets == nil:
			return 0, "no WebSocket socket records in the window (a ws:// run records them)"
		case s.Sockets.MinShare == nil:
			return 0, s.Sockets.NoData
		}
		return *s.Sockets.MinShare, ""
	}},
	{"unsent", kindNumber, "requests due but never sent (open model, --rate)", 0, inf, func(s *Summary, _ string) (float64, string) {
		if s.Unsent == nil {
			return 0, "unsent requests are counted only with --rate, by kaload versions that count them"
		}
		return float64(*s.Unsent), ""
	}},
	{"p50", kindDuration, "median latency", 0, inf, needLatency(func(l *Latency) float64 { return l.P50 })},
	{"p90", kindDuration, "90th percentile latency", 0, inf, needLatency(func(l *Latency) float64 { return l.P90 })},
	{"p99", kindDuration, "99th percentile latency", 0, inf, needLatency(func(l *Latency) float64 { return l.P99 })},
	{"max", kindDuration, "largest latency", 0, inf, needLatency(func(l *Latency) float64 { return l.Max })},
	{"decision_to_ready", kindDuration, "slowest new pod from the scale decision to Ready (needs events)", 0, inf, stageMetric(0, 2, "scale decision")},
	{"ready_to_endpoint", kindDuration, "slowest new pod from Ready to its endpoint ready", 0, inf, stageMetric(2, 3, "Ready")},
	{"endpoint_to_first_request", kindDuration, "slowest new pod from endpoint ready to its first request", 0, inf, stageMetric(3, 4, "endpoint ready")},
	{"ready_to_fair_share", kindDuration, "slowest new pod from Ready to its fair share", 0, inf, stageMetric(2, 5, "Ready")},
	{"decision_to_fair_share", kindDuration, "slowest new pod from the scale decision to its fair share", 0, inf, stageMetric(0, 5, "scale decision")},
	{"rebalance", kindDuration, "slowest time for a new backend to reach its fair share", 0, inf, func(s *Summary, _ string) (float64, string) {
		if len(s.Rebalance) == 0 {
			if s.Requests == 0 {
				return 0, "no requests in the window " + windowRange(s.Window)
			}
			return 0, "no backend appeared mid-run"
		}
		d := s.RebalanceWorst()
		if d == time.Duration(math.MaxInt64) {
			return math.Inf(1), ""
		}
		return d.Seconds(), ""
	}},
}

// takesArg names the metrics about one backend, written metric(NAME).
var takesArg = map[string]bool{"share": true, "sockets": true, "socket_share": true}

// MetricNames lists the metrics an expectation may name, share as share(NAME).
func MetricNames() []string {
	names := make([]string, len(metrics))
	for i, m := range metrics {
		names[i] = m.name
		if takesArg[m.name] {
			names[i] = m.name + "(NAME)"
		}
	}
	return names
}

// socketBackend finds NAME's sockets, or says why there is no figure.
func socketBackend(s *Summary, name string) (*SocketBackend, string) {
	if s.Sockets == nil {
		return nil, "no WebSocket socket records in the window (a ws:// run records them)"
	}
	var names []string
	for i := range s.Sockets.Backends {
		if b := &s.Sockets.Backends[i]; b.Name == name {
			return b, ""
		}
		names = append(names, s.Sockets.Backends[i].Name)
	}
	if len(names) == 0 {
		return nil, fmt.Sprintf("no backend named %s: no socket was opened", name)
	}
	return nil, fmt.Sprintf("no backend named %s holds or held a socket; backends: %s", name, strings.Join(names, ", "))
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
		if !takesArg[name] {
			return bad("only share, sockets and socket_share take an argument, as in share(pod-a)")
		}
		if x.Arg == "" || strings.ContainsAny(x.Arg, "()") {
			return bad("%s needs a backend name, as in %s(pod-a)", name, name)
		}
	} else if takesArg[name] {
		return bad("%s needs a backend name, as in %s(pod-a)", name, name)
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
	canTrue, canFalse := possible(x.Op, x.Value, m.lo, m.hi)
	if !canTrue || !canFalse {
		never := "true"
		if canTrue {
			never = "false"
		}
		return bad("%s can never be %s: %s lies in %s", strings.TrimSpace(expr), never, name, rangeText(m))
	}
	return x, nil
}

// possible reports whether "value OP v" can be true, and can be false, for
// some value in lo..hi.
func possible(op string, v, lo, hi float64) (canTrue, canFalse bool) {
	switch op {
	case "<":
		return lo < v, hi >= v
	case "<=":
		return lo <= v, hi > v
	case ">":
		return hi > v, lo <= v
	case ">=":
		return hi >= v, lo < v
	case "==":
		return lo <= v && v <= hi, lo != hi
	case "!=":
		return lo != hi, lo <= v && v <= hi
	}
	return false, false
}

func rangeText(m *metric) string {
	f := func(v float64) string {
		if m.kind == kindDuration {
			return fmtDuration(v)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if math.IsInf(m.hi, 1) {
		return f(m.lo) + " and above"
	}
	return f(m.lo) + ".." + f(m.hi)
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

// Evaluate compares the expectation's metric in s with its value. A metric
// that was not measured is NO DATA, never a pass.
func (x Expectation) Evaluate(s *Summary) ExpectResult {
	m := lookupMetric(x.Metric)
	if m == nil {
		return ExpectResult{Expr: x.Expr, Status: StatusNoData, Actual: "no data: unknown metric", Reason: "unknown metric " + x.Metric}
	}
	v, noData := m.value(s, x.Arg)
	if noData != "" {
		return ExpectResult{Expr: x.Expr, Status: StatusNoData, Actual: "no data: " + noData, Reason: noData}
	}
	r := ExpectResult{Expr: x.Expr, OK: compare(v, x.Op, x.Value), Status: StatusFail}
	if r.OK {
		r.Status = StatusPass
	}
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
