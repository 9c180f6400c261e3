package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// HTMLPage is one self-contained HTML report: facts, then one column per
// run (the lab: one per scenario) drawn on the same axes, so columns
// compare at a glance. No scripts, no external links; it prints.
type HTMLPage struct {
	Title   string
	Facts   [][2]string // page-wide facts, name and value
	Columns []HTMLColumn
}

// HTMLColumn is one run of an HTMLPage.
type HTMLColumn struct {
	Name, Note string
	Report     *Report
	// Markers are moments the column's summary does not hold (the lab's
	// scale events), drawn with its events.
	Markers []HTMLMarker
}

// HTMLMarker is a moment worth a vertical line on the time charts.
type HTMLMarker struct {
	TSeconds float64
	Kind     string // e.g. "scale"
	Label    string
}

// renderHTML is the report's page: one column.
func renderHTML(w io.Writer, r *Report) error {
	return RenderHTML(w, HTMLPage{Title: "kaload report", Columns: []HTMLColumn{{Report: r}}})
}

// RenderHTML writes p as one HTML file.
func RenderHTML(w io.Writer, p HTMLPage) error {
	d := htmlPage{Title: p.Title, Facts: p.Facts}
	dom := sharedDomains(p.Columns)
	for _, col := range p.Columns {
		d.Columns = append(d.Columns, buildColumn(col, dom))
	}
	d.Wide = len(d.Columns) > 1
	// Charts go in rows across the columns, so the same chart of every
	// column lines up whatever the height of the text above it.
	for _, hc := range d.Columns {
		for i := range hc.Charts {
			if i == len(d.Rows) {
				d.Rows = append(d.Rows, make([]*chartCell, len(d.Columns)))
			}
		}
	}
	for ci, hc := range d.Columns {
		for i := range hc.Charts {
			d.Rows[i][ci] = &chartCell{htmlChart: hc.Charts[i], Markers: hc.Markers, MoreMarkers: hc.MoreMarkers}
		}
	}
	return pageTmpl().Execute(w, d)
}

type htmlPage struct {
	Title   string
	Facts   [][2]string
	Columns []htmlColumn
	Rows    [][]*chartCell // nil: that column lacks the chart
	Wide    bool
}

type chartCell struct {
	htmlChart
	Markers     []marker
	MoreMarkers int
}

type htmlColumn struct {
	Name, Note  string
	S           *Report
	Facts       [][2]string
	Lines       []string
	Errors      []string
	Rebalance   []string
	Stages      []string // stages and the recommendation
	Charts      []htmlChart
	Markers     []marker
	MoreMarkers int
	Backends    []string
	BackendRow  [][]string
	Partial     string
}

type htmlChart struct {
	Title  string
	Time   bool // a time chart: the markers' legend goes with it
	SVG    template.HTML
	Legend []legendItem
	Note   string
}

type legendItem struct{ Colour, Dash, Name string }

// domains are the axes columns share.
type domains struct {
	t0, t1                     float64
	rps, lat, backendLat, conn float64
	sockets                    float64
}

func sharedDomains(cols []HTMLColumn) domains {
	d := domains{t0: math.Inf(1)}
	for _, col := range cols {
		s := col.Report.Summary
		t := s.Timeline
		d.t0 = min(d.t0, t.StartSeconds)
		d.t1 = max(d.t1, t.EndSeconds)
		for _, iv := range t.Intervals[:t.whole()] {
			dur := iv.EndSeconds - iv.StartSeconds
			if dur <= 0 {
				continue
			}
			d.rps = max(d.rps, float64(iv.Requests)/dur)
			if iv.LatencyP99 != nil {
				d.lat = max(d.lat, *iv.LatencyP99)
			}
			var closed uint64
			for _, n := range iv.Closed {
				closed += n
			}
			d.conn = max(d.conn, float64(iv.Opened), float64(closed))
		}
		for _, b := range s.Backends {
			if b.Latency != nil {
				d.backendLat = max(d.backendLat, b.Latency.P99)
			}
		}
		if s.Sockets != nil {
			for _, iv := range s.Sockets.Timeline.Intervals {
				for _, h := range iv.Held {
					d.sockets = max(d.sockets, float64(h))
				}
			}
		}
	}
	if math.IsInf(d.t0, 1) {
		d.t0 = 0
	}
	if d.t1 <= d.t0 {
		d.t1 = d.t0 + 1
	}
	return d
}

