package kubewatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kaload/kaload/pkg/report/results"
)

// Config is what to watch and where events go.
type Config struct {
	Client    Source // NewClient's, or any other (tests use client-go's fake clientset)
	Namespace string
	Targets   []Target
	// Start is offset zero of the run's clock (results.Header.Start).
	Start time.Time
	// Now reads the clock; nil means time.Now. Tests script it.
	Now func() time.Time
	// Record receives every event, one call at a time.
	Record func(results.Event)
	// SyncTimeout bounds the wait for the first listing; 0 means 10s. A
	// cluster that does not answer in time is still watched: Start returns
	// and the informers keep trying.
	SyncTimeout time.Duration
}

// Watcher follows the targets until Stop.
type Watcher struct {
	cfg     Config
	ctx     context.Context
	cancel  context.CancelFunc
	rsList  appslisters.ReplicaSetLister
	running sync.WaitGroup // the informers' Run
	synced  bool
	wg      sync.WaitGroup // watchRestores

	mu          sync.Mutex
	workloads   map[workload]bool
	deployments map[string]int32 // spec.replicas of watched Deployments
	hpas        map[string]hpaState
	pods        map[string]*podState
	slices      map[string]sliceState         // by slice name
	views       map[string]map[string]epState // service -> IP -> merged state
	pending     map[string][]pendingEndpoint  // endpoints of pods not seen yet
	npending    int
	lost        map[string]lostWatch // resource -> when its watch was lost
	informers   map[string]cache.SharedIndexInformer
}

type workload struct {
	kind string // "Deployment" or "StatefulSet", as in ownerReferences
	name string
}

type hpaState struct{ desired, current int32 }

type podState struct {
	ours      bool
	backend   string
	ip        string
	scheduled bool
	ready     bool
	deleting  bool
}

type endpoint struct {
	ip, pod                     string
	ready, serving, terminating bool
}

type sliceState struct {
	service   string
	endpoints []endpoint
}

type epState struct {
	endpoint
	present bool
}

type pendingEndpoint struct {
	ev results.Event
}

type lostWatch struct {
	at time.Duration
	rv string
}

const maxPending = 4096

