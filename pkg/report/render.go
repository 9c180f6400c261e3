package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Report is what the renderers show: a summary and the results of checking
// expectations against it. Its JSON encoding is the summary's object with
// the key "expectations" added.
type Report struct {
	*Summary
	Expectations []ExpectResult `json:"expectations"`
	// Width is the terminal's columns for the table format: a backend
	// table or chart wider than that takes the compact layout. 0: no limit.
	Width int `json:"-"`
	// Wide keeps the full layout whatever the Width (--wide).
	Wide bool `json:"-"`
}

// format is one output format: its name on the command line, what it is
// for, and its renderer.
type format struct {
	name, help string
	render     func(io.Writer, *Report) error
}

// formats is the one table of output formats; Formats and Render derive from it.
var formats = []format{
	{"table", "", renderTable},
	{"json", "", renderJSON},
	{"markdown", "", renderMarkdown},
	{"csv", "the timeline", renderCSV},
	{"html", "", renderHTML},
}

// Formats lists the names Render accepts, in the order of FormatHelp.
var Formats = func() []string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.name
	}
	return names
}()

// FormatHelp lists the formats in one short line for a flag's help,
// saying what a format is where its name does not.
func FormatHelp() string {
	parts := make([]string, len(formats))
	for i, f := range formats {
		parts[i] = f.name
		if f.help != "" {
			parts[i] += " (" + f.help + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// Render writes r in the named format, one of Formats.
func Render(w io.Writer, r *Report, format string) error {
	for _, f := range formats {
		if f.name == format {
			return f.render(w, r)
		}
	}
	return fmt.Errorf("unknown format %q (valid: %s)", format, strings.Join(Formats, ", "))
}

// renderJSON writes r as one indented JSON object.
func renderJSON(w io.Writer, r *Report) error {
	if r.Expectations == nil {
		r = &Report{Summary: r.Summary, Expectations: []ExpectResult{}} // [] rather than null
	}
	// What an Encoder with SetIndent("", "  ") writes, with the indented
	// copy sized ahead (indenting doubles a timeline's JSON: 1.86-2.03x
	// measured): the Encoder grows its buffers by doubling, 6 MB of garbage
	// for a one-hour timeline's 1 MB.
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	out.Grow(len(b)*9/4 + 1)
	if err := json.Indent(&out, append(b, '\n'), "", "  "); err != nil {
		return err
	}
	_, err = w.Write(out.Bytes())
	return err
}

// errWriter remembers the first write error so rendering code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "ms" }

func secs(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "s" }

func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// secsOr and msOr print "-" for a figure that was not measured.
func secsOr(v *float64) string {
	if v == nil {
		return "-"
	}
	return secs(*v)
}

func latencyCells(l *Latency) []string {
	if l == nil {
		return []string{"-", "-", "-", "-"}
	}
	return []string{ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max)}
}

func latencyLine(s *Summary) string {
	if s.Latency == nil {
		if s.Requests == 0 {
			return "Latency: no data: no requests"
		}
		return fmt.Sprintf("Latency: no data: none of the %d requests got a response", s.Requests)
	}
	l := s.Latency
	return fmt.Sprintf("Latency: p50 %s, p90 %s, p99 %s, max %s", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
}

func fairnessLine(s *Summary) string {
	f := s.Fairness
	if f == nil {
		return "Fairness: no data: " + s.FairnessNoData
	}
	ratio := "∞"
	if f.MaxMinRatio != nil {
		ratio = f2(*f.MaxMinRatio)
	}
	return fmt.Sprintf("Fairness: Jain %.3f, min share %s, max share %s, max/min %s, cv %.3f",
		f.Jain, pct(f.MinShare), pct(f.MaxShare), ratio, f.CV)
}

// ErrorCauses are one line per error kind, most frequent first: its count,
// one message of that kind and, where the cause is plain, what to try.
func (s *Summary) ErrorCauses() []string {
	var out []string
	for _, k := range sortedKeys(s.ErrorKinds) {
		l := fmt.Sprintf("%s %d", k, s.ErrorKinds[k])
		if ex := s.ErrorExamples[k]; ex != "" {
			l += ": " + ex
			if h := errorHint(ex); h != "" {
				l += " (" + h + ")"
			}
		}
		out = append(out, l)
	}
	return out
}

// errorHint names the likely cause of an error message when it is plain.
func errorHint(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "unknown authority") || strings.Contains(m, "certificate is not trusted"):
		return "the server's certificate is not trusted here: --insecure skips the check"
	case strings.Contains(m, "connection refused"):
		return "is anything listening at that address?"
	case strings.Contains(m, "frame too large") || strings.Contains(m, "http2: server sent goaway") && strings.Contains(m, "protocol_error"):
		return "the server does not speak HTTP/2 without TLS: drop --h2c"
	case strings.Contains(m, "malformed http response") && strings.Contains(m, `\x00\x00`):
		return "the server speaks HTTP/2 only: try --h2c"
	case strings.Contains(m, "first record does not look like a tls handshake"):
		return "the server speaks plain HTTP here: use an http:// URL"
	case strings.Contains(m, "server gave http response to https client"):
		return "the server speaks plain HTTP here: use an http:// URL"
	case strings.Contains(m, "no such host"):
		return "the host name does not resolve from here"
	}
	return ""
}

// ServerCountHelp explains the "Server count delta" column.
const ServerCountHelp = `Server count delta: how much a backend's Total-Request header (its own count
of requests from every client) grew over the run: the highest value this run
saw minus the lowest. With this run as its only client it is one less than
the responses that carried the header; more means other clients used the
backend meanwhile, a negative value that it restarted.`

// serverCountNotes says, for every backend whose server count delta is not
// what this run alone explains, by how much and why.
func serverCountNotes(s *Summary) []string {
	var out []string
	for _, b := range s.Backends {
		if b.ServerTotalDelta == nil || b.ServerTotalSeen == 0 {
			continue
		}
		d, own := *b.ServerTotalDelta, int64(b.ServerTotalSeen)-1
		// First and last are by start time: with c requests in flight the
		// server may have counted up to c-1 others before the first and
		// after the last, at each end.
		slack := 2 * int64(s.PerfectConnections)
		if slack <= 0 {
			slack = int64(b.Connections)
		}
		switch {
		case b.Restarted:
			out = append(out, fmt.Sprintf("%s: the server's count went down by %d: it restarted during the run", b.Name, -d))
		case d >= own-slack && d <= own+slack:
		case d > own:
			out = append(out, fmt.Sprintf("%s: the server counted %d more requests than this run sent it between its first and last response: other clients used it, or requests were sent again", b.Name, d-own))
		case d < own:
			out = append(out, fmt.Sprintf("%s: the server counted %d fewer requests than this run got answers from it: several processes answer under one name, or the count was reset", b.Name, own-d))
		}
	}
	return out
}

func backendHeader() []string {
	return []string{"Backend", "Requests", "Share", "Conns", "Req/Conn", "Errors", "First seen", "Last seen", "p50", "p90", "p99", "Max", "Server count delta"}
}

func backendRows(s *Summary) [][]string {
	rows := make([][]string, 0, len(s.Backends))
	for _, b := range s.Backends {
		delta := "-"
		if b.ServerTotalDelta != nil {
			delta = strconv.FormatInt(*b.ServerTotalDelta, 10)
			if b.Restarted {
				delta += " (restarted)"
			}
		}
		row := []string{b.Name, u(b.Requests), pct(b.Share), u(b.Connections), f2or(b.RequestsPerConnection),
			u(b.Errors), secsOr(b.FirstSeenSeconds), secsOr(b.LastSeenSeconds)}
		rows = append(rows, append(append(row, latencyCells(b.Latency)...), delta))
	}
	return rows
}

func expectRows(exps []ExpectResult) [][]string {
	rows := make([][]string, 0, len(exps))
	for _, e := range exps {
		rows = append(rows, []string{string(e.Status), e.Expr, e.Actual})
	}
	return rows
}

func rebalanceLine(r Rebalance) string {
	if r.FairShareAfterSeconds == nil {
		return fmt.Sprintf("%s appeared at %s, never reached 80%% of its fair share (%s after it appeared, fair %s)",
			r.Backend, secs(r.AppearedSeconds), pct(r.ShareAfter), pct(r.FairShare))
	}
	return fmt.Sprintf("%s appeared at %s, reached 80%% of its fair share after %s (%s after it appeared, fair %s)",
		r.Backend, secs(r.AppearedSeconds), secs(*r.FairShareAfterSeconds), pct(r.ShareAfter), pct(r.FairShare))
}

// sortedKeys returns m's keys, largest count first, then by name.
func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if m[ks[i]] != m[ks[j]] {
			return m[ks[i]] > m[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

func countsLine(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func connectionsLine(s *Summary) string {
	l := fmt.Sprintf("Connections used: %d for %d requests", s.Connections, s.Requests)
	if s.PerfectConnections > 0 {
		l += fmt.Sprintf(" (perfect keep-alive would be %d)", s.PerfectConnections)
	}
	if s.RequestsPerConnection != nil {
		l += "; " + f2(*s.RequestsPerConnection) + " requests per connection"
	}
	return l
}

// f2or prints a figure with two decimals, "-" when it was not measured.
func f2or(v *float64) string {
	if v == nil {
		return "-"
	}
	return f2(*v)
}

// unsentLine says when an open-model run could not keep its rate; "" when
// it did or nothing was counted.
func unsentLine(s *Summary) string {
	if s.Unsent == nil || *s.Unsent == 0 {
		return ""
	}
	return fmt.Sprintf("target %s/s not reached: %s requests due but not sent; raise -c",
		strconv.FormatFloat(s.TargetRPS, 'f', -1, 64), thousands(*s.Unsent))
}

// thousands writes n with comma separators: 13267 -> 13,267.
func thousands(n uint64) string {
	d := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func windowLine(s *Summary) string {
	if s.Window.FromSeconds == 0 && s.Window.ToSeconds == 0 {
		return ""
	}
	to := "end"
	if s.Window.ToSeconds > 0 {
		to = secs(s.Window.ToSeconds)
	}
	return fmt.Sprintf("Window: %s to %s", secs(s.Window.FromSeconds), to)
}

// newTable left-aligns the first leftCols columns (names) and right-aligns the rest (numbers).
func newTable(w io.Writer, header []string, leftCols int) *tablewriter.Table {
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight
		if i < leftCols {
			align[i] = tw.AlignLeft
		}
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithHeaderAlignment(tw.AlignCenter),
	)
	t.Header(toAny(header)...)
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func writeTable(w io.Writer, header []string, rows [][]string, leftCols int) error {
	t := newTable(w, header, leftCols)
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return fmt.Errorf("table row: %w", err)
		}
	}
	return t.Render()
}

// renderTable writes the terminal report: totals, backends, fairness,
// timeline chart, rebalance, expectations and the verdict.
func renderTable(w io.Writer, r *Report) error {
	s := r.Summary
	ew := &errWriter{w: w}
	if l := windowLine(s); l != "" {
		ew.printf("%s\n", l)
	}
	if strings.HasPrefix(s.Protocol, "grpc") {
		ew.printf("Protocol: %s (each RPC or stream message counts as a request)\n", s.Protocol)
	}
	ew.printf("Requests: %d in %.2fs (%.1f/s), errors: %d (%s)\n", s.Requests, s.DurationSeconds, s.RPS, s.Errors, pct(s.ErrorRate))
	if l := unsentLine(s); l != "" {
		ew.printf("Rate: %s\n", l)
	}
	if s.Errors > 0 {
		ew.printf("Errors by kind:\n")
		for _, l := range s.ErrorCauses() {
			ew.printf("  %s\n", l)
		}
	}
	ew.printf("%s\n", connectionsLine(s))
	ew.printf("Connections closed by: %s\n", countsLine(s.CloseReasons))
	if s.TimeoutRedials > 0 {
		ew.printf("Re-dialled after a timeout: %s\n", thousands(s.TimeoutRedials))
	}
	ew.printf("%s\n", latencyLine(s))
	if s.Unattributed > 0 {
		ew.printf("Requests no backend answered: %d\n", s.Unattributed)
	}
	if len(s.Runs) > 1 {
		ew.printf("Merged runs: ")
		for i, r := range s.Runs {
			if i > 0 {
				ew.printf(", ")
			}
			ew.printf("%s (%d requests)", runName(r, i), r.Requests)
		}
		ew.printf("\n")
	}
	ew.printf("\n")
	if ew.err == nil && len(s.Backends) > 0 {
		ew.err = writeFitting(ew, r.fits, func(w io.Writer) error { return writeTable(w, backendHeader(), backendRows(s), 1) },
			func(w io.Writer) error { return writeTable(w, compactBackendHeader(), compactBackendRows(s), 1) })
	}
	for _, l := range serverCountNotes(s) {
		ew.printf("Server count delta of %s\n", l)
	}
	ew.printf("%s\n\n", fairnessLine(s))
	if ew.err == nil {
		// The chart narrows (fewer columns, more intervals each) to fit.
		width := 60
		for ; width > 10; width -= 5 {
			var b strings.Builder
			writeChart(&errWriter{w: &b}, s.Timeline, width, s.Events...)
			if r.fits(b.String()) {
				break
			}
		}
		writeChart(ew, s.Timeline, width, s.Events...)
	}
	if d := s.Timeline.Dropped; d > 0 {
		ew.printf("Timeline: %d requests after its last interval are not drawn (use a larger --interval)\n", d)
	}
	writeEvents(ew, s)
	for _, r := range s.Rebalance {
		ew.printf("Rebalance: %s\n", rebalanceLine(r))
	}
	writeSockets(ew, s.Sockets)
	if len(r.Expectations) > 0 {
		ew.printf("\n")
		if ew.err == nil {
			ew.err = writeTable(ew, []string{"Result", "Expectation", "Actual"}, expectRows(r.Expectations), 3)
		}
	}
	ew.printf("\nVerdict: %s\n", s.Verdict)
	return ew.err
}

func runName(r RunSummary, i int) string {
	if r.Label != "" {
		return r.Label
	}
	return "run " + strconv.Itoa(i+1)
}

var sparks = []rune(" ▁▂▃▄▅▆▇█")

// renderTimeline draws one sparkline per backend, at most width columns:
// each column is the backend's share of the requests in that stretch of time
// (full block = 100%), so the moment a new backend starts to get traffic, and
// how much, reads at a glance. An empty timeline draws nothing.
func renderTimeline(w io.Writer, t Timeline, width int) error {
	ew := &errWriter{w: w}
	writeChart(ew, t, max(width, 1))
	return ew.err
}

// writeChart draws the timeline; events, when given, add a row of markers
// (see eventMarker) under the backends.
func writeChart(ew *errWriter, t Timeline, width int, evs ...Event) {
	if len(t.Intervals) == 0 || len(t.Backends) == 0 {
		return
	}
	n := t.whole() // a partial last interval is not drawn: one late request would fill it
	if n == 0 {
		partialNote(ew, t)
		ew.printf("\n")
		return
	}
	per := (n + width - 1) / width // intervals per column
	cols := (n + per - 1) / per
	nameW := 0
	if t.Errors() > 0 {
		nameW = len("errors")
	}
	var unsent uint64
	for _, iv := range t.Intervals {
		unsent += iv.Unsent
	}
	if unsent > 0 {
		nameW = max(nameW, len("unsent"))
	}
	for _, b := range t.Backends {
		nameW = max(nameW, len([]rune(b)))
	}
	if len(evs) > 0 {
		nameW = max(nameW, len("events"))
	}
	ew.printf("Share per %s (█ = 100%%, blank = none):\n", secs(t.IntervalSeconds*float64(per)))
	// row draws part/whole of the intervals each column covers.
	row := func(name string, part, whole func(iv *Interval) uint64) {
		var line strings.Builder
		for c := range cols {
			var p, w uint64
			for k := c * per; k < min(n, (c+1)*per); k++ {
				p += part(&t.Intervals[k])
				w += whole(&t.Intervals[k])
			}
			line.WriteRune(sparkRune(ratio(float64(p), float64(w))))
		}
		ew.printf("  %-*s │%s│\n", nameW, name, line.String())
	}
	requests := func(iv *Interval) uint64 { return iv.Requests }
	for bi, name := range t.Backends {
		row(name, func(iv *Interval) uint64 { return iv.Counts[bi] }, requests)
	}
	if len(evs) > 0 {
		ew.printf("  %-*s │%s│\n", nameW, "events", markerRow(t, evs, n, per, cols))
	}
	if t.Errors() > 0 {
		row("errors", func(iv *Interval) uint64 { return iv.Errors }, requests)
	}
	if unsent > 0 {
		// The part of the requests due in a stretch that were never sent:
		// the tail of an open-model run that fell behind.
		row("unsent", func(iv *Interval) uint64 { return iv.Unsent }, func(iv *Interval) uint64 { return iv.Due })
	}
	startL := secs(t.StartSeconds)
	endL := secs(t.Intervals[n-1].EndSeconds)
	gap := max(1, cols+2-len(startL)-len(endL))
	ew.printf("  %-*s %s%s%s\n", nameW, "", startL, strings.Repeat(" ", gap), endL)
	partialNote(ew, t)
	ew.printf("\n")
}

// partialNote says what a chart leaves out: the partial last interval.
func partialNote(ew *errWriter, t Timeline) {
	if l := partialText(t); l != "" {
		ew.printf("  (%s)\n", l)
	}
}

func partialText(t Timeline) string {
	n := len(t.Intervals)
	if n == 0 || !t.Partial(n-1) {
		return ""
	}
	iv := t.Intervals[n-1]
	reqs := "requests"
	if iv.Requests == 1 {
		reqs = "request"
	}
	return fmt.Sprintf("not drawn: %s–%s, the last %s of the window, %d %s: shorter than half an interval",
		secs(iv.StartSeconds), secs2(iv.EndSeconds), secs2(iv.EndSeconds-iv.StartSeconds), iv.Requests, reqs)
}

// secs2 prints seconds with two decimals, for stretches shorter than one.
func secs2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "s" }

// sparkRune maps a share to a block; any traffic shows at least the lowest block.
func sparkRune(share float64) rune {
	if share <= 0 {
		return sparks[0]
	}
	i := int(math.Ceil(share * float64(len(sparks)-1)))
	return sparks[min(max(i, 1), len(sparks)-1)]
}

// Errors is the number of failed requests over the whole timeline.
func (t Timeline) Errors() uint64 {
	var n uint64
	for _, iv := range t.Intervals {
		n += iv.Errors
	}
	return n
}

// renderMarkdown writes a report for a CI job summary (GitHub-flavoured).
func renderMarkdown(w io.Writer, r *Report) error {
	s := r.Summary
	ew := &errWriter{w: w}
	ew.printf("## kaload report\n\n**Verdict:** %s\n\n", mdEscape(s.Verdict))
	if l := windowLine(s); l != "" {
		ew.printf("%s\n\n", l)
	}
	ew.printf("- Requests: %d in %.2fs (%.1f/s), errors: %d (%s)\n", s.Requests, s.DurationSeconds, s.RPS, s.Errors, pct(s.ErrorRate))
	if l := unsentLine(s); l != "" {
		ew.printf("- Rate: %s\n", mdEscape(l))
	}
	if s.Errors > 0 {
		ew.printf("- Errors by kind:\n")
		for _, l := range s.ErrorCauses() {
			ew.printf("  - %s\n", mdEscape(l))
		}
	}
	ew.printf("- %s\n", connectionsLine(s))
	ew.printf("- Connections closed by: %s\n", mdEscape(countsLine(s.CloseReasons)))
	if s.TimeoutRedials > 0 {
		ew.printf("- Re-dialled after a timeout: %s\n", thousands(s.TimeoutRedials))
	}
	ew.printf("- %s\n", mdEscape(latencyLine(s)))
	ew.printf("- %s\n", mdEscape(fairnessLine(s)))
	for _, l := range serverCountNotes(s) {
		ew.printf("- Server count delta of %s\n", mdEscape(l))
	}
	for _, r := range s.Rebalance {
		ew.printf("- Rebalance: %s\n", mdEscape(rebalanceLine(r)))
	}
	if len(s.Runs) > 1 {
		for i, r := range s.Runs {
			ew.printf("- Run %s: %d requests, %d errors\n", mdEscape(runName(r, i)), r.Requests, r.Errors)
		}
	}
	if len(s.Backends) > 0 {
		ew.printf("\n### Backends\n\n")
		mdTable(ew, mdCells(backendHeader()), mdRows(backendRows(s)), 1)
	}
	if len(s.Timeline.Intervals) > 0 && len(s.Timeline.Backends) > 0 {
		ew.printf("\n### Timeline\n\n```\n")
		writeChart(ew, s.Timeline, 60)
		ew.printf("```\n")
	}
	if len(r.Expectations) > 0 {
		ew.printf("\n### Expectations\n\n")
		rows := expectRows(r.Expectations)
		for _, r := range rows {
			switch Status(r[0]) {
			case StatusPass:
				r[0] = "✅ PASS"
			case StatusFail:
				r[0] = "❌ FAIL"
			default:
				r[0] = "⚠️ NO DATA"
			}
			// Entities do not work in code spans; only the pipe needs escaping there.
			r[1] = "`" + strings.NewReplacer("`", "'", "|", `\|`, "\n", " ").Replace(r[1]) + "`"
			r[2] = mdEscape(r[2])
		}
		mdTable(ew, []string{"Result", "Expectation", "Actual"}, rows, 3)
	}
	return ew.err
}

// mdTable writes a pipe table of escaped cells; columns from numericFrom on are right-aligned.
func mdTable(ew *errWriter, header []string, rows [][]string, numericFrom int) {
	ew.printf("| %s |\n|", strings.Join(header, " | "))
	for i := range header {
		if i >= numericFrom {
			ew.printf("---:|")
		} else {
			ew.printf(":---|")
		}
	}
	ew.printf("\n")
	for _, r := range rows {
		ew.printf("| %s |\n", strings.Join(r, " | "))
	}
}

func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = mdEscape(c)
	}
	return out
}