func buildColumn(col HTMLColumn, dom domains) htmlColumn {
	s := col.Report.Summary
	hc := htmlColumn{Name: col.Name, Note: col.Note, S: col.Report, Facts: runFacts(s),
		Backends: backendHeader(), BackendRow: backendRows(s), Partial: partialText(s.Timeline)}
	hc.Lines = append(hc.Lines, fmt.Sprintf("Requests: %d in %.2fs (%.1f/s), errors: %d (%s)", s.Requests, s.DurationSeconds, s.RPS, s.Errors, pct(s.ErrorRate)))
	if l := unsentLine(s); l != "" {
		hc.Lines = append(hc.Lines, "Rate: "+l)
	}
	hc.Lines = append(hc.Lines, connectionsLine(s), latencyLine(s), fairnessLine(s))
	for _, n := range serverCountNotes(s) {
		hc.Lines = append(hc.Lines, "Server count delta of "+n)
	}
	if s.Errors > 0 {
		hc.Errors = s.ErrorCauses()
	}
	for _, rb := range s.Rebalance {
		hc.Rebalance = append(hc.Rebalance, rebalanceLine(rb))
	}
	hc.Stages = stageLines(s)
	hc.Markers = markers(s, col.Markers)
	if len(hc.Markers) > maxDrawnMarkers {
		hc.MoreMarkers = len(hc.Markers) - maxDrawnMarkers
	}
	drawn := hc.Markers[:min(len(hc.Markers), maxDrawnMarkers)]
	legend := backendLegend(s.Timeline.Backends)
	hc.Charts = []htmlChart{
		rpsChart(s, dom, drawn, legend),
		shareChart(s, dom, drawn, legend),
		latencyChart(s, dom, drawn),
		backendLatencyChart(s, dom),
		connChart(s, dom, drawn),
	}
	if s.Sockets != nil {
		hc.Charts = append(hc.Charts, socketChart(s, dom, drawn))
	}
	return hc
}

// runFacts are the run's facts for the header: target, protocol, flags,
// label, start, duration, kaload version.
func runFacts(s *Summary) [][2]string {
	var f [][2]string
	add := func(k, v string) {
		if v != "" {
			f = append(f, [2]string{k, v})
		}
	}
	var urls, labels, args, versions []string
	var start time.Time
	for _, r := range s.Runs {
		urls = appendNew(urls, r.URL)
		labels = appendNew(labels, r.Label)
		if len(r.Args) > 0 {
			args = appendNew(args, strings.Join(r.Args, " "))
		}
		versions = appendNew(versions, r.Kaload)
		if start.IsZero() || r.Start.Before(start) {
			start = r.Start
		}
	}
	add("Target", strings.Join(urls, ", "))
	add("Protocol", s.Protocol)
	add("Command", strings.Join(args, "; "))
	add("Label", strings.Join(labels, ", "))
	if !start.IsZero() {
		add("Start", start.UTC().Format(time.RFC3339))
	}
	add("Duration", secs2(s.DurationSeconds))
	add("Window", windowLine(s))
	if s.Timeline.IntervalSeconds > 0 {
		add("Interval", fmtDuration(s.Timeline.IntervalSeconds))
	}
	if len(s.Runs) > 1 {
		add("Runs merged", fmt.Sprint(len(s.Runs)))
	}
	add("kaload", strings.Join(versions, ", "))
	return f
}

func appendNew(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// markers: backends first seen after the first interval with traffic, the
// summary's events and the column's own, in time order.
func markers(s *Summary, extra []HTMLMarker) []marker {
	var ms []marker
	idx := map[string]int{}
	for i, b := range s.Timeline.Backends {
		idx[b] = i
	}
	for _, rb := range s.Rebalance {
		col, _ := backendColour(idx[rb.Backend])
		ms = append(ms, marker{T: rb.AppearedSeconds, Kind: "first-seen", Label: rb.Backend + " first seen", Colour: col})
	}
	for _, e := range s.Events {
		l := e.Kind + " " + e.Object
		if e.Detail != "" {
			l += ": " + e.Detail
		}
		ms = append(ms, marker{T: e.TSeconds, Kind: "event", Label: l, Colour: "#555"})
	}
	for _, m := range extra {
		ms = append(ms, marker{T: m.TSeconds, Kind: m.Kind, Label: m.Label, Colour: "#000"})
	}
	slices.SortStableFunc(ms, func(a, b marker) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	})
	return ms
}

