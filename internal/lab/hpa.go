package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultTolerance is the HPA controller's default
// --horizontal-pod-autoscaler-tolerance: ratios within 10% of 1.0 do not scale.
const DefaultTolerance = 0.1

// DesiredReplicas is the HPA algorithm for an average-value pod metric:
// ceil(current * metric / target), or current when the ratio is within
// tolerance of 1.0. It does not clamp to min/max nor apply behaviour.
func DesiredReplicas(current int, metric, target, tolerance float64) int {
	if current <= 0 || target <= 0 {
		return current
	}
	ratio := metric / target
	if math.Abs(1.0-ratio) <= tolerance {
		return current
	}
	return int(math.Ceil(ratio * float64(current)))
}

// PolicyType is the kind of a scaling policy: a number of pods or a percentage.
type PolicyType string

const (
	PodsPolicy    PolicyType = "Pods"
	PercentPolicy PolicyType = "Percent"
)

// SelectPolicy chooses among several policies' limits.
type SelectPolicy string

const (
	SelectMax      SelectPolicy = "Max" // the policy allowing the largest change (default)
	SelectMin      SelectPolicy = "Min"
	SelectDisabled SelectPolicy = "Disabled"
)

// ScalingPolicy is one of HPAScalingRules.policies.
type ScalingPolicy struct {
	Type   PolicyType
	Value  int
	Period time.Duration
}

// ScalingRules mirrors autoscaling/v2 HPAScalingRules for one direction.
type ScalingRules struct {
	StabilizationWindow time.Duration
	Select              SelectPolicy
	Policies            []ScalingPolicy
}

// DefaultScaleUp is Kubernetes' default scale-up behaviour: no stabilisation,
// at most the larger of +100% and +4 pods every 15 s.
func DefaultScaleUp() ScalingRules {
	return ScalingRules{
		Select: SelectMax,
		Policies: []ScalingPolicy{
			{Type: PercentPolicy, Value: 100, Period: 15 * time.Second},
			{Type: PodsPolicy, Value: 4, Period: 15 * time.Second},
		},
	}
}

// DefaultScaleDown is Kubernetes' default scale-down behaviour: a 300 s
// stabilisation window, then down to minReplicas (100% per 15 s).
func DefaultScaleDown() ScalingRules {
	return ScalingRules{
		StabilizationWindow: 300 * time.Second,
		Select:              SelectMax,
		Policies:            []ScalingPolicy{{Type: PercentPolicy, Value: 100, Period: 15 * time.Second}},
	}
}

// HPASpec is what the emulated autoscaler needs of a HorizontalPodAutoscaler.
type HPASpec struct {
	MinReplicas int
	MaxReplicas int
	Target      float64 // target average metric value per pod (e.g. requests/s)
	Tolerance   float64 // 0 means DefaultTolerance; use a tiny value for "none"
	ScaleUp     ScalingRules
	ScaleDown   ScalingRules
}

func (s HPASpec) validate() error {
	switch {
	case s.MinReplicas < 1:
		return fmt.Errorf("hpa: min replicas %d < 1", s.MinReplicas)
	case s.MaxReplicas < s.MinReplicas:
		return fmt.Errorf("hpa: max replicas %d < min replicas %d", s.MaxReplicas, s.MinReplicas)
	case !(s.Target > 0):
		return fmt.Errorf("hpa: target %v must be > 0", s.Target)
	}
	return nil
}

type timedValue struct {
	at time.Time
	n  int
}

// Autoscaler is the HPA controller's per-object state: past recommendations
// (for stabilisation windows) and past scale events (for policy periods).
// It is not safe for concurrent use.
type Autoscaler struct {
	spec            HPASpec
	recommendations []timedValue
	upEvents        []timedValue
	downEvents      []timedValue
}