// Start lists the watched objects and follows them. It returns once the
// first listing is in (or SyncTimeout passed: synced is then false, and the
// informers keep trying); the events of what existed before the run carry
// the API's own timestamps, so they have negative offsets.
func Start(ctx context.Context, cfg Config) (w *Watcher, synced bool, err error) {
	if cfg.Client == nil {
		return nil, false, errors.New("kubewatch: no Client")
	}
	if len(cfg.Targets) == 0 {
		return nil, false, errors.New("kubewatch: no Targets")
	}
	if cfg.Record == nil {
		return nil, false, errors.New("kubewatch: no Record")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = 10 * time.Second
	}
	if cfg.Namespace == "" {
		cfg.Namespace = metav1.NamespaceDefault
	}
	wctx, cancel := context.WithCancel(ctx)
	w = &Watcher{
		cfg: cfg, ctx: wctx, cancel: cancel,
		workloads:   map[workload]bool{},
		deployments: map[string]int32{},
		hpas:        map[string]hpaState{},
		pods:        map[string]*podState{},
		slices:      map[string]sliceState{},
		views:       map[string]map[string]epState{},
		pending:     map[string][]pendingEndpoint{},
		lost:        map[string]lostWatch{},
		informers:   map[string]cache.SharedIndexInformer{},
	}
	for _, t := range cfg.Targets {
		switch t.Kind {
		case Deployment:
			w.workloads[workload{"Deployment", t.Name}] = true
		case StatefulSet:
			w.workloads[workload{"StatefulSet", t.Name}] = true
		}
	}

	// Two phases: the objects that say which pods are ours (HPAs name their
	// target, ReplicaSets their Deployment) are listed before the pods.
	// Informers of these five resources only (see restSource).
	ns := cfg.Namespace
	informer := func(resource string, indexers cache.Indexers) cache.SharedIndexInformer {
		lw, lerr := cfg.Client.ListWatch(ns, resource)
		if lerr != nil && err == nil {
			err = lerr
		}
		return cache.NewSharedIndexInformer(lw, resources[resource].obj, 0, indexers)
	}
	hpaInf := informer("horizontalpodautoscalers", cache.Indexers{})
	depInf := informer("deployments", cache.Indexers{})
	rsInf := informer("replicasets", cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	podInf := informer("pods", cache.Indexers{})
	sliceInf := informer("endpointslices", cache.Indexers{})
	if err != nil {
		cancel()
		return nil, false, err
	}
	w.rsList = appslisters.NewReplicaSetLister(rsInf.GetIndexer())
	for name, inf := range map[string]cache.SharedIndexInformer{"horizontalpodautoscalers": hpaInf, "deployments": depInf, "replicasets": rsInf} {
		if err := w.follow(name, inf); err != nil {
			cancel()
			return nil, false, err
		}
	}
	sctx, scancel := context.WithTimeout(wctx, cfg.SyncTimeout)
	defer scancel()
	w.run(hpaInf, depInf, rsInf)
	ok1 := cache.WaitForCacheSync(sctx.Done(), hpaInf.HasSynced, depInf.HasSynced, rsInf.HasSynced)

	if err := w.follow("pods", podInf); err != nil {
		w.Stop()
		return nil, false, err
	}
	if err := w.follow("endpointslices", sliceInf); err != nil {
		w.Stop()
		return nil, false, err
	}
	w.run(podInf, sliceInf)
	ok2 := cache.WaitForCacheSync(sctx.Done(), podInf.HasSynced, sliceInf.HasSynced)
	w.synced = ok1 && ok2

	w.wg.Add(1)
	go w.watchRestores()
	return w, w.synced, nil
}

// follow registers the handlers for one resource and its watch error handler.
func (w *Watcher) follow(resource string, inf cache.SharedIndexInformer) error {
	w.informers[resource] = inf
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.watchLost(resource, inf, err)
	}); err != nil {
		return fmt.Errorf("kubewatch: %s: %w", resource, err)
	}
	h := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { w.changed(resource, nil, obj, initial) },
		UpdateFunc: func(old, obj any) { w.changed(resource, old, obj, false) },
		DeleteFunc: func(obj any) { w.deleted(resource, obj) },
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return fmt.Errorf("kubewatch: %s: %w", resource, err)
	}
	return nil
}

// run starts informers until the watcher's context ends.
func (w *Watcher) run(infs ...cache.SharedIndexInformer) {
	for _, inf := range infs {
		w.running.Add(1)
		go func() {
			defer w.running.Done()
			inf.RunWithContext(w.ctx)
		}()
	}
}

// Stop ends the watches and waits for the informers to return. No event is
// recorded after Stop returns.
func (w *Watcher) Stop() {
	w.cancel()
	w.running.Wait()
	w.wg.Wait()
	w.mu.Lock()
	w.cfg.Record = func(results.Event) {}
	w.mu.Unlock()
}

// Synced reports whether the first listing came in before Start returned.
func (w *Watcher) Synced() bool { return w.synced }

func (w *Watcher) now() time.Duration { return w.cfg.Now().Sub(w.cfg.Start) }

// at is the offset of an API timestamp, never later than now: the API's
// clock may run ahead of ours.
func (w *Watcher) at(t metav1.Time) time.Duration {
	now := w.now()
	if t.IsZero() {
		return now
	}
	return min(t.Sub(w.cfg.Start), now)
}

// emit records one event; w.mu must be held.
func (w *Watcher) emit(t time.Duration, kind, object, detail string) {
	w.cfg.Record(results.Event{T: t, Kind: kind, Object: object, Detail: detail})
}

func (w *Watcher) changed(resource string, old, obj any, initial bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restoredLocked(resource)
	switch o := obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		w.hpaLocked(o)
	case *appsv1.Deployment:
		w.deploymentLocked(o)
	case *corev1.Pod:
		w.podLocked(o, initial)
	case *discoveryv1.EndpointSlice:
		w.sliceLocked(o.Name, sliceOf(o))
	}
}