func backendLegend(names []string) []legendItem {
	out := make([]legendItem, len(names))
	for i, n := range names {
		col, dash := backendColour(i)
		out[i] = legendItem{Colour: col, Dash: dash, Name: n}
	}
	return out
}

// wholeIntervals are the intervals charts draw: a partial last interval
// would show one late request as a spike.
func wholeIntervals(t Timeline) []Interval { return t.Intervals[:t.whole()] }

func rpsChart(s *Summary, dom domains, ms []marker, legend []legendItem) htmlChart {
	const title = "Requests per second, per backend"
	ivs := wholeIntervals(s.Timeline)
	if s.Requests == 0 || len(ivs) == 0 {
		return htmlChart{Title: title, SVG: template.HTML(noData("rps", title, "no requests in a whole interval"))}
	}
	ch := newTimeChart("rps", title, "requests/s", dom.t0, dom.t1, niceMax(dom.rps), num)
	xs := make([]float64, len(ivs))
	total := make([]float64, len(ivs))
	for k, iv := range ivs {
		xs[k] = (iv.StartSeconds + iv.EndSeconds) / 2
		total[k] = float64(iv.Requests) / (iv.EndSeconds - iv.StartSeconds)
	}
	ys := make([]float64, len(ivs))
	for bi, name := range s.Timeline.Backends {
		// A backend's line runs from its first interval with requests to its
		// last: before it appeared it was not there to measure.
		first, last := -1, -1
		for k, iv := range ivs {
			if iv.Counts[bi] > 0 {
				if first < 0 {
					first = k
				}
				last = k
			}
		}
		for k, iv := range ivs {
			ys[k] = math.NaN()
			if first >= 0 && k >= first && k <= last {
				ys[k] = float64(iv.Counts[bi]) / (iv.EndSeconds - iv.StartSeconds)
			}
		}
		col, dash := backendColour(bi)
		ch.line("backend", name, col, dash, 2, xs, ys)
	}
	ch.line("total", "all backends", "#777", "2 2", 1.5, xs, total)
	lg := append(slices.Clone(legend), legendItem{Colour: "#777", Dash: "2 2", Name: "all backends"})
	return htmlChart{Title: title, Time: true, SVG: template.HTML(ch.svg(ms)), Legend: lg}
}

func shareChart(s *Summary, dom domains, ms []marker, legend []legendItem) htmlChart {
	const title = "Share of requests over time"
	ivs := wholeIntervals(s.Timeline)
	if s.Requests == 0 || len(ivs) == 0 {
		return htmlChart{Title: title, SVG: template.HTML(noData("share", title, "no requests in a whole interval"))}
	}
	ch := newTimeChart("share", title, "share of requests", dom.t0, dom.t1, 1, func(v float64) string { return num(v*100) + "%" })
	var empty int
	for _, iv := range ivs {
		if iv.Requests == 0 {
			empty++ // no bar: a share of nothing is not zero
			continue
		}
		y := 0.0
		for bi, n := range iv.Counts {
			if n == 0 {
				continue
			}
			h := float64(n) / float64(iv.Requests)
			col, _ := backendColour(bi)
			ch.rect("share", col, iv.StartSeconds, iv.EndSeconds, y, y+h,
				fmt.Sprintf("%s–%s %s: %d of %d (%s)", secs(iv.StartSeconds), secs(iv.EndSeconds), s.Timeline.Backends[bi], n, iv.Requests, pct(h)))
			y += h
		}
		// Unattributed requests (failed dials) fill the rest, grey.
		if y < 1-1e-9 {
			ch.rect("share unattributed", "#bbb", iv.StartSeconds, iv.EndSeconds, y, 1,
				fmt.Sprintf("%s–%s no backend: %s", secs(iv.StartSeconds), secs(iv.EndSeconds), pct(1-y)))
		}
	}
	hc := htmlChart{Title: title, Time: true, SVG: template.HTML(ch.svg(ms)), Legend: legend}
	if empty > 0 {
		hc.Note = fmt.Sprintf("%d intervals without requests are left blank", empty)
	}
	return hc
}

