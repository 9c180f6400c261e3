package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// okabeIto is the Okabe-Ito palette, distinguishable with the common forms
// of colour blindness; yellow and black come last (weak on white, and black
// is taken by totals). Past 8 backends colours repeat, dashed.
var okabeIto = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// backendColour is backend i's colour and dash pattern ("" solid).
func backendColour(i int) (colour, dash string) {
	colour = okabeIto[i%len(okabeIto)]
	if i >= len(okabeIto) {
		dash = strconv.Itoa(2+2*(i/len(okabeIto)%3)) + " 3"
	}
	return colour, dash
}

// Plot geometry in SVG user units; the SVG scales to its column.
const (
	plotW, plotH                         = 640.0, 230.0
	padLeft, padRight, padTop, padBottom = 62.0, 14.0, 22.0, 42.0
	maxDrawnMarkers                      = 40
	defaultTicks                         = 6
	tickLen                              = 4.0
	innerW, innerH                       = plotW - padLeft - padRight, plotH - padTop - padBottom
	markerLabelY                         = padTop - 6
	noDataH                              = 60.0
	hbarRowH                             = 22.0
	hbarPadTop, hbarPadBottom            = 10.0, 40.0
	hbarLabelW                           = 190.0
	fmtCoord                             = 'f'
	coordPrec                            = 1
)

func c(v float64) string { return strconv.FormatFloat(v, fmtCoord, coordPrec, 64) }

// scale maps a domain onto a pixel range.
type scale struct{ lo, hi, p0, p1 float64 }

func (s scale) at(v float64) float64 {
	if s.hi == s.lo {
		return s.p0
	}
	return s.p0 + (v-s.lo)/(s.hi-s.lo)*(s.p1-s.p0)
}

// niceTicks returns about n round values (1, 2 or 5 times a power of ten
// apart) covering [lo, hi], and the step.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	if !(hi > lo) {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	var ticks []float64
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9 && len(ticks) < 4*n; v += step {
		ticks = append(ticks, round(v, 9)+0) // +0: no "-0" label
	}
	return ticks, step
}

// niceMax rounds a positive maximum up to a tick, so the top gridline
// closes the plot.
func niceMax(v float64) float64 {
	if !(v > 0) {
		return 1
	}
	ticks, step := niceTicks(0, v, defaultTicks)
	top := ticks[len(ticks)-1]
	if top < v {
		top += step
	}
	return top
}

// timeTick prints a time-axis value: seconds below two minutes, else m:ss.
func timeTick(v float64) string {
	if v < 120 {
		return strconv.FormatFloat(v, 'f', -1, 64) + "s"
	}
	m := int(v) / 60
	return fmt.Sprintf("%dm%02ds", m, int(v)-60*m)
}

// num prints a value-axis number briefly (1.5k for 1500).
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(round(v, 6), 'f', -1, 64)
}

// chart is one SVG time plot under construction.
type chart struct {
	id, title, yLabel string
	x, y              scale
	yTicks            []float64
	yFmt              func(float64) string
	b                 strings.Builder
}

func newTimeChart(id, title, yLabel string, t0, t1, yMax float64, yFmt func(float64) string) *chart {
	ch := &chart{id: id, title: title, yLabel: yLabel, yFmt: yFmt,
		x: scale{t0, t1, padLeft, padLeft + innerW},
		y: scale{0, yMax, padTop + innerH, padTop}}
	ch.yTicks, _ = niceTicks(0, yMax, 5)
	return ch
}

// frame draws gridlines, both axes with ticks and labels.
func (ch *chart) frame() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<g class="grid" stroke="#ddd" stroke-width="1">`)
	for _, v := range ch.yTicks {
		y := ch.y.at(v)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s"/>`, c(padLeft), c(padLeft+innerW), c(y), c(y))
	}
	xt, _ := niceTicks(ch.x.lo, ch.x.hi, 8)
	for _, v := range xt {
		x := ch.x.at(v)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s"/>`, c(x), c(x), c(padTop), c(padTop+innerH))
	}
	b.WriteString(`</g>`)
	fmt.Fprintf(&b, `<g class="axis y" data-label="%s"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/>`,
		html.EscapeString(ch.yLabel), c(padLeft), c(padLeft), c(padTop), c(padTop+innerH))
	for _, v := range ch.yTicks {
		y := ch.y.at(v)
		fmt.Fprintf(&b, `<g class="tick"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/><text x="%s" y="%s" text-anchor="end" dy="4">%s</text></g>`,
			c(padLeft-tickLen), c(padLeft), c(y), c(y), c(padLeft-tickLen-2), c(y), html.EscapeString(ch.yFmt(v)))
	}
	fmt.Fprintf(&b, `<text class="label" transform="translate(14 %s) rotate(-90)" text-anchor="middle">%s</text></g>`,
		c(padTop+innerH/2), html.EscapeString(ch.yLabel))
	fmt.Fprintf(&b, `<g class="axis x" data-label="time"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/>`,
		c(padLeft), c(padLeft+innerW), c(padTop+innerH), c(padTop+innerH))
	for _, v := range xt {
		x := ch.x.at(v)
		fmt.Fprintf(&b, `<g class="tick"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/><text x="%s" y="%s" text-anchor="middle">%s</text></g>`,
			c(x), c(x), c(padTop+innerH), c(padTop+innerH+tickLen), c(x), c(padTop+innerH+tickLen+12), timeTick(v))
	}
	fmt.Fprintf(&b, `<text class="label" x="%s" y="%s" text-anchor="middle">time since start</text></g>`, c(padLeft+innerW/2), c(plotH-4))
	return b.String()
}