func (w *Watcher) deleted(resource string, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restoredLocked(resource)
	switch o := obj.(type) {
	case *corev1.Pod:
		if st := w.pods[o.Name]; st != nil {
			if st.ours && !st.deleting {
				w.emit(w.now(), results.EventPodDeleted, "pod/"+o.Name, "backend="+st.backend)
			}
			delete(w.pods, o.Name)
		}
		w.dropPendingLocked(o.Name)
	case *discoveryv1.EndpointSlice:
		w.sliceLocked(o.Name, sliceState{service: o.Labels[discoveryv1.LabelServiceName]})
	case *autoscalingv2.HorizontalPodAutoscaler:
		delete(w.hpas, o.Name)
	}
}

// hpaWatched reports whether hpa is a target or scales one; an HPA named
// by --watch hpa/NAME makes its scale target a watched workload.
func (w *Watcher) hpaWatchedLocked(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	ref := workload{h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name}
	for _, t := range w.cfg.Targets {
		if t.Kind == HPA && t.Name == h.Name {
			w.workloads[ref] = true
			return true
		}
	}
	return w.workloads[ref]
}

func (w *Watcher) hpaLocked(h *autoscalingv2.HorizontalPodAutoscaler) {
	if !w.hpaWatchedLocked(h) {
		return
	}
	cur := hpaState{desired: h.Status.DesiredReplicas, current: h.Status.CurrentReplicas}
	prev, seen := w.hpas[h.Name]
	if seen && prev == cur {
		return
	}
	w.hpas[h.Name] = cur
	detail := fmt.Sprintf("desired=%d current=%d", cur.desired, cur.current)
	if seen {
		detail += fmt.Sprintf(" was=%d", prev.desired)
	}
	if m := metricOf(h); m != "" {
		detail += " metric=" + m
	}
	w.emit(w.now(), results.EventHPA, "hpa/"+h.Name, detail)
}

// metricOf describes the HPA's first metric as NAME:CURRENT/TARGET.
func metricOf(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if len(h.Spec.Metrics) == 0 {
		return ""
	}
	spec := h.Spec.Metrics[0]
	var name, target string
	var current string
	var cur *autoscalingv2.MetricValueStatus
	var tgt autoscalingv2.MetricTarget
	switch spec.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if spec.Resource == nil {
			return ""
		}
		name, tgt = string(spec.Resource.Name), spec.Resource.Target
		for _, m := range h.Status.CurrentMetrics {
			if m.Resource != nil && m.Resource.Name == spec.Resource.Name {
				cur = &m.Resource.Current
			}
		}
	case autoscalingv2.PodsMetricSourceType:
		if spec.Pods == nil {
			return ""
		}
		name, tgt = spec.Pods.Metric.Name, spec.Pods.Target
		for _, m := range h.Status.CurrentMetrics {
			if m.Pods != nil && m.Pods.Metric.Name == spec.Pods.Metric.Name {
				cur = &m.Pods.Current
			}
		}
	default:
		return strings.ToLower(string(spec.Type))
	}
	target = valueOf(tgt.AverageUtilization, tgt.AverageValue, tgt.Value)
	current = "?"
	if cur != nil {
		current = valueOf(cur.AverageUtilization, cur.AverageValue, cur.Value)
	}
	return fmt.Sprintf("%s:%s/%s", name, current, target)
}

func valueOf(util *int32, avg, val *resource.Quantity) string {
	switch {
	case util != nil:
		return fmt.Sprintf("%d%%", *util)
	case avg != nil:
		return avg.String()
	case val != nil:
		return val.String()
	}
	return "?"
}

func (w *Watcher) deploymentLocked(d *appsv1.Deployment) {
	if !w.workloads[workload{"Deployment", d.Name}] {
		return
	}
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	prev, seen := w.deployments[d.Name]
	w.deployments[d.Name] = n
	if seen && prev != n {
		w.emit(w.now(), results.EventScale, "deployment/"+d.Name, fmt.Sprintf("replicas=%d was=%d", n, prev))
	}
}

// ownerLocked returns the workload a pod belongs to.
func (w *Watcher) ownerLocked(p *corev1.Pod) workload {
	for _, o := range p.OwnerReferences {
		switch o.Kind {
		case "StatefulSet":
			return workload{"StatefulSet", o.Name}
		case "ReplicaSet":
			if rs, err := w.rsList.ReplicaSets(p.Namespace).Get(o.Name); err == nil {
				for _, ro := range rs.OwnerReferences {
					if ro.Kind == "Deployment" {
						return workload{"Deployment", ro.Name}
					}
				}
				return workload{"ReplicaSet", o.Name}
			}
			// The ReplicaSet is not listed yet: the Deployment controller
			// names it DEPLOYMENT-HASH, HASH being the pod-template-hash label.
			if h := p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" {
				if name, ok := strings.CutSuffix(o.Name, "-"+h); ok {
					return workload{"Deployment", name}
				}
			}
			return workload{"ReplicaSet", o.Name}
		}
	}
	return workload{}
}