func latencyChart(s *Summary, dom domains, ms []marker) htmlChart {
	const title = "Latency over time (all backends)"
	ivs := wholeIntervals(s.Timeline)
	if s.Latency == nil || dom.lat == 0 {
		return htmlChart{Title: title, SVG: template.HTML(noData("latency", title, "no request got a response in a whole interval"))}
	}
	ch := newTimeChart("latency", title, "latency (ms)", dom.t0, dom.t1, niceMax(dom.lat), num)
	xs := make([]float64, len(ivs))
	p50, p99 := make([]float64, len(ivs)), make([]float64, len(ivs))
	for k, iv := range ivs {
		xs[k] = (iv.StartSeconds + iv.EndSeconds) / 2
		p50[k], p99[k] = math.NaN(), math.NaN()
		if iv.LatencyP50 != nil {
			p50[k], p99[k] = *iv.LatencyP50, *iv.LatencyP99
		}
	}
	ch.line("p99", "p99", "#D55E00", "5 3", 2, xs, p99)
	ch.line("p50", "p50", "#0072B2", "", 2, xs, p50)
	return htmlChart{Title: title, Time: true, SVG: template.HTML(ch.svg(ms)),
		Legend: []legendItem{{Colour: "#0072B2", Name: "p50"}, {Colour: "#D55E00", Dash: "5 3", Name: "p99"}},
		Note:   "per-interval percentiles from a compact histogram (within 6.25%)"}
}

