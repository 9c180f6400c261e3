package report

import (
	"cmp"
	"slices"
	"strings"
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

// eventSummary lists the events inside the window [From, To); a window that
// starts with the run keeps the state recorded before it (negative offsets).
func (a *Aggregator) eventSummary(evs []results.Event) []Event {
	var out []Event
	for _, e := range evs {
		if a.opts.From > 0 && e.T < a.opts.From || a.opts.To > 0 && e.T >= a.opts.To {
			continue
		}
		out = append(out, Event{TSeconds: round(seconds(e.T), 6), Kind: e.Kind, Object: e.Object, Detail: e.Detail})
	}
	return out
}

// knownBackends are the backends known to exist in the window: those of
// Options.Backends and every pod an event says was Ready (pod.ready,
// endpoint.ready) before the window's end and not gone (deleted, endpoint
// removed) before its start. A pod that answered nothing is invisible to a
// client; known, it counts with zero requests. A pod event names its backend
// with backend=NAME in Detail, else the pod's name stands for it.
//
// readyAt holds when each pod known from events first became Ready.
func (a *Aggregator) knownBackends(evs []results.Event, end time.Duration) (names []string, readyAt map[string]time.Duration) {
	names = slices.Clone(a.opts.Backends)
	readyAt = map[string]time.Duration{}
	ready := map[string]bool{}
	var order []string
	for _, e := range evs {
		name, ok := results.EventField(e.Detail, "backend")
		if !ok {
			pod, isPod := strings.CutPrefix(e.Object, "pod/")
			if !isPod {
				continue
			}
			name = pod
		}
		switch e.Kind {
		case results.EventPodReady, results.EventEndpointReady:
			if e.T < end || a.opts.To > 0 && e.T < a.opts.To {
				if _, seen := ready[name]; !seen {
					order = append(order, name)
					readyAt[name] = e.T
				}
				ready[name] = true
			}
		case results.EventPodDeleted, results.EventEndpointRemoved:
			if e.T < a.opts.From {
				ready[name] = false
			}
		}
	}
	for _, n := range order {
		if ready[n] && n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, readyAt
}
