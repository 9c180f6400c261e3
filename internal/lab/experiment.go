package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/field"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

// Scenario is one run of the experiment: the same load against pods with
// one recycling setting.
type Scenario struct {
	Name        string        // e.g. "max-requests=5"; ScenarioName fills it
	MaxRequests int           // server-side: close after N responses; 0 = keep-alive forever
	MaxConnAge  time.Duration // server-side: close after this age; 0 = never
}

// ScenarioName is the canonical name of a recycling setting.
func ScenarioName(maxRequests int, maxConnAge time.Duration) string {
	switch {
	case maxConnAge > 0 && maxRequests > 0:
		return fmt.Sprintf("max-requests=%d,max-conn-age=%s", maxRequests, maxConnAge)
	case maxConnAge > 0:
		return "max-conn-age=" + maxConnAge.String()
	}
	return "max-requests=" + strconv.Itoa(maxRequests)
}

// HPAConfig turns on the emulated HorizontalPodAutoscaler.
type HPAConfig struct {
	TargetRPSPerPod float64       // target average requests/s per pod
	MaxPods         int           // maxReplicas
	Sync            time.Duration // sync period; Kubernetes' default is 15s
}

// kubeSync is the controller manager's default sync period: the lab scales
// every HPA time (policy periods, stabilisation windows) by Sync/kubeSync.
const kubeSync = 15 * time.Second

// Config is a whole lab run.
type Config struct {
	// Protocol is "http" (the default when empty), "ws": WebSockets to
	// the pods' /ws, one per connection, whose per-pod socket counts the
	// verdict then judges, or "grpc": unary Ping RPCs, one gRPC connection
	// per client connection, pods recycling with grpc-go's GOAWAY.
	Protocol    string
	Scenarios   []Scenario
	Duration    time.Duration // per scenario
	Connections int
	Rate        float64 // total requests/s (open model), identical in every scenario
	Timeout     time.Duration
	PodCapacity float64 // requests/s per pod before requests queue; 0 = unlimited
	Policy      Policy
	Seed        uint64

	// Fixed scale event: StartPods until ScaleAt, then EndPods. Ignored with HPA.
	StartPods, EndPods int
	ScaleAt            time.Duration
	// HPA, when set, scales from StartPods instead of the fixed event.
	HPA *HPAConfig

	Interval time.Duration // timeline bucket; 0 = 1s
	// Target is the recommendation's rebalance target (report.Options.TargetRebalance).
	Target     time.Duration
	ResultsDir string // when set, each scenario's results file goes there
	Version    string // written into results files

	// OnScenario, when set, is called before each scenario starts (progress).
	OnScenario func(i int, sc Scenario)
	// Expect holds the parsed expectations per scenario name; "" applies to all.
	Expect map[string][]report.Expectation
}

