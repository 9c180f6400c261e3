package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/kaload/kaload/pkg/report"
)

// RenderJSON writes r as one indented JSON object: {"scenarios": [...], ...}.
func RenderJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// RenderTable writes the terminal report: per scenario the pod count over
// time, the run's report (timeline chart, per-pod table), each new pod's
// rebalance time; then the side-by-side comparison and the expectations.
func RenderTable(w io.Writer, r *Result) error {
	// Built in memory (a few kB per scenario): one write, one error to check.
	var b bytes.Buffer
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		fmt.Fprintf(&b, "=== Scenario %d/%d: %s (%s) ===\n\n", i+1, len(r.Scenarios), s.Name, describe(s))
		renderPods(&b, r, s)
		fmt.Fprintln(&b)
		if err := report.Render(&b, &report.Report{Summary: s.Run}, "table"); err != nil {
			return err
		}
		fmt.Fprintln(&b)
		renderRebalance(&b, s)
		fmt.Fprintln(&b)
	}
	renderComparison(&b, r)
	renderExpectations(&b, r)
	_, err := w.Write(b.Bytes())
	return err
}

func describe(s *ScenarioResult) string {
	var parts []string
	if s.MaxRequests > 0 {
		parts = append(parts, fmt.Sprintf("pods close a connection after %d responses", s.MaxRequests))
	}
	if s.MaxConnAge > 0 {
		parts = append(parts, fmt.Sprintf("pods close connections older than %gs", s.MaxConnAge))
	}
	if len(parts) == 0 {
		return "keep-alive, no recycling"
	}
	return strings.Join(parts, "; ")
}

// renderPods prints the pod count over time and, with the HPA, each decision.
func renderPods(w io.Writer, r *Result, s *ScenarioResult) {
	line := fmt.Sprintf("Pods over time: %d at 0.0s", s.PodsBefore)
	for _, e := range s.ScaleEvents {
		line += fmt.Sprintf(" -> %d at %.1fs", e.To, e.AtSeconds)
	}
	fmt.Fprintln(w, line)
	if len(s.HPA) == 0 {
		return
	}
	fmt.Fprintf(w, "HPA (target %.0f req/s per pod, 10%% tolerance):\n", r.Target)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  at\tpods\tavg req/s per pod\tratio\tdecision")
	for _, d := range s.HPA {
		var what string
		raw := int(math.Ceil(float64(d.Replicas) * d.AverageRPS / d.TargetRPS))
		switch {
		case d.Desired > d.Replicas:
			what = fmt.Sprintf("scale up to %d", d.Desired)
		case d.Desired < d.Replicas:
			what = fmt.Sprintf("scale down to %d", d.Desired)
		case d.WithinRange:
			what = "keep (within tolerance)"
		case raw == d.Replicas:
			what = fmt.Sprintf("keep: ceil(%d x %.2f) = %d", d.Replicas, d.AverageRPS/d.TargetRPS, raw)
		case raw < d.Replicas:
			what = fmt.Sprintf("keep: wants %d, held by the scale-down stabilisation window", raw)
		default:
			what = fmt.Sprintf("keep: wants %d, held by maxReplicas or the scale-up policy", raw)
		}
		fmt.Fprintf(tw, "  %.1fs\t%d\t%.1f\t%.2f\t%s\n", d.AtSeconds, d.Replicas, d.AverageRPS, d.AverageRPS/d.TargetRPS, what)
	}
	tw.Flush()
}

// renderRebalance tells, for every pod created by scaling, when it got its
// fair share, including the pods no request ever reached.
func renderRebalance(w io.Writer, s *ScenarioResult) {
	reb := map[string]report.Rebalance{}
	for _, rb := range s.Run.Rebalance {
		reb[rb.Backend] = rb
	}
	fmt.Fprintln(w, "New pods:")
	any := false
	for _, b := range s.Run.Backends[min(s.PodsBefore, len(s.Run.Backends)):] {
		any = true
		rb, ok := reb[b.Name]
		switch {
		case b.Requests == 0:
			fmt.Fprintf(w, "  %s: never received a request\n", b.Name)
		case ok && rb.FairShareAfterSeconds != nil:
			fmt.Fprintf(w, "  %s: first request sent at %.1fs, fair share after %.1fs\n", b.Name, rb.AppearedSeconds, *rb.FairShareAfterSeconds)
		case ok:
			fmt.Fprintf(w, "  %s: first request sent at %.1fs, never reached its fair share (%.1f%% vs %.1f%%)\n", b.Name, rb.AppearedSeconds, 100*rb.ShareAfter, 100*rb.FairShare)
		default:
			fmt.Fprintf(w, "  %s: %d requests, the first sent at %.1fs\n", b.Name, b.Requests, *b.FirstSeenSeconds)
		}
	}
	if !any {
		fmt.Fprintln(w, "  none")
	}
}

