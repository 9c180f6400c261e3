package report

import (
	"fmt"
	"strings"

	"github.com/kaload/kaload/pkg/report/results"
)

// eventMarker is the timeline's mark for an event, by importance: a scale
// decision (S), a pod created (C), Ready (R), an endpoint ready (E), a pod
// or endpoint leaving (X), a watch gap (!); 0 for events not drawn.
func eventMarker(e Event) (rune, int) {
	switch e.Kind {
	case results.EventWatchLost:
		return '!', 6
	case results.EventHPA:
		if rose(e.Detail, "desired") {
			return 'S', 5
		}
	case results.EventScale:
		if rose(e.Detail, "replicas") {
			return 'S', 5
		}
	case results.EventPodCreated:
		return 'C', 4
	case results.EventPodReady:
		return 'R', 3
	case results.EventEndpointReady:
		return 'E', 2
	case results.EventPodDeleted, results.EventEndpointRemoved, results.EventEndpointTerminating:
		return 'X', 1
	}
	return 0, 0
}

const markerLegend = "S scale decision, C pod created, R pod Ready, E endpoint ready, X pod or endpoint leaving, ! watch lost"

// markerRow puts each event in the chart's column of its time: the most
// important one when several share a column.
func markerRow(t Timeline, evs []Event, n, per, cols int) string {
	marks := make([]rune, cols)
	rank := make([]int, cols)
	for i := range marks {
		marks[i] = ' '
	}
	span := t.IntervalSeconds * float64(per)
	end := t.StartSeconds + t.IntervalSeconds*float64(n)
	for _, e := range evs {
		m, r := eventMarker(e)
		if m == 0 || e.TSeconds < t.StartSeconds || e.TSeconds >= end || span <= 0 {
			continue
		}
		c := min(int((e.TSeconds-t.StartSeconds)/span), cols-1)
		if r > rank[c] {
			marks[c], rank[c] = m, r
		}
	}
	return string(marks)
}

// maxEventLines bounds the event list of the text report; JSON has them all.
const maxEventLines = 40

// writeEvents lists the events and each new pod's stages under the chart.
func writeEvents(ew *errWriter, s *Summary) {
	if len(s.Events) > 0 {
		ew.printf("Events (%s):\n", markerLegend)
		for i, e := range s.Events {
			if i == maxEventLines {
				ew.printf("  ... %d more (--format json lists them all)\n", len(s.Events)-i)
				break
			}
			m, _ := eventMarker(e)
			if m == 0 {
				m = ' '
			}
			ew.printf("  %c %8s  %-20s %-28s %s\n", m, secs(e.TSeconds), e.Kind, e.Object, e.Detail)
		}
		ew.printf("\n")
	}
	for _, l := range stageLines(s) {
		ew.printf("%s\n\n", l)
	}
}

// stageLines are the new pods' stages and, once a backend was added (when
// it matters), the recommendation: for the text and HTML reports.
func stageLines(s *Summary) []string {
	var out []string
	for _, p := range s.Stages {
		out = append(out, "Stages: "+stagesLine(p))
	}
	if r := s.Recommendation; r != nil && (len(s.Stages) > 0 || len(s.Rebalance) > 0) {
		out = append(out, fmt.Sprintf("Recommendation (kaload serve, fair share within %gs): %s", r.TargetRebalanceSeconds, r.Arithmetic))
	}
	return out
}

// stagesLine is one pod's stages as offsets, the slow one named.
func stagesLine(p PodStages) string {
	var b strings.Builder
	b.WriteString(p.Pod)
	b.WriteString(":")
	for i, v := range p.points() {
		name := [...]string{"decision", "created", "Ready", "endpoint ready", "first request", "fair share"}[i]
		b.WriteString(" ")
		if i > 0 {
			b.WriteString("-> ")
		}
		b.WriteString(name)
		b.WriteString(" ")
		if v == nil {
			if i == 0 {
				b.WriteString("not recorded")
			} else {
				b.WriteString("never within the run")
			}
			continue
		}
		b.WriteString(secs(*v))
	}
	if p.SlowStage != "" {
		b.WriteString(" (slow: " + p.SlowStage + ")")
	}
	if p.NeverArrived {
		b.WriteString(": capacity that never arrived")
	}
	return b.String()
}