// Validate reports every problem in cfg, each as a *field.Error naming the
// Config field; several are joined with errors.Join.
func (cfg *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) { errs = append(errs, field.Errorf(name, format, args...)) }
	if len(cfg.Scenarios) == 0 {
		bad("Scenarios", "no scenario to run")
	}
	if cfg.Protocol != "" && cfg.Protocol != "http" && cfg.Protocol != "ws" && cfg.Protocol != "grpc" {
		bad("Protocol", "unknown protocol %q (want http, ws or grpc)", cfg.Protocol)
	}
	seen := map[string]bool{}
	for i, sc := range cfg.Scenarios {
		if sc.MaxRequests < 0 {
			bad(fmt.Sprintf("Scenarios[%d].MaxRequests", i), "%d is negative", sc.MaxRequests)
		}
		if sc.MaxConnAge < 0 {
			bad(fmt.Sprintf("Scenarios[%d].MaxConnAge", i), "%s is negative", sc.MaxConnAge)
		}
		if seen[sc.Name] {
			bad(fmt.Sprintf("Scenarios[%d].Name", i), "scenario %q is listed twice", sc.Name)
		}
		seen[sc.Name] = true
	}
	if cfg.Duration <= 0 {
		bad("Duration", "must be > 0, got %s", cfg.Duration)
	}
	if cfg.Connections < 1 {
		bad("Connections", "must be >= 1, got %d", cfg.Connections)
	}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		bad("Rate", "must be > 0 (the lab keeps the load fixed), got %v", cfg.Rate)
	}
	if cfg.PodCapacity < 0 || math.IsNaN(cfg.PodCapacity) {
		bad("PodCapacity", "must be >= 0, got %v", cfg.PodCapacity)
	}
	if _, err := ParsePolicy(string(cfg.Policy)); err != nil {
		bad("Policy", "%w", err)
	}
	if cfg.StartPods < 1 {
		bad("StartPods", "must start with at least 1 pod, got %d", cfg.StartPods)
	}
	if h := cfg.HPA; h != nil {
		if !(h.TargetRPSPerPod > 0) {
			bad("HPA.TargetRPSPerPod", "must be > 0, got %v", h.TargetRPSPerPod)
		}
		if h.MaxPods < cfg.StartPods {
			bad("HPA.MaxPods", "%d is below the starting %d pods", h.MaxPods, cfg.StartPods)
		}
		if h.Sync <= 0 || h.Sync >= cfg.Duration {
			errs = append(errs, &field.Error{Fields: []string{"HPA.Sync", "Duration"},
				Err: fmt.Errorf("the sync period must be > 0 and shorter than the duration %s, got %s", cfg.Duration, h.Sync)})
		}
	} else {
		if cfg.EndPods <= cfg.StartPods {
			errs = append(errs, &field.Error{Fields: []string{"StartPods", "EndPods"},
				Err: fmt.Errorf("%d:%d does not scale up (want START:END with END > START)", cfg.StartPods, cfg.EndPods)})
		}
		if cfg.ScaleAt <= 0 || cfg.ScaleAt >= cfg.Duration {
			errs = append(errs, &field.Error{Fields: []string{"ScaleAt", "Duration"},
				Err: fmt.Errorf("the scale event at %s must lie inside the duration %s", cfg.ScaleAt, cfg.Duration)})
		}
	}
	return errors.Join(errs...)
}

// Outcome classifies a scenario's scale-up by the report's rules
// (report.JudgeShare), plus one of its own: no scale event happened.
type Outcome = report.Outcome

const (
	OutcomeRebalanced         = report.OutcomeRebalanced
	OutcomePartial            = report.OutcomePartial
	OutcomeStuck              = report.OutcomeStuck
	OutcomeNoScale    Outcome = "no-scale"
)

// ScenarioResult is one scenario's outcome.
type ScenarioResult struct {
	Name        string         `json:"name"`
	MaxRequests int            `json:"max_requests"`
	MaxConnAge  float64        `json:"max_conn_age_seconds"`
	PodsBefore  int            `json:"pods_before"`
	PodsAfter   int            `json:"pods_after"`
	ScaleEvents []ScaleEventJS `json:"scale_events"`
	HPA         []DecisionJS   `json:"hpa,omitempty"`
	// NewPodsShare is the share of requests after the last scale event that
	// went to pods created by scaling; FairShare is what they would get if
	// the Service balanced requests.
	NewPodsShare float64  `json:"new_pods_share"`
	FairShare    float64  `json:"fair_share"`
	JainAfter    *float64 `json:"jain_after"` // null: no backend answered after the scale-up
	BusiestPod   string   `json:"busiest_pod"`
	BusiestP99   *float64 `json:"busiest_p99_ms"` // null: no pod answered
	Connections  uint64   `json:"connections"`
	// NewPodsSocketShare is the new pods' share of the WebSockets held at
	// the end of the run (Protocol "ws"); SocketsHeld is how many were held.
	NewPodsSocketShare *float64 `json:"new_pods_socket_share,omitempty"`
	SocketsHeld        uint64   `json:"sockets_held,omitempty"`
	// Due counts the requests the rate called for during the scenario;
	// Unsent the part of them never sent because every connection slot was
	// waiting for an answer (Due = Run.Requests + Unsent).
	Due         uint64  `json:"due"`
	Unsent      uint64  `json:"unsent"`
	Outcome     Outcome `json:"outcome"`
	Verdict     string  `json:"verdict"`
	ResultsFile string  `json:"results_file,omitempty"`
	Interrupted bool    `json:"interrupted,omitempty"` // cut short by cancellation
	ExpectOK    bool    `json:"expect_ok"`

	// AfterScale is the window after the last scale event, with the
	// expectations checked against it.
	AfterScale *report.Report  `json:"after_scale"`
	Run        *report.Summary `json:"run"`
}

