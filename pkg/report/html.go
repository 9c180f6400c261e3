package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// palette: distinct colours readable on white, reused cyclically.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

type svgRect struct {
	X, Y, W, H  float64
	Fill, Title string
}

type htmlData struct {
	S           *Report
	Window      string
	Conns       string
	Backends    []string
	BackendRow  [][]string
	Rebalance   []string
	Partial     string
	Errors      []string
	Latency     string
	Unsent      string
	Fairness    string
	ServerNotes []string
	Legend      []svgRect
	Rects       []svgRect
	ChartW      float64
	ChartH      float64
	StartLabel  string
	EndLabel    string
	LegendH     float64
}

const (
	chartW, chartH = 900.0, 260.0
	maxBars        = 300
)

// renderHTML writes a self-contained page: no scripts, no external assets.
// The timeline is an SVG of stacked bars, one per interval, each backend's
// share of that interval's requests.
func renderHTML(w io.Writer, r *Report) error {
	s := r.Summary
	d := htmlData{S: r, Window: windowLine(s), Conns: connectionsLine(s), Backends: backendHeader(),
		BackendRow: backendRows(s), ChartW: chartW, ChartH: chartH,
		Latency: latencyLine(s), Unsent: unsentLine(s), Fairness: fairnessLine(s), ServerNotes: serverCountNotes(s)}
	if s.Errors > 0 {
		d.Errors = s.ErrorCauses()
	}
	for _, rb := range s.Rebalance {
		d.Rebalance = append(d.Rebalance, rebalanceLine(rb))
	}
	t := s.Timeline
	d.Partial = partialText(t)
	d.LegendH = float64((len(t.Backends)+4)/5) * 18
	for i, b := range t.Backends {
		d.Legend = append(d.Legend, svgRect{X: float64(i%5) * 180, Y: float64(i/5) * 18, Fill: palette[i%len(palette)], Title: b})
	}
	// A partial last interval is not drawn: one late request would fill it.
	if n := t.whole(); n > 0 {
		// At most maxBars bars: longer timelines merge neighbouring intervals.
		per := (n + maxBars - 1) / maxBars
		bars := (n + per - 1) / per
		bw := chartW / float64(bars)
		counts := make([]uint64, len(t.Backends))
		for k := range bars {
			clear(counts)
			var total uint64
			for _, iv := range t.Intervals[k*per : min(n, (k+1)*per)] {
				for bi, c := range iv.Counts {
					counts[bi] += c
				}
				total += iv.Requests
			}
			from, to := t.Intervals[k*per].StartSeconds, t.Intervals[min(n, (k+1)*per)-1].EndSeconds
			y := chartH
			for bi, c := range counts {
				if c == 0 {
					continue
				}
				h := chartH * float64(c) / float64(total)
				y -= h
				d.Rects = append(d.Rects, svgRect{X: float64(k) * bw, Y: y, W: bw, H: h, Fill: palette[bi%len(palette)],
					Title: fmt.Sprintf("%s–%s %s: %d of %d (%s)", secs(from), secs(to),
						t.Backends[bi], c, total, pct(float64(c)/float64(total)))})
			}
		}
		d.StartLabel = secs(t.StartSeconds)
		d.EndLabel = secs(t.Intervals[n-1].EndSeconds)
	}
	return htmlTmpl.Execute(w, d)
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": pct, "ms": ms, "join": strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kaload report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f4f4f4}td:first-child{text-align:left}.verdict{font-size:1.2em;font-weight:600}
.pass{color:#2a7d2a}.fail{color:#c0392b}svg text{font-size:12px}
</style></head><body>
<h1>kaload report</h1>
<p class="verdict">{{.S.Verdict}}</p>
{{if .Window}}<p>{{.Window}}</p>{{end}}
<ul>
<li>Requests: {{.S.Requests}} in {{printf "%.2f" .S.DurationSeconds}}s ({{printf "%.1f" .S.RPS}}/s), errors: {{.S.Errors}} ({{pct .S.ErrorRate}})</li>
{{if .Unsent}}<li>Rate: {{.Unsent}}</li>
{{end}}<li>{{.Conns}}</li>
{{range .Errors}}<li>Errors: {{.}}</li>
{{end}}
<li>{{.Latency}}</li>
<li>{{.Fairness}}</li>
{{range .ServerNotes}}<li>Server count delta of {{.}}</li>
{{end}}
{{range .Rebalance}}<li>Rebalance: {{.}}</li>{{end}}
</ul>
<h2>Share of requests over time</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.ChartW}}" height="{{printf "%.0f" (.ChartH)}}" viewBox="0 0 {{.ChartW}} {{.ChartH}}" role="img" aria-label="share of requests per backend over time" style="border:1px solid #ccc;overflow:visible">
{{range .Rects}}<rect x="{{printf "%.2f" .X}}" y="{{printf "%.2f" .Y}}" width="{{printf "%.2f" .W}}" height="{{printf "%.2f" .H}}" fill="{{.Fill}}"><title>{{.Title}}</title></rect>
{{end}}<text x="0" y="{{.ChartH}}" dy="14">{{.StartLabel}}</text><text x="{{.ChartW}}" y="{{.ChartH}}" dy="14" text-anchor="end">{{.EndLabel}}</text>
</svg>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.ChartW}}" height="{{.LegendH}}" style="display:block;margin-top:1.5em">
{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="12" height="12" fill="{{.Fill}}"/><text x="{{.X}}" y="{{.Y}}" dx="16" dy="11">{{.Title}}</text>
{{end}}</svg>
{{if .Partial}}<p>({{.Partial}})</p>{{end}}
{{if .BackendRow}}<h2>Backends</h2>
<table><tr>{{range .Backends}}<th>{{.}}</th>{{end}}</tr>
{{range .BackendRow}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{if .S.Expectations}}<h2>Expectations</h2>
<table><tr><th>Result</th><th>Expectation</th><th>Actual</th></tr>
{{range .S.Expectations}}<tr><td class="{{if .OK}}pass{{else}}fail{{end}}">{{.Status}}</td><td><code>{{.Expr}}</code></td><td>{{.Actual}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))