// backendOf is the name the pod's server answers with: its hostname, which
// is the pod name unless spec.hostname sets another.
func backendOf(p *corev1.Pod) string {
	if p.Spec.Hostname != "" {
		return p.Spec.Hostname
	}
	return p.Name
}

func condition(p *corev1.Pod, t corev1.PodConditionType) (bool, metav1.Time) {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue, c.LastTransitionTime
		}
	}
	return false, metav1.Time{}
}

func (w *Watcher) podLocked(p *corev1.Pod, initial bool) {
	st := w.pods[p.Name]
	if st == nil {
		st = &podState{ours: w.workloads[w.ownerLocked(p)], backend: backendOf(p)}
		w.pods[p.Name] = st
		if !st.ours {
			w.dropPendingLocked(p.Name)
			return
		}
		t := w.now()
		if initial {
			t = w.at(p.CreationTimestamp)
		}
		w.emit(t, results.EventPodCreated, "pod/"+p.Name, "backend="+st.backend)
	}
	if !st.ours {
		return
	}
	obj := "pod/" + p.Name
	if sched, ts := condition(p, corev1.PodScheduled); sched && !st.scheduled {
		st.scheduled = true
		t := w.now()
		if initial {
			t = w.at(ts)
		}
		detail := "backend=" + st.backend
		if p.Spec.NodeName != "" {
			detail += " node=" + p.Spec.NodeName
		}
		w.emit(t, results.EventPodScheduled, obj, detail)
	}
	if p.Status.PodIP != "" {
		st.ip = p.Status.PodIP
	}
	if ready, ts := condition(p, corev1.PodReady); ready != st.ready {
		st.ready = ready
		t := w.now()
		if initial {
			t = w.at(ts)
		}
		kind := results.EventPodReady
		if !ready {
			kind = results.EventPodUnready
		}
		w.emit(t, kind, obj, fmt.Sprintf("backend=%s ip=%s", st.backend, st.ip))
	}
	if p.DeletionTimestamp != nil && !st.deleting {
		st.deleting = true
		w.emit(w.now(), results.EventPodDeleted, obj, "backend="+st.backend)
	}
	for _, pe := range w.pending[p.Name] {
		pe.ev.Detail += " backend=" + st.backend
		w.cfg.Record(pe.ev)
	}
	w.dropPendingLocked(p.Name)
}

func (w *Watcher) dropPendingLocked(pod string) {
	w.npending -= len(w.pending[pod])
	delete(w.pending, pod)
}

func sliceOf(s *discoveryv1.EndpointSlice) sliceState {
	st := sliceState{service: s.Labels[discoveryv1.LabelServiceName]}
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		ep := endpoint{ip: e.Addresses[0]}
		if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
			ep.pod = e.TargetRef.Name
		}
		// Unset conditions mean "unknown"; consumers treat them as true
		// (discovery/v1 API documentation), except terminating.
		c := e.Conditions
		ep.ready = c.Ready == nil || *c.Ready
		ep.serving = c.Serving == nil || *c.Serving
		ep.terminating = c.Terminating != nil && *c.Terminating
		st.endpoints = append(st.endpoints, ep)
	}
	return st
}