// ScaleEventJS is a ScaleEvent in seconds.
type ScaleEventJS struct {
	AtSeconds float64 `json:"at_seconds"`
	From      int     `json:"from"`
	To        int     `json:"to"`
}

// DecisionJS is one HPA reconcile in seconds from the run's start.
type DecisionJS struct {
	AtSeconds   float64 `json:"at_seconds"`
	Replicas    int     `json:"replicas"`
	AverageRPS  float64 `json:"average_rps"`
	Desired     int     `json:"desired"`
	TargetRPS   float64 `json:"target_rps"`
	WithinRange bool    `json:"within_tolerance"`
}

// Result is a whole lab run.
type Result struct {
	Mode      string           `json:"mode"` // "fixed" or "hpa"
	Balancer  Policy           `json:"balancer"`
	Seed      uint64           `json:"seed"`
	Rate      float64          `json:"rate"`
	Conns     int              `json:"connections"`
	Duration  float64          `json:"duration_seconds"`
	Capacity  float64          `json:"pod_capacity"`
	Target    float64          `json:"target_rps_per_pod,omitempty"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// ExpectOK reports whether every scenario's expectations passed.
func (r *Result) ExpectOK() bool {
	for _, s := range r.Scenarios {
		if !s.ExpectOK {
			return false
		}
	}
	return true
}

// Run runs every scenario one after the other with identical load. On ctx
// cancellation it stops the running scenario, tears everything down and
// returns the scenarios finished so far with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.ResultsDir != "" {
		if err := os.MkdirAll(cfg.ResultsDir, 0o755); err != nil {
			return nil, field.Errorf("ResultsDir", "%w", err)
		}
	}
	res := &Result{Mode: "fixed", Balancer: cfg.Policy, Seed: cfg.Seed, Rate: cfg.Rate, Conns: cfg.Connections,
		Duration: cfg.Duration.Seconds(), Capacity: cfg.PodCapacity}
	if cfg.HPA != nil {
		res.Mode = "hpa"
		res.Target = cfg.HPA.TargetRPSPerPod
	}
	for i, sc := range cfg.Scenarios {
		if cfg.OnScenario != nil {
			cfg.OnScenario(i, sc)
		}
		sr, err := runScenario(ctx, &cfg, sc)
		if err != nil {
			return res, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		if err := ctx.Err(); err != nil {
			sr.Interrupted = true
			sr.Verdict = "interrupted: " + sr.Verdict
			res.Scenarios = append(res.Scenarios, *sr)
			return res, err
		}
		res.Scenarios = append(res.Scenarios, *sr)
	}
	return res, nil
}

func runScenario(ctx context.Context, cfg *Config, sc Scenario) (*ScenarioResult, error) {
	bal := NewBalancer(cfg.Policy, cfg.Seed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	balDone := make(chan error, 1)
	go func() { balDone <- bal.Serve(context.WithoutCancel(ctx), ln) }()

	cl := newCluster(PodSpec{MaxRequests: sc.MaxRequests, MaxConnAge: sc.MaxConnAge, Capacity: cfg.PodCapacity, Seed: cfg.Seed,
		GRPC: cfg.Protocol == "grpc"}, bal, time.Now())
	teardown := func() error {
		bal.Close()
		berr := <-balDone
		bal.Wait()
		return errors.Join(berr, cl.shutdown())
	}
	for i := 0; i < cfg.StartPods; i++ {
		if _, err := cl.addPod(ctx); err != nil {
			return nil, errors.Join(err, teardown())
		}
	}

	// Results stream to a file, as kaload hammer's do: memory stays bounded
	// however long the run, and the window after the last scale event, known
	// only at the end, is read back from it.
	path, rw, err := createResults(cfg, sc, time.Now())
	if err != nil {
		return nil, errors.Join(err, teardown())
	}
	if cfg.ResultsDir == "" {
		defer os.Remove(path)
	}

	// Offset zero is when the load starts, right before the engine's own
	// clock: scale events and requests share it (the file was created
	// first so that its I/O does not shift one against the other). The
	// scaler runs beside the load and stops with it.
	var recordErr atomic.Pointer[error]
	cl.mu.Lock()
	cl.start = time.Now()
	cl.desired = cfg.StartPods
	cl.record = func(e results.Event) {
		if err := rw.WriteEvent(e); err != nil {
			recordErr.CompareAndSwap(nil, &err)
		}
	}
	cl.mu.Unlock()
	scaleCtx, stopScaler := context.WithCancel(ctx)
	if cfg.HPA != nil {
		// The HPA makes no decision in the last 3/4 of a sync period (and the
		// deadline never races a tick): every scale-up leaves traffic to judge it by.
		var cancelLate context.CancelFunc
		scaleCtx, cancelLate = context.WithTimeout(scaleCtx, cfg.Duration-cfg.HPA.Sync*3/4)
		defer cancelLate()
	}
	var (
		scaleErr  error
		decisions []Decision
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if cfg.HPA == nil {
			t := time.NewTimer(cfg.ScaleAt)
			defer t.Stop()
			select {
			case <-scaleCtx.Done():
			case <-t.C:
				scaleErr = cl.Scale(scaleCtx, cfg.EndPods)
			}
			return
		}
		a, err := NewAutoscaler(hpaSpec(cfg))
		if err != nil {
			scaleErr = err
			return
		}
		cl.Observe() // start the first metric window now
		scaleErr = RunHPA(scaleCtx, a, cl, cfg.HPA.Sync, func(d Decision) {
			decisions = append(decisions, d)
			cl.decided(d, cfg.HPA.TargetRPSPerPod)
		})
	}()

	var writeErr error
	url := "http://" + ln.Addr().String() + "/"
	switch cfg.Protocol {
	case "ws":
		url = "ws://" + ln.Addr().String() + "/ws"
	case "grpc":
		url = "grpc://" + ln.Addr().String()
	}
	stats, err := client.Run(ctx, client.Config{
		URL:         url,
		Connections: cfg.Connections,
		Duration:    cfg.Duration,
		Rate:        cfg.Rate,
		Timeout:     cfg.Timeout,
	}, client.SinkFunc(func(r *client.Result) {
		if writeErr == nil {
			writeErr = rw.Write(r)
		}
	}))
	stopScaler()
	wg.Wait()
	terr := teardown()
	cl.mu.Lock()
	cl.record = nil
	cl.mu.Unlock()
	if e := recordErr.Load(); e != nil && writeErr == nil {
		writeErr = *e
	}
	rw.SetUnsent(stats.Unsent)
	if cerr := rw.Close(); writeErr == nil {
		writeErr = cerr
	}
	if writeErr != nil {
		err = errors.Join(err, fmt.Errorf("results file %s: %w", path, writeErr))
	}
	if err != nil {
		return nil, errors.Join(err, terr)
	}
	if scaleErr != nil {
		return nil, errors.Join(scaleErr, terr)
	}
	if terr != nil && ctx.Err() == nil {
		return nil, terr
	}

	sr, err := summarize(cfg, sc, cl, path, decisions)
	if err != nil {
		return nil, err
	}
	if cfg.ResultsDir != "" {
		sr.ResultsFile = path
	}
	return sr, nil
}

// hpaSpec scales Kubernetes' default behaviour to lab time.
func hpaSpec(cfg *Config) HPASpec {
	f := float64(cfg.HPA.Sync) / float64(kubeSync)
	scale := func(r ScalingRules) ScalingRules {
		r.StabilizationWindow = time.Duration(float64(r.StabilizationWindow) * f)
		for i := range r.Policies {
			r.Policies[i].Period = time.Duration(float64(r.Policies[i].Period) * f)
		}
		return r
	}
	return HPASpec{
		MinReplicas: cfg.StartPods,
		MaxReplicas: cfg.HPA.MaxPods,
		Target:      cfg.HPA.TargetRPSPerPod,
		Tolerance:   DefaultTolerance,
		ScaleUp:     scale(DefaultScaleUp()),
		ScaleDown:   scale(DefaultScaleDown()),
	}
}

func summarize(cfg *Config, sc Scenario, cl *cluster, path string, decisions []Decision) (*ScenarioResult, error) {
	events := cl.Events()
	pods := cl.podInfos()
	// Pods that got no request are invisible to a client; the lab knows them.
	var alive []string
	for _, p := range pods {
		alive = append(alive, p.Name)
	}
	run, err := summaryOf(path, report.Options{Interval: cfg.Interval, Backends: alive, TargetRebalance: cfg.Target})
	if err != nil {
		return nil, err
	}
	win := run
	if len(events) > 0 {
		win, err = summaryOf(path, report.Options{From: events[len(events)-1].At, Interval: cfg.Interval, Backends: podsAt(pods, events), TargetRebalance: cfg.Target})
		if err != nil {
			return nil, err
		}
	}

	sr := &ScenarioResult{
		Name:        sc.Name,
		MaxRequests: sc.MaxRequests,
		MaxConnAge:  sc.MaxConnAge.Seconds(),
		PodsBefore:  cfg.StartPods,
		PodsAfter:   cl.Replicas(),
		ScaleEvents: []ScaleEventJS{},
		Connections: run.Connections,
		AfterScale:  &report.Report{Summary: win, Expectations: []report.ExpectResult{}},
		Run:         run,
		ExpectOK:    true,
	}
	if run.Unsent != nil {
		sr.Unsent = *run.Unsent
	}
	sr.Due = run.Requests + sr.Unsent
	for _, e := range events {
		sr.ScaleEvents = append(sr.ScaleEvents, ScaleEventJS{AtSeconds: round3(e.At.Seconds()), From: e.From, To: e.To})
	}
	for _, d := range decisions {
		ratio := d.Average / cfg.HPA.TargetRPSPerPod
		sr.HPA = append(sr.HPA, DecisionJS{
			AtSeconds: round3(d.At.Sub(cl.start).Seconds()), Replicas: d.Current, AverageRPS: round3(d.Average),
			Desired: d.Desired, TargetRPS: cfg.HPA.TargetRPSPerPod, WithinRange: math.Abs(1-ratio) <= DefaultTolerance,
		})
	}

	// New pods: created by scaling, i.e. after the first StartPods.
	newPods := map[string]bool{}
	for _, p := range pods[min(cfg.StartPods, len(pods)):] {
		newPods[p.Name] = true
	}
	var busiest *report.BackendSummary
	for i := range win.Backends {
		b := &win.Backends[i]
		if newPods[b.Name] {
			sr.NewPodsShare += b.Share
		}
		if busiest == nil || b.Requests > busiest.Requests {
			busiest = b
		}
	}
	if busiest != nil && busiest.Latency != nil { // a pod with no response has no p99
		sr.BusiestPod, sr.BusiestP99 = busiest.Name, &busiest.Latency.P99
	}
	sr.NewPodsShare = round3(sr.NewPodsShare)
	if sr.PodsAfter > 0 {
		sr.FairShare = round3(float64(sr.PodsAfter-min(cfg.StartPods, sr.PodsAfter)) / float64(sr.PodsAfter))
	}
	if win.Fairness != nil {
		sr.JainAfter = &win.Fairness.Jain
	}
	var newNames []string
	for _, p := range pods[min(cfg.StartPods, len(pods)):] {
		newNames = append(newNames, p.Name)
	}
	sr.Outcome, sr.Verdict = verdict(cfg, sr, decisions, newNames)
	if sk := run.Sockets; sk != nil {
		sr.Outcome, sr.Verdict = socketVerdict(sr, sk, newPods)
	}

	exps := append(append([]report.Expectation(nil), cfg.Expect[""]...), cfg.Expect[sc.Name]...)
	if len(exps) > 0 {
		sr.AfterScale.Expectations, sr.ExpectOK = report.Check(win, exps)
	}
	return sr, nil
}

// summaryOf reads a results file back through the report's aggregator.
func summaryOf(path string, opts report.Options) (*report.Summary, error) {
	rd, err := results.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	a := report.NewAggregator(opts)
	run, err := a.AddRun(rd.Header())
	if err != nil {
		return nil, err
	}
	if err := run.AddAll(context.Background(), rd); err != nil {
		return nil, err
	}
	return a.Summary(), nil
}

// podsAt lists the pods alive after the last scale event.
func podsAt(pods []podInfo, events []ScaleEvent) []string {
	n := events[len(events)-1].To
	var out []string
	for _, p := range pods[:min(n, len(pods))] {
		out = append(out, p.Name)
	}
	return out
}

// podOrder sorts pod-2 before pod-10.
func podOrder(a, b string) int {
	na, ea := strconv.Atoi(strings.TrimPrefix(a, "pod-"))
	nb, eb := strconv.Atoi(strings.TrimPrefix(b, "pod-"))
	if ea == nil && eb == nil {
		return na - nb
	}
	return strings.Compare(a, b)
}

// verdict judges the scale-up by the report's rules: the new pods' share of
// the requests after the last scale event against their fair share, and
// whether each new pod held its own fair share to the end of the run (the
// report's per-backend rebalance judgement over the whole run).
func verdict(cfg *Config, sr *ScenarioResult, decisions []Decision, newPods []string) (Outcome, string) {
	if len(sr.ScaleEvents) == 0 {
		msg := "no scale event happened"
		if cfg.HPA != nil {
			msg = fmt.Sprintf("the HPA never scaled (target %.0f req/s per pod)", cfg.HPA.TargetRPSPerPod)
		}
		return OutcomeNoScale, msg
	}
	reb := map[string]report.Rebalance{}
	answered := map[string]bool{}
	if sr.Run != nil {
		for _, r := range sr.Run.Rebalance {
			reb[r.Backend] = r
		}
		for _, b := range sr.Run.Backends {
			answered[b.Name] = b.Requests > 0
		}
	}
	held := true
	var idle, fell []string
	for _, name := range newPods {
		// A pod that answered from the run's first interval has no rebalance
		// entry of its own: the group's share judges it.
		r, ok := reb[name]
		switch {
		case !ok && !answered[name]:
			idle = append(idle, name)
			held = false
		case ok && r.Outcome != report.OutcomeRebalanced:
			fell = append(fell, fmt.Sprintf("%s %.1f%% in the last half vs fair %.1f%%", name, 100*r.ShareLastHalf, 100*r.FairShareLastHalf))
			held = false
		}
	}
	o := report.JudgeShare(sr.NewPodsShare, sr.FairShare, held)
	var b strings.Builder
	switch o {
	case OutcomeRebalanced:
		fmt.Fprintf(&b, "new pods got %.0f%% of requests (fair %.0f%%) and kept their fair share: the scale-up took effect", 100*sr.NewPodsShare, 100*sr.FairShare)
	case OutcomeStuck:
		fmt.Fprintf(&b, "new pods got %.0f%% of requests (fair %.0f%%): keep-alive connections stayed on the old pods", 100*sr.NewPodsShare, 100*sr.FairShare)
	case report.OutcomeNoData:
		b.WriteString("no data: no pod was added")
	default:
		fmt.Fprintf(&b, "new pods got only %.0f%% of requests (fair %.0f%%)", 100*sr.NewPodsShare, 100*sr.FairShare)
		if sr.NewPodsShare >= report.FairFraction*sr.FairShare {
			b.WriteString(" and did not keep it")
		}
	}
	if len(fell) > 0 && o != OutcomeRebalanced {
		fmt.Fprintf(&b, " (%s)", strings.Join(fell, "; "))
	}
	if len(idle) > 0 {
		recycled := sr.Run != nil && sr.Run.ServerCloses() > 0
		if recycled {
			fmt.Fprintf(&b, "; %s never received a connection although the pods closed %d: is it behind the balancer?", strings.Join(idle, ", "), sr.Run.ServerCloses())
		} else {
			fmt.Fprintf(&b, "; %s never received a request", strings.Join(idle, ", "))
		}
	}
	if cfg.HPA != nil && len(decisions) > 0 {
		last := decisions[len(decisions)-1]
		fmt.Fprintf(&b, "; the HPA settled at %d pods, average %.0f req/s per pod vs target %.0f", last.Desired, last.Average, cfg.HPA.TargetRPSPerPod)
		if o == OutcomeStuck && last.Desired < cfg.HPA.MaxPods && last.Average < cfg.HPA.TargetRPSPerPod {
			b.WriteString(" (idle new pods pull the average down, so it stopped scaling)")
		}
	}
	if sr.BusiestP99 != nil && o != OutcomeRebalanced {
		fmt.Fprintf(&b, "; %s p99 %s", sr.BusiestPod, fmtMillis(*sr.BusiestP99))
	}
	return o, b.String()
}

// socketVerdict judges a WebSocket scenario by the sockets the new pods hold
// at the end of the run: messages follow sockets, and a socket stays on the
// pod it first reached until the pod closes it.
func socketVerdict(sr *ScenarioResult, sk *report.SocketSummary, newPods map[string]bool) (Outcome, string) {
	if len(sr.ScaleEvents) == 0 {
		return sr.Outcome, sr.Verdict
	}
	var mine uint64
	for _, b := range sk.Backends {
		if newPods[b.Name] {
			mine += b.HeldAtEnd
		}
	}
	sr.SocketsHeld = sk.HeldAtEnd
	if sk.HeldAtEnd == 0 {
		return report.OutcomeNoData, "no data: no socket was open at the end of the run; " + sr.Verdict
	}
	share := round3(float64(mine) / float64(sk.HeldAtEnd))
	sr.NewPodsSocketShare = &share
	o := report.JudgeShare(share, sr.FairShare, share >= report.FairFraction*sr.FairShare)
	what := "the sockets moved to them"
	if o != OutcomeRebalanced {
		what = "sockets stayed pinned to the old pods"
	}
	return o, fmt.Sprintf("new pods hold %d of %d sockets at the end (%.0f%%, fair %.0f%%): %s; %s",
		mine, sk.HeldAtEnd, 100*share, 100*sr.FairShare, what, sr.Verdict)
}

func fmtMillis(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.1fs", ms/1000)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// createResults opens the scenario's results file: in ResultsDir to keep it
// for kaload report, else a temporary file the caller removes.
func createResults(cfg *Config, sc Scenario, start time.Time) (string, *results.Writer, error) {
	h := results.Header{
		Kaload: cfg.Version, Label: sc.Name, URL: "lab://" + sc.Name, Start: start,
		Connections: cfg.Connections, Rate: cfg.Rate, Duration: cfg.Duration,
		Meta: map[string]string{
			"lab.scenario":     sc.Name,
			"lab.max_requests": strconv.Itoa(sc.MaxRequests),
			"lab.balancer":     string(cfg.Policy),
			"lab.protocol":     cfg.Protocol,
			"lab.seed":         strconv.FormatUint(cfg.Seed, 10),
		},
	}
	if cfg.ResultsDir == "" {
		f, err := os.CreateTemp("", "kaload-lab-*.kld")
		if err != nil {
			return "", nil, fmt.Errorf("results file: %w", err)
		}
		f.Close()
		w, err := results.CreateFile(f.Name(), h)
		if err != nil {
			os.Remove(f.Name())
			return "", nil, err
		}
		return f.Name(), w, nil
	}
	name := strings.NewReplacer("=", "-", ",", "_", ":", "-").Replace(sc.Name) + ".kld"
	path := filepath.Join(cfg.ResultsDir, name)
	w, err := results.CreateFile(path, h)
	if err != nil {
		return "", nil, field.Errorf("ResultsDir", "%w", err)
	}
	return path, w, nil
}
