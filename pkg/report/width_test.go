package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestTableWidth: with real pod names the table format fits 80 and 100
// columns (compact backend table, narrower chart); --wide keeps the full
// table; no limit keeps today's layout.
func TestTableWidth(t *testing.T) {
	a := NewAggregator(Options{})
	f := newFeeder(a, 10)
	pods := []string{"web-7d4f9c8b6d-abcde", "web-7d4f9c8b6d-fghij", "web-7d4f9c8b6d-klmno"}
	for k := range 90 {
		from := time.Duration(k) * time.Second
		f.add(pods[0], from, time.Second, 10)
		f.add(pods[1], from, time.Second, 10)
		if k >= 30 {
			f.add(pods[2], from, time.Second, 5)
		}
	}
	s := a.Summary()
	render := func(width int, wide bool) string {
		var b bytes.Buffer
		if err := Render(&b, &Report{Summary: s, Width: width, Wide: wide}, "table"); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// Table and chart lines: the backend table's borders, the chart's rows.
	drawn := func(l string) bool { return strings.ContainsAny(l, "│┌└├") || strings.Contains(l, pods[0]) }
	for _, width := range []int{80, 100} {
		out := render(width, false)
		for _, l := range strings.Split(out, "\n") {
			if drawn(l) && utf8.RuneCountInString(l) > width {
				t.Errorf("at %d columns a line is %d wide: %q", width, utf8.RuneCountInString(l), l)
			}
		}
		if !strings.Contains(out, "p50/p99 ms") || strings.Contains(out, "Server count delta") {
			t.Errorf("at %d columns the backend table is not the compact one:\n%s", width, out)
		}
		// pod-1: p50 and p99 of latencies 1..10ms = 5.0/10.0 (hdr: 5.0/10.0).
		if !strings.Contains(out, "5.0/10.0") {
			t.Errorf("compact latency column lacks p50/p99 5.0/10.0:\n%s", out)
		}
	}
	if out := render(80, true); !strings.Contains(out, "Server count delta") {
		t.Errorf("--wide dropped the full table")
	}
	if render(0, false) != render(80, true) {
		t.Errorf("no width and --wide should render the same full layout")
	}
}
