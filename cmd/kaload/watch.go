package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kaload/kaload/internal/kubewatch"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

// watchOptions are hammer's Kubernetes flags.
type watchOptions struct {
	Watch      []string
	Namespace  string
	Kubeconfig string
	Targets    []kubewatch.Target
}

const watchHelp = `--watch KIND/NAME (deployment/web, statefulset/db, hpa/web; repeatable)
follows the workload on the cluster while the load runs: its HPA's desired
and current replicas, its pods (created, scheduled, Ready, deleted) and the
EndpointSlices that point at them (ready, serving, terminating). They are
recorded as events in the results file, on the run's clock, and the report
breaks each new pod's way into traffic into stages: scale decision -> pod
created -> Ready -> endpoint ready -> first request -> fair share. The
kubeconfig is found as kubectl finds it (--kubeconfig, $KUBECONFIG,
~/.kube/config; in a pod its service account; see deploy/kubernetes/hammer
for the RBAC). A watch that breaks is re-established and the gap recorded;
it never fails the run.`

func (o *watchOptions) addFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&o.Watch, "watch", nil, "follow `KIND/NAME` on Kubernetes during the run: deployment/NAME, statefulset/NAME, hpa/NAME (repeatable)")
	f.StringVar(&o.Namespace, "namespace", "", "namespace of --watch (default: the kubeconfig context's, in a pod its own)")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig `FILE` for --watch (default: $KUBECONFIG, ~/.kube/config, in a pod its service account)")
}

func (o *watchOptions) complete() error {
	for _, w := range o.Watch {
		t, err := kubewatch.ParseTarget(w)
		if err != nil {
			return usageErrorf("--watch %w", err)
		}
		o.Targets = append(o.Targets, t)
	}
	if len(o.Targets) == 0 && (o.Namespace != "" || o.Kubeconfig != "") {
		return usageErrorf("--namespace and --kubeconfig need --watch")
	}
	return nil
}

// eventSink takes the watcher's events. Until the run's clock starts (the
// results file's header is written then) it holds them; then it shifts them
// onto that clock and writes each to the results file as it comes. The
// aggregator gets them all after the run (it is not safe for concurrent use).
type eventSink struct {
	mu      sync.Mutex
	zero    time.Time // the watcher's offset zero
	shift   time.Duration
	out     *results.Writer
	started bool
	held    []results.Event
	all     []results.Event
	err     error
}

func (s *eventSink) record(e results.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.held = append(s.held, e)
		return
	}
	e.T -= s.shift
	s.all = append(s.all, e)
	if s.out != nil && s.err == nil {
		s.err = s.out.WriteEvent(e)
	}
}

// start puts the held events on the run's clock, which starts at start.
func (s *eventSink) start(start time.Time, out *results.Writer) {
	s.mu.Lock()
	s.shift, s.out, s.started = start.Sub(s.zero), out, true
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, e := range held {
		s.record(e)
	}
}

// finish hands the events to the run's aggregate.
func (s *eventSink) finish(run *report.Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.all {
		run.AddEvent(e)
	}
	if s.err != nil {
		return fmt.Errorf("results file: events: %w", s.err)
	}
	return nil
}

// client-go logs a broken watch through klog; kaload records it as an event
// instead. Set before any goroutine runs: klog's logger is a global that
// client-go reads on every request, and setting it in startWatch raced with
// other client-go users of the process (a test playing the controllers).
func init() { klog.SetLogger(logr.Discard()) }

// startWatch connects and lists the targets before the load starts, so the
// run begins with the workload's state on record.
func startWatch(ctx context.Context, o *watchOptions, warn io.Writer) (*kubewatch.Watcher, *eventSink, error) {
	cs, ns, err := kubewatch.NewClient(o.Kubeconfig, o.Namespace)
	if err != nil {
		return nil, nil, fmt.Errorf("--watch: %w", err)
	}
	sink := &eventSink{zero: time.Now()}
	w, synced, err := kubewatch.Start(ctx, kubewatch.Config{Client: cs, Namespace: ns, Targets: o.Targets, Start: sink.zero, Record: sink.record})
	if err != nil {
		return nil, nil, fmt.Errorf("--watch: %w", err)
	}
	if !synced {
		fmt.Fprintf(warn, "kaload: --watch: the Kubernetes API did not list namespace %q within 10s; the load starts, watching goes on\n", ns)
	}
	return w, sink, nil
}