// sliceLocked stores a slice's endpoints (none: deleted) and emits what
// changed in its Service's merged view. An address in several slices of a
// Service (while it moves between them) is one endpoint, ready if any says so.
func (w *Watcher) sliceLocked(name string, st sliceState) {
	old := w.slices[name]
	if len(st.endpoints) == 0 {
		delete(w.slices, name)
	} else {
		w.slices[name] = st
	}
	for _, svc := range uniq(old.service, st.service) {
		view := map[string]epState{}
		for _, s := range w.slices {
			if s.service != svc {
				continue
			}
			for _, e := range s.endpoints {
				v := view[e.ip]
				if !v.present {
					v = epState{endpoint: e, present: true}
				} else {
					v.ready = v.ready || e.ready
					v.serving = v.serving || e.serving
					v.terminating = v.terminating && e.terminating
					if v.pod == "" {
						v.pod = e.pod
					}
				}
				view[e.ip] = v
			}
		}
		prev := w.views[svc]
		ips := make([]string, 0, len(view)+len(prev))
		for ip := range view {
			ips = append(ips, ip)
		}
		for ip := range prev {
			if _, ok := view[ip]; !ok {
				ips = append(ips, ip)
			}
		}
		sort.Strings(ips)
		t := w.now()
		for _, ip := range ips {
			w.endpointLocked(t, svc, prev[ip], view[ip])
		}
		if len(view) == 0 {
			delete(w.views, svc)
		} else {
			w.views[svc] = view
		}
	}
}

func uniq(a, b string) []string {
	if a == b || a == "" {
		return []string{b}
	}
	if b == "" {
		return []string{a}
	}
	return []string{a, b}
}

func (w *Watcher) endpointLocked(t time.Duration, svc string, prev, cur epState) {
	var kind string
	switch {
	case !prev.present && !cur.present:
		return
	case !cur.present:
		kind, cur.endpoint = results.EventEndpointRemoved, prev.endpoint
		cur.ready, cur.serving = false, false
	case !prev.present:
		switch {
		case cur.terminating:
			kind = results.EventEndpointTerminating
		case cur.ready:
			kind = results.EventEndpointReady
		default:
			kind = results.EventEndpointNotReady
		}
	case cur.terminating && !prev.terminating:
		kind = results.EventEndpointTerminating
	case cur.ready != prev.ready:
		kind = results.EventEndpointReady
		if !cur.ready {
			kind = results.EventEndpointNotReady
		}
	case cur.serving != prev.serving:
		kind = results.EventEndpointServing
	default:
		return
	}
	obj := "ip/" + cur.ip
	detail := fmt.Sprintf("ip=%s ready=%t serving=%t terminating=%t service=%s", cur.ip, cur.ready, cur.serving, cur.terminating, svc)
	if cur.pod == "" {
		w.emit(t, kind, obj, detail)
		return
	}
	obj = "pod/" + cur.pod
	ev := results.Event{T: t, Kind: kind, Object: obj, Detail: detail}
	st := w.pods[cur.pod]
	if st == nil {
		// The pod's own watch has not shown it yet: hold the event until it does.
		if w.npending < maxPending {
			w.pending[cur.pod] = append(w.pending[cur.pod], pendingEndpoint{ev})
			w.npending++
		}
		return
	}
	if !st.ours {
		return
	}
	ev.Detail += " backend=" + st.backend
	w.cfg.Record(ev)
}

// watchLost records the first failure of a resource's watch; the informer
// retries on its own.
func (w *Watcher) watchLost(resource string, inf cache.SharedIndexInformer, err error) {
	if w.ctx.Err() != nil {
		return // shutting down
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.lost[resource]; ok {
		return
	}
	t := w.now()
	w.lost[resource] = lostWatch{at: t, rv: inf.LastSyncResourceVersion()}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	w.emit(t, results.EventWatchLost, "watch/"+resource, "error="+strings.ReplaceAll(msg, " ", "_"))
}

// restoredLocked closes the gap of a resource whose informer delivered
// again (after a re-list every object is delivered anew).
func (w *Watcher) restoredLocked(resource string) {
	l, ok := w.lost[resource]
	if !ok {
		return
	}
	delete(w.lost, resource)
	t := w.now()
	w.emit(t, results.EventWatchRestored, "watch/"+resource, fmt.Sprintf("gap=%.3fs", (t-l.at).Seconds()))
}

// watchRestores notices a re-established watch of a resource with no object
// to deliver: its informer synced a newer resource version.
func (w *Watcher) watchRestores() {
	defer w.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
			w.mu.Lock()
			for res, l := range w.lost {
				if rv := w.informers[res].LastSyncResourceVersion(); rv != "" && rv != l.rv {
					w.restoredLocked(res)
				}
			}
			w.mu.Unlock()
		}
	}
}
