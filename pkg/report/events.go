package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/kaload/kaload/pkg/report/results"
)

// Event is a results.Event in the summary: what the cluster (or the lab)
// did, in seconds from the start of the earliest run.
type Event struct {
	TSeconds float64 `json:"t_seconds"`
	Kind     string  `json:"kind"`
	Object   string  `json:"object"`
	Detail   string  `json:"detail,omitempty"`
}

type runEvent struct {
	run *runAgg
	ev  results.Event
}

// AddEvent records an event of this run. Events are kept as they come (a run
// that watches one workload has a few per pod) and aligned on the earliest
// run's start when the summary is made.
func (run *Run) AddEvent(e results.Event) {
	run.a.events = append(run.a.events, runEvent{run: run.r, ev: e})
}

// sameEventWindow: merged runs that watched the same cluster record the
// same event twice, a little apart; within this window they are one.
const sameEventWindow = 2 * time.Second

// eventOffsets returns every event on the aggregate's clock, sorted by time,
// an event that two merged runs both recorded once (the earliest sighting).
func (a *Aggregator) eventOffsets() []results.Event {
	out := make([]results.Event, 0, len(a.events))
	for _, re := range a.events {
		e := re.ev
		e.T += re.run.shift
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(x, y results.Event) int { return cmp.Compare(x.T, y.T) })
	if len(a.runs) < 2 {
		return out
	}
	type key struct{ kind, object, detail string }
	last := map[key]time.Duration{}
	kept := out[:0]
	for _, e := range out {
		k := key{e.Kind, e.Object, e.Detail}
		if t, ok := last[k]; ok && e.T-t <= sameEventWindow {
			continue
		}
		last[k] = e.T
		kept = append(kept, e)
	}
	return kept
}

// eventSummary lists the events inside the window [From, To).
func (a *Aggregator) eventSummary(evs []results.Event) []Event {
	var out []Event
	for _, e := range evs {
		if e.T < a.opts.From || a.opts.To > 0 && e.T >= a.opts.To {
			continue
		}
		out = append(out, Event{TSeconds: round(seconds(e.T), 6), Kind: e.Kind, Object: e.Object, Detail: e.Detail})
	}
	return out
}