// backendLatencyChart: per backend, p50 and p99 bars on one ms axis.
func backendLatencyChart(s *Summary, dom domains) htmlChart {
	const title = "Latency per backend"
	if s.Latency == nil || dom.backendLat == 0 {
		return htmlChart{Title: title, SVG: template.HTML(noData("backend-latency", title, "no request got a response"))}
	}
	idx := map[string]int{}
	for i, b := range s.Timeline.Backends {
		idx[b] = i
	}
	n := len(s.Backends)
	h := hbarPadTop + float64(n)*hbarRowH + hbarPadBottom
	x := scale{0, niceMax(dom.backendLat), hbarLabelW, plotW - padRight}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" data-chart="backend-latency" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" role="img" aria-label="%s">`, c(plotW), c(h), title)
	ticks, _ := niceTicks(0, x.hi, 6)
	bottom := hbarPadTop + float64(n)*hbarRowH
	b.WriteString(`<g class="grid" stroke="#ddd">`)
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s"/>`, c(x.at(v)), c(x.at(v)), c(hbarPadTop), c(bottom))
	}
	fmt.Fprintf(&b, `</g><g class="axis x" data-label="latency (ms)"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/>`, c(x.p0), c(x.p1), c(bottom), c(bottom))
	for _, v := range ticks {
		fmt.Fprintf(&b, `<g class="tick"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/><text x="%s" y="%s" text-anchor="middle">%s</text></g>`,
			c(x.at(v)), c(x.at(v)), c(bottom), c(bottom+tickLen), c(x.at(v)), c(bottom+tickLen+12), num(v))
	}
	fmt.Fprintf(&b, `<text class="label" x="%s" y="%s" text-anchor="middle">latency (ms): bar p50, whisker to p99</text></g>`, c((x.p0+x.p1)/2), c(h-4))
	fmt.Fprintf(&b, `<g class="axis y" data-label="backend"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/></g><g class="data">`, c(x.p0), c(x.p0), c(hbarPadTop), c(bottom))
	for i, be := range s.Backends {
		y := hbarPadTop + float64(i)*hbarRowH
		name := be.Name
		if len(name) > 28 {
			name = name[:27] + "…"
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s</text>`, c(x.p0-6), c(y+hbarRowH/2+4), template.HTMLEscapeString(name))
		if be.Latency == nil {
			fmt.Fprintf(&b, `<text class="nodata" x="%s" y="%s" fill="#777">no data: no response</text>`, c(x.p0+6), c(y+hbarRowH/2+4))
			continue
		}
		col, _ := backendColour(idx[be.Name])
		l := be.Latency
		fmt.Fprintf(&b, `<g class="series" data-series="%s"><rect x="%s" y="%s" width="%s" height="%s" fill="%s"/><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="2"/><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="2"/><title>%s p50 %s, p99 %s</title></g>`,
			template.HTMLEscapeString(be.Name), c(x.p0), c(y+5), c(max(x.at(l.P50)-x.p0, 0.5)), c(hbarRowH-10), col,
			c(x.at(l.P50)), c(x.at(l.P99)), c(y+hbarRowH/2), c(y+hbarRowH/2), col,
			c(x.at(l.P99)), c(x.at(l.P99)), c(y+6), c(y+hbarRowH-6), col,
			template.HTMLEscapeString(be.Name), ms(l.P50), ms(l.P99))
	}
	b.WriteString(`</g></svg>`)
	return htmlChart{Title: title, SVG: template.HTML(b.String())}
}

// closeColours colour close reasons apart from backends: greys and hatching
// would not print apart, so reasons take the palette from its far end.
var closeColours = []string{"#D55E00", "#CC79A7", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#F0E442"}

func connChart(s *Summary, dom domains, ms []marker) htmlChart {
	const title = "Connections opened and closed per interval"
	ivs := wholeIntervals(s.Timeline)
	if dom.conn == 0 {
		return htmlChart{Title: title, SVG: template.HTML(noData("connections", title, "no connection opened or closed in a whole interval"))}
	}
	var reasons []string
	for _, iv := range ivs {
		for r := range iv.Closed {
			reasons = appendNew(reasons, r)
		}
	}
	slices.Sort(reasons)
	ch := newTimeChart("connections", title, "connections", dom.t0, dom.t1, niceMax(dom.conn), num)
	xs, opened := make([]float64, len(ivs)), make([]float64, len(ivs))
	for k, iv := range ivs {
		xs[k], opened[k] = (iv.StartSeconds+iv.EndSeconds)/2, float64(iv.Opened)
		y := 0.0
		for ri, r := range reasons {
			n := iv.Closed[r]
			if n == 0 {
				continue
			}
			w := iv.EndSeconds - iv.StartSeconds
			ch.rect("closed", closeColours[ri%len(closeColours)], iv.StartSeconds+w*0.15, iv.EndSeconds-w*0.15, y, y+float64(n),
				fmt.Sprintf("%s–%s closed (%s): %d", secs(iv.StartSeconds), secs(iv.EndSeconds), r, n))
			y += float64(n)
		}
	}
	ch.line("opened", "opened", "#000", "", 2, xs, opened)
	lg := []legendItem{{Colour: "#000", Name: "opened (line)"}}
	for ri, r := range reasons {
		lg = append(lg, legendItem{Colour: closeColours[ri%len(closeColours)], Name: "closed: " + r})
	}
	return htmlChart{Title: title, Time: true, SVG: template.HTML(ch.svg(ms)), Legend: lg}
}

// socketChart: WebSockets held per backend at each interval's end.
func socketChart(s *Summary, dom domains, ms []marker) htmlChart {
	const title = "WebSockets held per backend"
	st := s.Sockets.Timeline
	if len(st.Intervals) == 0 || dom.sockets == 0 {
		return htmlChart{Title: title, SVG: template.HTML(noData("sockets", title, "no socket was held"))}
	}
	idx := map[string]int{}
	for i, b := range s.Timeline.Backends {
		idx[b] = i
	}
	ch := newTimeChart("sockets", title, "sockets held", dom.t0, dom.t1, niceMax(dom.sockets), num)
	xs := make([]float64, len(st.Intervals))
	for k, iv := range st.Intervals {
		xs[k] = iv.StartSeconds + st.IntervalSeconds
	}
	var lg []legendItem
	for bi, name := range st.Backends {
		ci, ok := idx[name]
		if !ok {
			ci = len(s.Timeline.Backends) + bi
		}
		ys := make([]float64, len(st.Intervals))
		for k, iv := range st.Intervals {
			ys[k] = math.NaN()
			if bi < len(iv.Held) {
				ys[k] = float64(iv.Held[bi])
			}
		}
		col, dash := backendColour(ci)
		ch.line("backend", name, col, dash, 2, xs, ys)
		lg = append(lg, legendItem{Colour: col, Dash: dash, Name: name})
	}
	return htmlChart{Title: title, Time: true, SVG: template.HTML(ch.svg(ms)), Legend: lg}
}

// pageTmpl is parsed on first use: parsed at init it cost every kaload
// command 942 allocations (43 KB).
var pageTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"inc": func(i int) int { return i + 1 },
	}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:{{if .Wide}}1800px{{else}}1100px{{end}}}
h1{margin:.2em 0}h2{margin:.2em 0 .4em}h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;font-size:.9em}
th{background:#f4f4f4}td:first-child{text-align:left}table.facts td,table.facts th{text-align:left}
.verdict{font-size:1.15em;font-weight:600}.pass{color:#1b6e1b}.fail{color:#b02a1a}
.columns{display:grid;grid-template-columns:repeat({{len .Columns}},minmax(0,1fr));gap:2em}
.chartbox{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:flex-start;break-inside:avoid;page-break-inside:avoid}
svg.chart{width:100%;max-width:760px;height:auto;flex:1 1 420px}svg text{font-size:11px;fill:#222}
.legend{font-size:.85em;flex:0 1 220px;list-style:none;padding:0;margin:0}.legend li{margin:.15em 0;overflow-wrap:anywhere}
.swatch{display:inline-block;width:1.6em;vertical-align:middle;margin-right:.4em}
.note{color:#555;font-size:.85em;margin:.2em 0}.tablewrap{overflow-x:auto}.cell,.column{min-width:0;break-inside:avoid;page-break-inside:avoid}
.multi svg.chart{flex-basis:100%;max-width:none}.multi .legend{flex-basis:100%;columns:2}
@media print{body{margin:0;max-width:none}.columns{gap:1em}}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Facts}}<table class="facts">{{range .Facts}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>{{end}}
<div class="columns{{if .Wide}} multi{{end}}">
{{range .Columns}}<section class="column">
{{if .Name}}<h2>{{.Name}}</h2>{{end}}{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
<p class="verdict">{{.S.Verdict}}</p>
{{if .S.Expectations}}<table class="expectations"><tr><th>Result</th><th>Expectation</th><th>Actual</th></tr>
{{range .S.Expectations}}<tr><td class="{{if .OK}}pass{{else}}fail{{end}}">{{.Status}}</td><td><code>{{.Expr}}</code></td><td>{{.Actual}}</td></tr>
{{end}}</table>{{end}}
<table class="facts">{{range .Facts}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
<ul>{{range .Lines}}<li>{{.}}</li>{{end}}
{{range .Errors}}<li>Errors: {{.}}</li>{{end}}
{{range .Rebalance}}<li>Rebalance: {{.}}</li>{{end}}{{range .Stages}}<li>{{.}}</li>{{end}}</ul>
</section>
{{end}}{{range .Rows}}{{range .}}<div class="cell">{{if .}}{{$m := .Markers}}{{$more := .MoreMarkers}}<h3>{{.Title}}</h3><div class="chartbox">{{.SVG}}
{{if or .Legend (and .Time $m)}}<ul class="legend">{{range .Legend}}<li><svg class="swatch" viewBox="0 0 24 10" width="24" height="10"><line x1="0" x2="24" y1="5" y2="5" stroke="{{.Colour}}" stroke-width="4"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/></svg>{{.Name}}</li>{{end}}
{{if .Time}}{{range $i, $e := $m}}{{if lt $i 40}}<li class="marker-item"><b style="color:{{$e.Colour}}">{{inc $i}}</b> {{printf "%.1f" $e.T}}s {{$e.Label}}</li>{{end}}{{end}}{{if $more}}<li>and {{$more}} more events (not drawn)</li>{{end}}{{end}}</ul>{{end}}
</div>{{if .Note}}<p class="note">{{.Note}}</p>{{end}}{{end}}</div>
{{end}}{{end}}{{range .Columns}}<section class="column">
{{if .Partial}}<p class="note">({{.Partial}})</p>{{end}}
{{if .BackendRow}}<h3>Backends</h3>
<div class="tablewrap"><table><tr>{{range .Backends}}<th>{{.}}</th>{{end}}</tr>
{{range .BackendRow}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table></div>{{end}}
</section>
{{end}}</div>
</body></html>
`))
})