// NewAutoscaler checks spec and returns a controller with no history.
func NewAutoscaler(spec HPASpec) (*Autoscaler, error) {
	if spec.Tolerance == 0 {
		spec.Tolerance = DefaultTolerance
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	return &Autoscaler{spec: spec}, nil
}

// Decide is one reconcile at now: given the current replica count and the
// current average metric, it returns the replica count to scale to and
// records the decision as Kubernetes does.
func (a *Autoscaler) Decide(now time.Time, current int, metric float64) int {
	desired := DesiredReplicas(current, metric, a.spec.Target, a.spec.Tolerance)
	desired = a.stabilize(now, current, desired)
	desired = a.limitRate(now, current, desired)
	switch {
	case desired > current:
		a.upEvents = append(a.upEvents, timedValue{now, desired - current})
	case desired < current:
		a.downEvents = append(a.downEvents, timedValue{now, current - desired})
	}
	// Events older than every policy period no longer limit anything; drop
	// them so a long run stays O(events per period), as the controller does.
	a.upEvents = pruneEvents(a.upEvents, now.Add(-longestPeriod(a.spec.ScaleUp, a.spec.ScaleDown)))
	a.downEvents = pruneEvents(a.downEvents, now.Add(-longestPeriod(a.spec.ScaleUp, a.spec.ScaleDown)))
	return desired
}

func longestPeriod(rules ...ScalingRules) time.Duration {
	var d time.Duration
	for _, r := range rules {
		for _, p := range r.Policies {
			d = max(d, p.Period)
		}
	}
	return d
}

func pruneEvents(events []timedValue, cut time.Time) []timedValue {
	i := 0
	for i < len(events) && !events[i].at.After(cut) {
		i++
	}
	return append(events[:0], events[i:]...)
}

// stabilize keeps the recommendation between the lowest recommendation in
// the scale-up window and the highest in the scale-down window, then records it.
func (a *Autoscaler) stabilize(now time.Time, current, desired int) int {
	up, down := desired, desired
	upCut := now.Add(-a.spec.ScaleUp.StabilizationWindow)
	downCut := now.Add(-a.spec.ScaleDown.StabilizationWindow)
	keep := a.recommendations[:0]
	longest := max(a.spec.ScaleUp.StabilizationWindow, a.spec.ScaleDown.StabilizationWindow)
	for _, r := range a.recommendations {
		if r.at.After(upCut) {
			up = min(up, r.n)
		}
		if r.at.After(downCut) {
			down = max(down, r.n)
		}
		if r.at.After(now.Add(-longest)) {
			keep = append(keep, r)
		}
	}
	a.recommendations = append(keep, timedValue{now, desired})
	rec := max(current, up)
	return min(rec, down)
}

// changedWithin sums the events newer than now-period.
func changedWithin(events []timedValue, now time.Time, period time.Duration) int {
	n := 0
	for _, e := range events {
		if e.at.After(now.Add(-period)) {
			n += e.n
		}
	}
	return n
}

// limitRate applies the scaling policies and min/max replicas.
func (a *Autoscaler) limitRate(now time.Time, current, desired int) int {
	switch {
	case desired > current:
		limit := a.scaleUpLimit(now, current)
		limit = max(limit, current)
		return min(desired, a.spec.MaxReplicas, limit)
	case desired < current:
		limit := a.scaleDownLimit(now, current)
		limit = min(limit, current)
		return max(desired, a.spec.MinReplicas, limit)
	}
	return min(max(desired, a.spec.MinReplicas), a.spec.MaxReplicas)
}

func (a *Autoscaler) scaleUpLimit(now time.Time, current int) int {
	r := a.spec.ScaleUp
	if r.Select == SelectDisabled {
		return current
	}
	result, pickFn := math.MinInt, func(x, y int) int { return max(x, y) }
	if r.Select == SelectMin {
		result, pickFn = math.MaxInt, func(x, y int) int { return min(x, y) }
	}
	for _, p := range r.Policies {
		start := current - changedWithin(a.upEvents, now, p.Period) + changedWithin(a.downEvents, now, p.Period)
		var proposed int
		if p.Type == PodsPolicy {
			proposed = start + p.Value
		} else {
			// Rounded up so a small percentage can still add a pod.
			proposed = int(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pickFn(result, proposed)
	}
	return result
}

func (a *Autoscaler) scaleDownLimit(now time.Time, current int) int {
	r := a.spec.ScaleDown
	if r.Select == SelectDisabled {
		return current
	}
	result, pickFn := math.MaxInt, func(x, y int) int { return min(x, y) }
	if r.Select == SelectMin {
		result, pickFn = math.MinInt, func(x, y int) int { return max(x, y) }
	}
	for _, p := range r.Policies {
		start := current + changedWithin(a.downEvents, now, p.Period) - changedWithin(a.upEvents, now, p.Period)
		var proposed int
		if p.Type == PodsPolicy {
			proposed = start - p.Value
		} else {
			proposed = int(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pickFn(result, proposed)
	}
	return result
}

// ScaleTarget is what the HPA loop acts on: the pods' average metric and
// their count, and a way to change it.
type ScaleTarget interface {
	// Observe returns the current replica count and the average metric per pod.
	Observe() (replicas int, average float64)
	// Scale changes the replica count.
	Scale(ctx context.Context, replicas int) error
}

// Decision is one reconcile of the HPA loop, for the lab's pod-count timeline.
type Decision struct {
	At      time.Time
	Current int
	Average float64
	Desired int
}

// RunHPA reconciles target every sync period until ctx ends, as the
// controller manager does, and calls record (if not nil) with each decision.
// It returns nil when ctx ends and the first Scale error otherwise.
func RunHPA(ctx context.Context, a *Autoscaler, target ScaleTarget, sync time.Duration, record func(Decision)) error {
	if sync <= 0 {
		return errors.New("hpa: sync period must be > 0")
	}
	t := time.NewTicker(sync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			cur, avg := target.Observe()
			want := a.Decide(now, cur, avg)
			if record != nil {
				record(Decision{At: now, Current: cur, Average: avg, Desired: want})
			}
			if want != cur {
				if err := target.Scale(ctx, want); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("hpa: scale to %d: %w", want, err)
				}
			}
		}
	}
}
