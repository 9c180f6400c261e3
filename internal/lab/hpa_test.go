package lab

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The cases quote Kubernetes' HPA documentation ("Algorithm details") and
// the v1.33 configurable-tolerance announcement.
func TestDesiredReplicas(t *testing.T) {
	tests := []struct {
		name           string
		current        int
		metric, target float64
		tolerance      float64
		want           int
	}{
		{"200m vs 100m doubles", 3, 200, 100, DefaultTolerance, 6},
		{"50m vs 100m halves", 4, 50, 100, DefaultTolerance, 2},
		{"50 replicas at 90% vs 75% -> 60", 50, 90, 75, DefaultTolerance, 60},
		{"ratio within 10% skips scaling (up)", 10, 109, 100, DefaultTolerance, 10},
		{"ratio within 10% skips scaling (down)", 10, 91, 100, DefaultTolerance, 10},
		{"just beyond tolerance scales, rounded up", 10, 111, 100, DefaultTolerance, 12},
		{"zero tolerance reacts to 1%", 10, 101, 100, 1e-9, 11},
		{"one pod at 3x target", 1, 300, 100, DefaultTolerance, 3},
		{"idle pods scale to zero before clamping", 3, 0, 100, DefaultTolerance, 0},
		{"no pods: autoscaling is off", 0, 500, 100, DefaultTolerance, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DesiredReplicas(tt.current, tt.metric, tt.target, tt.tolerance); got != tt.want {
				t.Errorf("DesiredReplicas(%d, %v, %v, %v) = %d, want %d", tt.current, tt.metric, tt.target, tt.tolerance, got, tt.want)
			}
		})
	}
}

type step struct {
	at      time.Duration // offset from t0
	current int
	metric  float64
	want    int
}

