package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kaload/kaload/pkg/report/results"
)

// PodStages is one pod's way into traffic, from the events of a watched run
// (kaload hammer --watch, kaload lab) next to the requests: offsets in
// seconds from the run's start; nil when that stage did not happen within
// the run (or, for the decision, was not recorded).
type PodStages struct {
	Pod     string `json:"pod"`
	Backend string `json:"backend"`
	// DecisionSeconds is the scale-up that asked for the pod: the HPA's
	// desired replicas rising (else the workload's replicas rising), the
	// last one at or before the pod was created.
	DecisionSeconds      *float64 `json:"decision_seconds"`
	CreatedSeconds       float64  `json:"created_seconds"`
	ReadySeconds         *float64 `json:"ready_seconds"`
	EndpointReadySeconds *float64 `json:"endpoint_ready_seconds"`
	FirstRequestSeconds  *float64 `json:"first_request_seconds"`
	// FairShareSeconds is when it reached its fair share (see Rules) and held it.
	FairShareSeconds *float64 `json:"fair_share_seconds"`
	// SlowStage names the longest stage ("endpoint ready -> first request");
	// a stage that never ended is the slow one.
	SlowStage string `json:"slow_stage,omitempty"`
	// NeverArrived: the pod was Ready and got no request in the run.
	NeverArrived bool `json:"capacity_never_arrived,omitempty"`
}

// Stage names, in order.
var stageNames = [...]string{
	"scale decision -> pod created",
	"pod created -> Ready",
	"Ready -> endpoint ready",
	"endpoint ready -> first request",
	"first request -> fair share",
}

func (p *PodStages) points() [6]*float64 {
	created := p.CreatedSeconds
	return [6]*float64{p.DecisionSeconds, &created, p.ReadySeconds, p.EndpointReadySeconds, p.FirstRequestSeconds, p.FairShareSeconds}
}

// podStages follows every pod created during the run (offset >= 0) through
// the events and the traffic summary s.
func podStages(evs []results.Event, s *Summary) []PodStages {
	var out []PodStages
	index := map[string]int{}
	for _, e := range evs {
		if e.Kind != results.EventPodCreated || e.T < 0 || !strings.HasPrefix(e.Object, "pod/") {
			continue
		}
		name := strings.TrimPrefix(e.Object, "pod/")
		if _, ok := index[name]; ok {
			continue
		}
		backend, ok := results.EventField(e.Detail, "backend")
		if !ok {
			backend = name
		}
		index[name] = len(out)
		out = append(out, PodStages{Pod: name, Backend: backend, CreatedSeconds: round(seconds(e.T), 6)})
	}
	if len(out) == 0 {
		return nil
	}
	// The scale decision: the last scale-up at or before the pod's creation,
	// the HPA's when it was watched.
	var hpaUps, workloadUps []time.Duration
	for _, e := range evs {
		switch e.Kind {
		case results.EventHPA:
			if rose(e.Detail, "desired") {
				hpaUps = append(hpaUps, e.T)
			}
		case results.EventScale:
			if rose(e.Detail, "replicas") {
				workloadUps = append(workloadUps, e.T)
			}
		}
	}
	ups := hpaUps
	if len(ups) == 0 {
		ups = workloadUps
	}
	for i := range out {
		created := out[i].CreatedSeconds
		for _, t := range ups {
			if v := round(seconds(t), 6); v <= created {
				out[i].DecisionSeconds = &v
			}
		}
	}
	for _, e := range evs {
		i, ok := index[strings.TrimPrefix(e.Object, "pod/")]
		if !ok || round(seconds(e.T), 6) < out[i].CreatedSeconds {
			continue
		}
		v := round(seconds(e.T), 6)
		switch {
		case e.Kind == results.EventPodReady && out[i].ReadySeconds == nil:
			out[i].ReadySeconds = &v
		case e.Kind == results.EventEndpointReady && out[i].EndpointReadySeconds == nil:
			out[i].EndpointReadySeconds = &v
		}
	}
	for i := range out {
		p := &out[i]
		for _, b := range s.Backends {
			if b.Name == p.Backend && b.Requests > 0 && b.FirstSeenSeconds != nil {
				v := *b.FirstSeenSeconds
				p.FirstRequestSeconds = &v
			}
		}
		for _, r := range s.Rebalance {
			if r.Backend == p.Backend && r.FairShareAfterSeconds != nil {
				v := round(r.AppearedSeconds+*r.FairShareAfterSeconds, 6)
				p.FairShareSeconds = &v
			}
		}
		p.NeverArrived = p.ReadySeconds != nil && p.FirstRequestSeconds == nil
		p.SlowStage = slowStage(p)
	}
	return out
}

