package report

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

// Run is one results file's part of an aggregation: its results count
// towards it, with offsets aligned on the earliest run's start.
type Run struct {
	a *Aggregator
	r *runAgg
}

// ErrEarlierRunAfterResults is returned by AddRun for a run that starts
// before every run added so far once results were added: the offsets already
// folded into intervals could no longer be aligned on the new earliest start.
// Add every run before the first result when merging files.
var ErrEarlierRunAfterResults = errors.New("a run starting before the others must be added before any result")

// AddRun registers the run a results file's header describes. Offsets of
// every run are aligned on the earliest Header.Start. The run's label and
// connection count appear in the summary.
func (a *Aggregator) AddRun(h results.Header) (*Run, error) {
	r, err := a.addRun(h.Label, h.URL, h.Start, h.Connections)
	if err != nil {
		return nil, err
	}
	r.rate, r.limit = h.Rate, h.Duration
	r.args, r.version = h.Args, h.Kaload
	if r.limit == 0 && h.Rate > 0 && h.Requests > 0 {
		r.limit = client.Intended(h.Requests, h.Rate) // the open model's -n ends then
	}
	return &Run{a: a, r: r}, nil
}

// Finish tells how the run ended: elapsed from its start until it stopped
// (client.Stats.Elapsed, or the results file's trailer), and unsent, the
// requests of an open-model run that were due but never sent
// (client.Stats.Unsent; -1 when not counted). The timeline then covers the
// whole run up to its duration limit, including a tail where nothing was
// sent. A closed-model run
// has no unsent count. AddAll calls it with the trailer of a complete file.
func (run *Run) Finish(elapsed time.Duration, unsent int64) {
	r := run.r
	if r.limit > 0 {
		// Requests answered after the limit were sent before it. A run
		// without a limit has no end to show beyond its last request (and a
		// clock that jumped would stretch the timeline without bound).
		r.end = min(max(elapsed, 0), r.limit)
	}
	if r.rate > 0 && unsent >= 0 {
		r.unsent = unsent
	}
}

func (a *Aggregator) addRun(label, url string, start time.Time, connections int) (*runAgg, error) {
	if len(a.runs) == 0 || (!a.started && start.Before(a.base)) {
		a.base = start
	} else if start.Before(a.base) {
		return nil, ErrEarlierRunAfterResults
	}
	r := &runAgg{label: label, url: url, start: start, connections: connections, end: -1, unsent: -1}
	a.runs = append(a.runs, r)
	for _, r := range a.runs {
		r.shift = r.start.Sub(a.base)
	}
	return r, nil
}

// Add folds one result into the aggregate, counted towards this run.
func (run *Run) Add(r *client.Result) { run.a.add(run.r, r) }

// AddAll folds every record rd has left into this run, events included. A
// file cut short still counts every whole record before the cut; the error
// then wraps results.ErrTruncated, for the caller to report as a warning.
func (run *Run) AddAll(ctx context.Context, rd *results.Reader) error {
	var r client.Result
	for n := 0; ; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		switch err := rd.Read(&r); {
		case err == nil:
			run.a.add(run.r, &r)
		case errors.Is(err, io.EOF):
			run.addEvents(rd.Events())
			if t, ok := rd.Trailer(); ok {
				run.Finish(t.End.Sub(rd.Header().Start), t.Unsent)
			}
			return nil
		default:
			if errors.Is(err, results.ErrTruncated) {
				run.addEvents(rd.Events())
			}
			return err
		}
	}
}

func (run *Run) addEvents(evs []results.Event) {
	for _, e := range evs {
		run.AddEvent(e)
	}
}

// Family names the experiment a results file belongs to, from its header:
// shards of one run (the hammers of one Job, labelled hammer-0, hammer-1,
// ...) share a family and merge; files of different lab scenarios, of
// differently labelled runs or against different URLs do not. The label
// counts without its trailing index (digits and the separator before them).
func Family(h results.Header) string {
	if sc := h.Meta["lab.scenario"]; sc != "" {
		return "lab scenario " + sc
	}
	label := strings.TrimRight(h.Label, "0123456789")
	if label != h.Label {
		label = strings.TrimRight(label, "-_.:/ ")
	}
	f := h.URL
	if label != "" {
		f = label + " " + f
	}
	return strings.TrimSpace(f)
}