// line draws one series; NaN values break it (no data is not zero).
func (ch *chart) line(class, name, colour, dash string, width float64, xs, ys []float64) {
	var seg []string
	flush := func() {
		if len(seg) == 0 {
			return
		}
		d := ""
		if dash != "" {
			d = ` stroke-dasharray="` + dash + `"`
		}
		fmt.Fprintf(&ch.b, `<polyline class="series %s" data-series="%s" fill="none" stroke="%s" stroke-width="%s"%s points="%s"><title>%s</title></polyline>`,
			class, html.EscapeString(name), colour, c(width), d, strings.Join(seg, " "), html.EscapeString(name))
		if len(seg) == 1 { // a lone point would be invisible as a line
			xy := strings.Split(seg[0], ",")
			fmt.Fprintf(&ch.b, `<circle class="point" cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], colour)
		}
		seg = seg[:0]
	}
	for i, v := range ys {
		if math.IsNaN(v) {
			flush()
			continue
		}
		seg = append(seg, c(ch.x.at(xs[i]))+","+c(ch.y.at(v)))
	}
	flush()
}

// rect draws a bar in data coordinates.
func (ch *chart) rect(class, colour string, x0, x1, y0, y1 float64, title string) {
	px0, px1, py0, py1 := ch.x.at(x0), ch.x.at(x1), ch.y.at(y1), ch.y.at(y0)
	fmt.Fprintf(&ch.b, `<rect class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
		class, c(px0), c(py0), c(max(px1-px0, 0.5)), c(max(py1-py0, 0)), colour, html.EscapeString(title))
}

// marker is a point in time worth a vertical line: a backend first seen,
// a scale or Kubernetes event.
type marker struct {
	T           float64
	Kind, Label string
	Colour      string
}

// svg closes the chart with its markers, numbered as in the legend.
func (ch *chart) svg(markers []marker) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" data-chart="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" role="img" aria-label="%s">`,
		ch.id, c(plotW), c(plotH), html.EscapeString(ch.title))
	b.WriteString(ch.frame())
	b.WriteString(`<g class="data">`)
	b.WriteString(ch.b.String())
	b.WriteString(`</g>`)
	lastX, level := math.Inf(-1), 0
	for i, m := range markers {
		if i == maxDrawnMarkers {
			break
		}
		if m.T < ch.x.lo || m.T > ch.x.hi {
			continue
		}
		x := ch.x.at(m.T)
		// Labels of close markers step up rather than overlap.
		if x-lastX < 12 {
			level = (level + 1) % 2
		} else {
			level = 0
		}
		lastX = x
		fmt.Fprintf(&b, `<g class="marker" data-kind="%s"><line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/><text x="%s" y="%s" text-anchor="middle" fill="%s">%d</text><title>%s</title></g>`,
			m.Kind, c(x), c(x), c(padTop-2), c(padTop+innerH), m.Colour, c(x), c(markerLabelY-10*float64(level)), m.Colour, i+1, html.EscapeString(m.Label))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// noData is a chart's place when there is nothing to draw: it says why.
func noData(id, title, why string) string {
	return fmt.Sprintf(`<svg class="chart nodata" data-chart="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" role="img" aria-label="%s"><rect x="0.5" y="0.5" width="%s" height="%s" fill="#fafafa" stroke="#ccc"/><text x="%s" y="%s" text-anchor="middle">no data: %s</text></svg>`,
		id, c(plotW), c(noDataH), html.EscapeString(title), c(plotW-1), c(noDataH-1), c(plotW/2), c(noDataH/2+4), html.EscapeString(why))
}