func mdRows(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = mdCells(r)
	}
	return out
}

var mdReplacer = strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;")

func mdEscape(s string) string { return mdReplacer.Replace(s) }

// renderCSV writes the timeline, one row per interval: counts per backend,
// then shares per backend.
func renderCSV(w io.Writer, r *Report) error {
	s := r.Summary
	cw := csv.NewWriter(w)
	t := s.Timeline
	head := []string{"start_seconds", "end_seconds", "requests", "errors"}
	for _, b := range t.Backends {
		head = append(head, "requests:"+b)
	}
	for _, b := range t.Backends {
		head = append(head, "share:"+b)
	}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	for _, iv := range t.Intervals {
		row := []string{
			strconv.FormatFloat(iv.StartSeconds, 'f', -1, 64),
			strconv.FormatFloat(iv.EndSeconds, 'f', -1, 64),
			u(iv.Requests), u(iv.Errors),
		}
		for _, c := range iv.Counts {
			row = append(row, u(c))
		}
		for _, c := range iv.Counts {
			if iv.Requests == 0 {
				row = append(row, "") // no requests: no share, not a share of 0
				continue
			}
			row = append(row, strconv.FormatFloat(round(float64(c)/float64(iv.Requests), 6), 'f', -1, 64))
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}
	cw.Flush()
	return cw.Error()
}

// fits reports whether every line of text fits the report's Width.
func (r *Report) fits(text string) bool {
	if r.Width <= 0 || r.Wide {
		return true
	}
	for _, l := range strings.Split(text, "\n") {
		if utf8.RuneCountInString(l) > r.Width {
			return false
		}
	}
	return true
}

// writeFitting writes full when it fits, else compact.
func writeFitting(w io.Writer, fits func(string) bool, full, compact func(io.Writer) error) error {
	var b strings.Builder
	if err := full(&b); err != nil {
		return err
	}
	if !fits(b.String()) {
		b.Reset()
		if err := compact(&b); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// compactBackendHeader is the backend table for a narrow terminal: fewer
// columns, latency in one.
func compactBackendHeader() []string {
	return []string{"Backend", "Requests", "Share", "Conns", "Errs", "First", "p50/p99 ms"}
}

func compactBackendRows(s *Summary) [][]string {
	rows := make([][]string, 0, len(s.Backends))
	for _, b := range s.Backends {
		lat := "-"
		if b.Latency != nil {
			lat = strconv.FormatFloat(b.Latency.P50, 'f', 1, 64) + "/" + strconv.FormatFloat(b.Latency.P99, 'f', 1, 64)
		}
		rows = append(rows, []string{b.Name, u(b.Requests), pct(b.Share), u(b.Connections), u(b.Errors), secsOr(b.FirstSeenSeconds), lat})
	}
	return rows
}