// rose reports whether key=N rose from was=N in an event's detail.
func rose(detail, key string) bool {
	v, ok1 := EventInt(detail, key)
	was, ok2 := EventInt(detail, "was")
	return ok1 && ok2 && v > was
}

// EventInt reads an integer key=N of an event's detail.
func EventInt(detail, key string) (int, bool) {
	s, ok := results.EventField(detail, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// slowStage is the longest stage between recorded points; a stage whose
// start happened and whose end did not is the slow one.
func slowStage(p *PodStages) string {
	pts := p.points()
	best, longest := "", -1.0
	for i := 0; i+1 < len(pts); i++ {
		switch {
		case pts[i] == nil:
			continue
		case pts[i+1] == nil:
			// Later stages cannot have happened without this one; the first
			// stage that never ended is where the time went.
			if i+1 == 3 && pts[4] != nil {
				continue // traffic came without a recorded endpoint (a lost watch)
			}
			return stageNames[i]
		}
		if d := *pts[i+1] - *pts[i]; d > longest {
			best, longest = stageNames[i], d
		}
	}
	return best
}

// stagesVerdict says where the time went, pod by pod.
func stagesVerdict(ps []PodStages) string {
	var parts []string
	for _, p := range ps {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: created at %.1fs", p.Pod, p.CreatedSeconds)
		if p.DecisionSeconds != nil {
			fmt.Fprintf(&b, " (%.1fs after the scale decision)", p.CreatedSeconds-*p.DecisionSeconds)
		}
		step := func(name string, v *float64, from *float64) {
			switch {
			case v == nil:
				fmt.Fprintf(&b, ", %s never within the run", name)
			case from != nil:
				fmt.Fprintf(&b, ", %s %.1fs later", name, *v-*from)
			default:
				fmt.Fprintf(&b, ", %s at %.1fs", name, *v)
			}
		}
		created := p.CreatedSeconds
		step("Ready", p.ReadySeconds, &created)
		if p.EndpointReadySeconds != nil || p.FirstRequestSeconds == nil {
			step("endpoint ready", p.EndpointReadySeconds, p.ReadySeconds)
		}
		prev := p.EndpointReadySeconds
		if prev == nil {
			prev = p.ReadySeconds
		}
		step("first request", p.FirstRequestSeconds, prev)
		if p.FirstRequestSeconds != nil {
			step("fair share", p.FairShareSeconds, p.FirstRequestSeconds)
		}
		if p.NeverArrived {
			b.WriteString(": capacity that never arrived (Ready, but no request reached it)")
		}
		if p.SlowStage != "" {
			fmt.Fprintf(&b, "; the slow stage is %s%s", p.SlowStage, stageAdvice(p.SlowStage))
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}

func stageAdvice(stage string) string {
	switch stage {
	case stageNames[3], stageNames[4]:
		return ": connections are pinned to the old pods; recycle them (kaload serve --max-requests or --max-conn-age, see the recommendation)"
	case stageNames[1]:
		return ": the pod starts or passes its readiness probe slowly"
	case stageNames[2]:
		return ": the endpoint came late to the Service (EndpointSlice controller)"
	case stageNames[0]:
		return ": the pod was created late (controller, quota or admission)"
	}
	return ""
}

// stageMetric is an --expect metric over the new pods' stages: the worst
// (longest) duration from one point to another. A pod where the start
// happened and the end did not counts as never (+Inf); without any pod
// where the start happened there is no data.
func stageMetric(from, to int, fromName string) metricFunc {
	return func(s *Summary, _ string) (float64, string) {
		if len(s.Stages) == 0 {
			if len(s.Events) == 0 {
				return 0, "no events: the run watched no cluster (kaload hammer --watch) and is not a lab run"
			}
			return 0, "no pod was created during the run"
		}
		worst, seen := 0.0, false
		for i := range s.Stages {
			pts := s.Stages[i].points()
			if pts[from] == nil {
				continue
			}
			seen = true
			if pts[to] == nil {
				return math.Inf(1), ""
			}
			worst = max(worst, *pts[to]-*pts[from])
		}
		if !seen {
			return 0, fmt.Sprintf("no new pod had its %s recorded", fromName)
		}
		return worst, ""
	}
}