// RenderComparison writes the side-by-side table of every scenario and
// one verdict line each.
func RenderComparison(w io.Writer, r *Result) error {
	var b bytes.Buffer
	renderComparison(&b, r)
	_, err := w.Write(b.Bytes())
	return err
}

func renderComparison(ew *bytes.Buffer, r *Result) {
	mode := "fixed scale event"
	if r.Mode == "hpa" {
		mode = fmt.Sprintf("HPA, target %.0f req/s per pod", r.Target)
	}
	fmt.Fprintf(ew, "=== Comparison: %.0f req/s over %d connections, %.0fs per scenario, %s, %s balancer (seed %d) ===\n\n",
		r.Rate, r.Conns, r.Duration, mode, r.Balancer, r.Seed)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	row := func(label string, f func(s *ScenarioResult) string) {
		fmt.Fprint(tw, label)
		for i := range r.Scenarios {
			fmt.Fprint(tw, "\t", f(&r.Scenarios[i]))
		}
		fmt.Fprintln(tw)
	}
	row("", func(s *ScenarioResult) string { return s.Name })
	row("pods before -> after", func(s *ScenarioResult) string { return fmt.Sprintf("%d -> %d", s.PodsBefore, s.PodsAfter) })
	row("new pods' share after scale-up", func(s *ScenarioResult) string {
		return fmt.Sprintf("%.1f%% (fair %.1f%%)", 100*s.NewPodsShare, 100*s.FairShare)
	})
	row("Jain's index after scale-up", func(s *ScenarioResult) string {
		if s.JainAfter == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", *s.JainAfter)
	})
	row("p99 of the busiest pod", func(s *ScenarioResult) string {
		if s.BusiestP99 == nil {
			return "-"
		}
		return fmt.Sprintf("%s (%s)", fmtMillis(*s.BusiestP99), s.BusiestPod)
	})
	if len(r.Scenarios) > 0 && r.Scenarios[0].NewPodsSocketShare != nil {
		row("new pods' sockets at the end", func(s *ScenarioResult) string {
			if s.NewPodsSocketShare == nil {
				return "-"
			}
			return fmt.Sprintf("%.1f%% of %d (fair %.1f%%)", 100**s.NewPodsSocketShare, s.SocketsHeld, 100*s.FairShare)
		})
	}
	row("connections used", func(s *ScenarioResult) string { return fmt.Sprintf("%d", s.Connections) })
	row("requests (errors)", func(s *ScenarioResult) string { return fmt.Sprintf("%d (%d)", s.Run.Requests, s.Run.Errors) })
	row("due, not sent (all slots busy)", func(s *ScenarioResult) string {
		return fmt.Sprintf("%d of %d", s.Unsent, s.Due)
	})
	row("outcome", func(s *ScenarioResult) string { return string(s.Outcome) })
	tw.Flush()
	fmt.Fprintln(ew)
	for _, s := range r.Scenarios {
		fmt.Fprintf(ew, "%-16s %s\n", s.Name+":", s.Verdict)
		if s.ResultsFile != "" {
			fmt.Fprintf(ew, "%-16s results file: kaload report %s\n", "", s.ResultsFile)
		}
	}
}

func renderExpectations(ew *bytes.Buffer, r *Result) {
	header := false
	for _, s := range r.Scenarios {
		for _, x := range s.AfterScale.Expectations {
			if !header {
				fmt.Fprintln(ew, "\nExpectations (window after the last scale event):")
				header = true
			}
			fmt.Fprintf(ew, "  %-7s %s: %s (actual %s)\n", x.Status, s.Name, x.Expr, x.Actual)
		}
	}
}
