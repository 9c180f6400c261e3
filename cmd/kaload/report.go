package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

type reportOptions struct {
	Files    []string
	Window   report.Options
	Output   reportOutput
	Expects  []report.Expectation
	Warnings io.Writer // where a truncated file is reported
	Merge    bool      // merge files of different experiments all the same
}

// reportOutput is how a summary leaves the program; hammer uses it too, so
// both commands print the same report.
type reportOutput struct {
	Format string // one of report.Formats
	File   string // -o: write the report here instead of stdout
	JUnit  string // --junit: expectations as JUnit XML
	Wide   bool   // --wide: the full table even on a narrow terminal
}

func newCmdReport(s *streams, runF func(context.Context, *reportOptions) error) *cobra.Command {
	opts := &reportOptions{Warnings: s.Err}
	var exprs []string
	cmd := &cobra.Command{
		Use:   "report FILE...",
		Short: "Summarise results files: distribution per backend, fairness, rebalance, CI checks",
		Long: `Read results files written by 'kaload hammer -o' and show how requests spread over
backends: per-backend requests, share, connections and latency; fairness
(Jain's index, min/max share); a timeline of each backend's share per interval;
how long a backend that appeared mid-run (a scale-up) took to get its fair
share; and a verdict in plain words.

Several files are merged (one per hammer pod of a distributed run), aligned
on their start times. Files whose headers say they are different experiments
(lab scenarios, labels other than an index like hammer-0 and hammer-1, other
URLs) are refused with the list of each experiment's files (--merge merges
them all the same). FILE "-" reads standard input; a directory stands for
the *.kld and *.jsonl files in it. --from and --to restrict every figure to
a window of the run, in offsets from its start.

--expect checks a metric; every check prints PASS, FAIL or NO DATA with the
actual value, and any failure makes the exit code 3 after the report is
printed. Metrics:
` + wrapWords(strings.Join(report.MetricNames(), ", "), 76, "  ") + `
Latency and rebalance take a duration (50ms, 2s); shares take 0..1 or a percentage.
A metric that was not measured (no requests in the window, no response for a
latency, no backend of that name, no backend that appeared, one backend
answering with none named by --backends) is NO DATA: not met, exit 3. An
expression that cannot be true or false (min_share>=2, p99<0s) exits 2.

` + report.ServerCountHelp + `

` + report.RulesHelp() + `

Exit codes: 0 ok, 1 unreadable file, 2 bad flag or expression, 3 an --expect failed.`,
		Example: `  kaload report run.kld
  kaload report hammer-*.kld --from 30s --format markdown >> "$GITHUB_STEP_SUMMARY"
  kaload report run.kld --expect 'backends>=2' --expect 'min_share>=0.3' --expect 'rebalance<5s'
  kaload report run.kld --expect 'p99<50ms' --expect 'share(pod-a)<=0.6' --junit expect.xml
  kaload report run.kld --format csv --interval 500ms -o timeline.csv
  kaload report run.kld --format html -o report.html
  kaload report run.kld --backends web-7d4f-abcde,web-7d4f-fghij,web-7d4f-klmno
  kaload hammer --url http://svc:8080/ -d 1m -o - --quiet | kaload report -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("no results file given: name the files 'kaload hammer -o' wrote, a directory of them, or - for standard input\nUsage: %s\nSee '%s --help'.",
					cmd.UseLine(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			if i := slices.Index(args, "-"); i >= 0 && slices.Contains(args[i+1:], "-") {
				return usageErrorf("standard input (-) can be read only once")
			}
			if err := checkOutput(&opts.Output); err != nil {
				return err
			}
			if err := checkWindow(opts.Window); err != nil {
				return err
			}
			if err := checkMaxBackends(opts.Window.MaxBackends); err != nil {
				return err
			}
			exps, err := report.ParseExpectations(exprs)
			if err != nil {
				return usageErrorf("--expect: %w", err)
			}
			opts.Expects = exps
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runReport(cmd.Context(), opts, s)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.Window.From, "from", 0, "only count requests that started at or after this offset from the run's start")
	f.DurationVar(&opts.Window.To, "to", 0, "only count requests that started before this offset (0: until the end)")
	f.DurationVar(&opts.Window.Interval, "interval", time.Second, "width of one timeline interval")
	f.DurationVar(&opts.Window.TargetRebalance, "target-rebalance", report.DefaultTargetRebalance, "recommend recycling reaching fair share within `D`")
	f.BoolVar(&opts.Merge, "merge", false, "merge files even when their headers say they are different experiments")
	f.StringSliceVar(&opts.Window.Backends, "backends", nil, "pods known to exist: one that got nothing counts with 0 requests")
	f.IntVar(&opts.Window.MaxBackends, "max-backends", report.DefaultMaxBackends, "backends shown one by one, the rest fold into "+report.OtherBackend+"; -1: all")
	addReportOutputFlags(cmd, &opts.Output)
	f.StringArrayVar(&exprs, "expect", nil, "check a metric, e.g. 'min_share>=0.3' (repeatable); a failure exits 3")
	return cmd
}

// wrapWords breaks text into indented lines of at most width bytes.
func wrapWords(text string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	b.WriteString(line)
	return b.String()
}

// addReportOutputFlags defines --format, -o and --junit.
func addReportOutputFlags(cmd *cobra.Command, out *reportOutput) {
	f := cmd.Flags()
	f.StringVar(&out.Format, "format", "table", "output format: "+report.FormatHelp())
	f.StringVarP(&out.File, "output", "o", "", "write the report to this file instead of stdout")
	f.StringVar(&out.JUnit, "junit", "", "also write the --expect results to this file as JUnit XML")
	f.BoolVar(&out.Wide, "wide", false, "table: all backend columns on a narrow terminal")
}

// terminalWidth is w's columns when it is a terminal, else 0 (no limit).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}

func checkOutput(out *reportOutput) error {
	if !slices.Contains(report.Formats, out.Format) {
		return usageErrorf("--format %q: valid formats are %s", out.Format, strings.Join(report.Formats, ", "))
	}
	return nil
}

func checkWindow(w report.Options) error {
	switch {
	case w.From < 0:
		return usageErrorf("--from %v: must not be negative", w.From)
	case w.To < 0:
		return usageErrorf("--to %v: must not be negative", w.To)
	case w.To > 0 && w.To <= w.From:
		return usageErrorf("--to %v must be after --from %v", w.To, w.From)
	case w.Interval <= 0:
		return usageErrorf("--interval %v: must be positive", w.Interval)
	}
	return nil
}

func runReport(ctx context.Context, opts *reportOptions, s *streams) error {
	// Open every file first: a missing one fails before any work, and the
	// runs must all be known to align their offsets.
	readers := make([]*results.Reader, 0, len(opts.Files))
	defer func() {
		for _, rd := range readers {
			rd.Close()
		}
	}()
	files, err := expandDirs(opts.Files)
	if err != nil {
		return err
	}
	agg := report.NewAggregator(opts.Window)
	runs := make([]*report.Run, 0, len(files))
	var families []string
	for _, path := range files {
		var rd *results.Reader
		var err error
		if path == "-" {
			rd, err = results.NewReader(s.In)
			if err != nil {
				err = fmt.Errorf("standard input: %w", err)
			}
		} else {
			rd, err = results.OpenFile(path)
		}
		if err != nil {
			return err
		}
		readers = append(readers, rd)
		families = append(families, report.Family(rd.Header()))
		run, err := agg.AddRun(rd.Header())
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, run)
	}
	if !opts.Merge {
		if err := checkFamilies(files, families); err != nil {
			return err
		}
	}
	for i, rd := range readers {
		// A truncated file is a warning: every whole record before the cut counts.
		if err := runs[i].AddAll(ctx, rd); errors.Is(err, results.ErrTruncated) {
			fmt.Fprintf(opts.Warnings, "kaload: warning: %v; reporting the records before it\n", err)
		} else if err != nil {
			return err
		}
	}
	sum := agg.Summary()
	if sum.FoldedBackends > 0 {
		fmt.Fprintf(opts.Warnings, "kaload: warning: %s\n", report.FoldedLine(sum))
	}
	return emitReport(sum, opts.Expects, opts.Output, s)
}

// checkMaxBackends refuses 0, which the library reads as "the default".
func checkMaxBackends(n int) error {
	if n == 0 || n < -1 {
		return usageErrorf("--max-backends %d: must be at least 1, or -1 for no cap", n)
	}
	return nil
}

// checkFamilies refuses to merge files whose headers say they are different
// experiments (lab scenarios, differently labelled runs, other URLs): one
// report of them would mix what should be compared. Shards of one run (one
// Job's hammers) share a family and merge.
func checkFamilies(files, families []string) error {
	var order []string
	byFamily := map[string][]string{}
	for i, f := range families {
		if _, ok := byFamily[f]; !ok {
			order = append(order, f)
		}
		byFamily[f] = append(byFamily[f], files[i])
	}
	if len(order) < 2 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "these files are %d different experiments, not shards of one run; report each on its own:", len(order))
	for _, f := range order {
		name := f
		if name == "" {
			name = "(no label, no URL)"
		}
		fmt.Fprintf(&b, "\n  %s: kaload report %s", name, strings.Join(byFamily[f], " "))
	}
	b.WriteString("\n(--merge merges them all the same)")
	return usageErrorf("%s", b.String())
}

// expandDirs replaces each directory argument by the results files in it
// (*.kld and *.jsonl, by name), e.g. the volume a hammer Job wrote to.
func expandDirs(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		if fi, err := os.Stat(a); a == "-" || err != nil || !fi.IsDir() {
			files = append(files, a) // opening it reports what is wrong
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		n := len(files)
		for _, e := range entries {
			if name := e.Name(); e.Type().IsRegular() && (strings.HasSuffix(name, ".kld") || strings.HasSuffix(name, ".jsonl")) {
				files = append(files, filepath.Join(a, name))
			}
		}
		if len(files) == n {
			return nil, fmt.Errorf("%s: no results files (*.kld, *.jsonl) in this directory", a)
		}
	}
	return files, nil
}

// emitReport checks the expectations, writes the report (stdout or -o) and
// the JUnit file, and returns errExpectFailed when a check failed.
func emitReport(sum *report.Summary, exps []report.Expectation, out reportOutput, s *streams) error {
	checked, ok := report.Check(sum, exps)
	rep := &report.Report{Summary: sum, Expectations: checked, Wide: out.Wide}
	if out.File == "" {
		rep.Width = terminalWidth(s.Out) // a narrow terminal gets the compact table
	}
	if err := writeReportTo(out.File, s.Out, func(w io.Writer) error { return report.Render(w, rep, out.Format) }); err != nil {
		return err
	}
	if out.JUnit != "" {
		if err := writeReportTo(out.JUnit, s.Out, func(w io.Writer) error { return report.WriteJUnit(w, rep) }); err != nil {
			return err
		}
	}
	if !ok {
		// With the report in a file or a machine format, still tell the person.
		if out.File != "" || out.Format != "table" {
			for _, e := range checked {
				if !e.OK {
					fmt.Fprintf(s.Err, "kaload: expectation not met: %s %s (actual %s)\n", e.Status, e.Expr, e.Actual)
				}
			}
		}
		return errExpectFailed
	}
	return nil
}

// writeReportTo writes to path, or to def when path is empty.
func writeReportTo(path string, def io.Writer, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(def)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