func TestAutoscalerBehavior(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	docScaleDown := ScalingRules{
		StabilizationWindow: 300 * time.Second,
		Select:              SelectMax,
		Policies: []ScalingPolicy{
			{Type: PodsPolicy, Value: 4, Period: 60 * time.Second},
			{Type: PercentPolicy, Value: 10, Period: 60 * time.Second},
		},
	}
	tests := []struct {
		name  string
		spec  HPASpec
		steps []step
	}{
		{
			// Default scale-up: the higher of +100% and +4 pods per 15 s, no stabilisation.
			name: "default scale-up allows max(100%, 4 pods) per 15s",
			spec: HPASpec{MinReplicas: 1, MaxReplicas: 100, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()},
			steps: []step{
				{0, 1, 1000, 5},                   // wants 10: 1+4 beats 1*2
				{5 * time.Second, 5, 1000, 5},     // same 15 s period: already +4
				{16 * time.Second, 5, 1000, 10},   // new period: 5*2=10 beats 5+4
				{31 * time.Second, 10, 1000, 20},  // wants 100; +100% = 20
				{46 * time.Second, 20, 1000, 40},  // +100% = 40
				{61 * time.Second, 40, 1000, 80},  //
				{76 * time.Second, 80, 1000, 100}, // clamped by maxReplicas
			},
		},
		{
			name: "scale-up stops at maxReplicas",
			spec: HPASpec{MinReplicas: 1, MaxReplicas: 3, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()},
			steps: []step{
				{0, 1, 1000, 3},
				{30 * time.Second, 3, 1000, 3},
			},
		},
		{
			// Docs: with Pods 4/60s and Percent 10/60s and 80 replicas scaling
			// to 10, the first step removes 8; at 72, 10% is 7.2, rounded up to 8.
			name: "scale-down policies worked example (80 -> 72 -> 64)",
			spec: HPASpec{MinReplicas: 1, MaxReplicas: 100, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: docScaleDown},
			steps: []step{
				{0, 80, 12.5, 72},
				{30 * time.Second, 72, 12.5 * 80 / 72, 72}, // same 60 s period: 8 already removed
				{61 * time.Second, 72, 12.5 * 80 / 72, 64},
				{122 * time.Second, 64, 12.5 * 80 / 64, 57}, // above 40 pods the 10% policy is the bigger change: 64 -> 57
			},
		},
		{
			// Default scale-down: the highest recommendation of the last 300 s wins.
			name: "scale-down stabilisation window holds for 300s",
			spec: HPASpec{MinReplicas: 1, MaxReplicas: 10, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()},
			steps: []step{
				{0, 4, 100, 4},
				{15 * time.Second, 4, 50, 4},
				{200 * time.Second, 4, 50, 4},
				{301 * time.Second, 4, 50, 2},
			},
		},
		{
			name:  "scale-down never goes below minReplicas",
			spec:  HPASpec{MinReplicas: 2, MaxReplicas: 10, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: ScalingRules{Select: SelectMax, Policies: []ScalingPolicy{{Type: PercentPolicy, Value: 100, Period: 15 * time.Second}}}},
			steps: []step{{0, 6, 0, 2}},
		},
		{
			name:  "disabled scale-up keeps the count",
			spec:  HPASpec{MinReplicas: 1, MaxReplicas: 10, Target: 100, ScaleUp: ScalingRules{Select: SelectDisabled}, ScaleDown: DefaultScaleDown()},
			steps: []step{{0, 2, 400, 2}},
		},
		{
			name:  "Min select picks the smaller scale-up",
			spec:  HPASpec{MinReplicas: 1, MaxReplicas: 100, Target: 100, ScaleUp: ScalingRules{Select: SelectMin, Policies: DefaultScaleUp().Policies}, ScaleDown: DefaultScaleDown()},
			steps: []step{{0, 10, 1000, 14}}, // min(20, 14)
		},
		{
			name: "scale-up stabilisation takes the lowest recent recommendation",
			spec: HPASpec{MinReplicas: 1, MaxReplicas: 100, Target: 100, ScaleUp: ScalingRules{StabilizationWindow: 60 * time.Second, Select: SelectMax, Policies: DefaultScaleUp().Policies}, ScaleDown: DefaultScaleDown()},
			steps: []step{
				{0, 2, 100, 2},
				{15 * time.Second, 2, 400, 2}, // 8 wanted, but 2 was recommended within 60 s
				{61 * time.Second, 2, 400, 6}, // only 8s in window now; limited to 2+4
			},
		},
		{
			name:  "above maxReplicas within tolerance is brought back",
			spec:  HPASpec{MinReplicas: 1, MaxReplicas: 3, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()},
			steps: []step{{0, 5, 100, 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAutoscaler(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				if got := a.Decide(t0.Add(s.at), s.current, s.metric); got != s.want {
					t.Fatalf("step %d (t=%v, current=%d, metric=%.2f): got %d replicas, want %d", i, s.at, s.current, s.metric, got, s.want)
				}
			}
		})
	}
}

func TestNewAutoscalerRejectsBadSpecs(t *testing.T) {
	for _, spec := range []HPASpec{
		{MinReplicas: 0, MaxReplicas: 3, Target: 1},
		{MinReplicas: 4, MaxReplicas: 3, Target: 1},
		{MinReplicas: 1, MaxReplicas: 3, Target: 0},
	} {
		if _, err := NewAutoscaler(spec); err == nil {
			t.Errorf("NewAutoscaler(%+v) accepted a bad spec", spec)
		}
	}
}

// fakeDeployment is a scale target whose per-pod load is a fixed total
// spread evenly: the behaviour of a Service that balances requests.
type fakeDeployment struct {
	mu       sync.Mutex
	replicas int
	total    float64
}

func (d *fakeDeployment) Observe() (int, float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.replicas, d.total / float64(d.replicas)
}

func (d *fakeDeployment) Scale(_ context.Context, n int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.replicas = n
	return nil
}

func TestRunHPAConverges(t *testing.T) {
	a, err := NewAutoscaler(HPASpec{MinReplicas: 1, MaxReplicas: 10, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()})
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDeployment{replicas: 1, total: 450}
	ctx, cancel := context.WithCancel(context.Background())
	var decisions []Decision
	done := make(chan error, 1)
	go func() {
		done <- RunHPA(ctx, a, d, 5*time.Millisecond, func(dec Decision) {
			decisions = append(decisions, dec)
			if len(decisions) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("RunHPA did not stop after cancel")
	}
	// 450 req/s at 100 per pod wants 5 pods; 1+4 is allowed in one step.
	if got := d.replicas; got != 5 {
		t.Errorf("replicas = %d after %d decisions, want 5 (%+v)", got, len(decisions), decisions)
	}
	if decisions[0].Current != 1 || decisions[0].Desired != 5 || decisions[0].Average != 450 {
		t.Errorf("first decision = %+v, want 1 -> 5 at 450", decisions[0])
	}
	if last := decisions[len(decisions)-1]; last.Desired != 5 || last.Average != 90 {
		t.Errorf("last decision = %+v, want steady at 5 (90 req/s within tolerance)", last)
	}
}

func TestRunHPARejectsZeroSync(t *testing.T) {
	a, _ := NewAutoscaler(HPASpec{MinReplicas: 1, MaxReplicas: 2, Target: 1})
	if err := RunHPA(context.Background(), a, &fakeDeployment{replicas: 1}, 0, nil); err == nil {
		t.Fatal("RunHPA accepted a zero sync period")
	}
}
