package lab

import (
	"fmt"
	"io"
	"strconv"

	"github.com/kaload/kaload/pkg/report"
)

// RenderHTML writes the lab as one HTML page: the scenarios side by side,
// every chart on the same axes, each scale event marked.
func RenderHTML(w io.Writer, r *Result) error {
	p := report.HTMLPage{Title: "kaload lab", Facts: [][2]string{
		{"Mode", r.Mode},
		{"Balancer", string(r.Balancer)},
		{"Load", fmt.Sprintf("%s requests/s over %d connections for %ss per scenario", fnum(r.Rate), r.Conns, fnum(r.Duration))},
		{"Seed", strconv.FormatUint(r.Seed, 10)},
	}}
	if r.Capacity > 0 {
		p.Facts = append(p.Facts, [2]string{"Pod capacity", fnum(r.Capacity) + " requests/s"})
	}
	if r.Target > 0 {
		p.Facts = append(p.Facts, [2]string{"HPA target", fnum(r.Target) + " requests/s per pod"})
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if s.Run == nil {
			continue
		}
		col := report.HTMLColumn{Name: s.Name, Note: describe(s) + ". " + s.Verdict,
			Report: &report.Report{Summary: s.Run}}
		if s.AfterScale != nil {
			col.Report.Expectations = s.AfterScale.Expectations
		}
		for _, e := range s.ScaleEvents {
			col.Markers = append(col.Markers, report.HTMLMarker{TSeconds: e.AtSeconds, Kind: "scale",
				Label: fmt.Sprintf("scaled %d → %d pods", e.From, e.To)})
		}
		p.Columns = append(p.Columns, col)
	}
	return report.RenderHTML(w, p)
}

func fnum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
