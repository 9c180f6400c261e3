package kubewatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kaload/kaload/pkg/report/results"
)

func TestMain(m *testing.M) {
	klog.SetLogger(klog.Background().V(10)) // informers' retries are recorded as events, not logged
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

const ns = "shop"

// scripted is the run's clock and the recorded events.
type scripted struct {
	mu     sync.Mutex
	now    time.Time
	events []results.Event
}

func (s *scripted) Now() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.now }
func (s *scripted) set(d time.Duration) {
	s.mu.Lock()
	s.now = t0.Add(d)
	s.mu.Unlock()
}
func (s *scripted) record(e results.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}
func (s *scripted) snapshot() []results.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// waitFor waits until n events were recorded.
func (s *scripted) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.snapshot()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d events after 10s, want %d:\n%s", len(s.snapshot()), n, dump(s.snapshot()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dump(evs []results.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %v %s %s %s\n", e.T, e.Kind, e.Object, e.Detail)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

func deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{Replicas: ptr(replicas)}}
}

func replicaSet(name, owner string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: owner, APIVersion: "apps/v1"}}}}
}

func pod(name, rs, hash string, created time.Time) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(created),
		Labels:          map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: hash},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs, APIVersion: "apps/v1"}}}}
}

func withConditions(p *corev1.Pod, ip string, scheduled, ready time.Time) *corev1.Pod {
	p = p.DeepCopy()
	p.Status.PodIP = ip
	p.Spec.NodeName = "node-1"
	if !scheduled.IsZero() {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(scheduled)})
	}
	if !ready.IsZero() {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(ready)})
	}
	return p
}

func hpa(desired, current, util int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MaxReplicas:    10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(50))}}}},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{DesiredReplicas: desired, CurrentReplicas: current,
			CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(util)}}}}},
	}
}

type ep struct {
	ip, pod                     string
	ready, serving, terminating bool
}

func slice(name, svc string, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: e.pod, Namespace: ns},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(e.serving), Terminating: ptr(e.terminating)}})
	}
	return s
}

func ev(d time.Duration, kind, object, detail string) results.Event {
	return results.Event{T: d, Kind: kind, Object: object, Detail: detail}
}

func sortEvents(evs []results.Event) {
	slices.SortStableFunc(evs, func(a, b results.Event) int {
		return cmp.Or(cmp.Compare(a.T, b.T), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Object, b.Object))
	})
}

// TestWatchScaleUp scripts a scale-up through the fake clientset: the HPA
// decides, the Deployment scales, a pod is created, scheduled and Ready, its
// endpoint becomes ready, an old pod terminates. Every event comes out
// exactly, at the scripted clock; a pod of another workload and its
// endpoint stay out.
func TestWatchScaleUp(t *testing.T) {
	ctx := context.Background()
	sc := &scripted{now: t0}
	old1 := withConditions(pod("web-abc-1", "web-abc", "abc", t0.Add(-60*time.Second)), "10.0.0.1", t0.Add(-59*time.Second), t0.Add(-50*time.Second))
	old2 := withConditions(pod("web-abc-2", "web-abc", "abc", t0.Add(-60*time.Second)), "10.0.0.2", t0.Add(-59*time.Second), t0.Add(-49*time.Second))
	other := withConditions(pod("api-zzz-1", "api-zzz", "zzz", t0.Add(-60*time.Second)), "10.0.9.1", t0.Add(-59*time.Second), t0.Add(-50*time.Second))
	cs := fake.NewClientset(deployment("web", 2), deployment("api", 1), replicaSet("web-abc", "web"), replicaSet("api-zzz", "api"),
		old1, old2, other, hpa(2, 2, 40),
		slice("web-s1", "web", ep{"10.0.0.1", "web-abc-1", true, true, false}, ep{"10.0.0.2", "web-abc-2", true, true, false}),
		slice("api-s1", "api", ep{"10.0.9.1", "api-zzz-1", true, true, false}))

	w, synced, err := Start(ctx, Config{Client: clientsetSource{cs}, Namespace: ns, Targets: []Target{{Deployment, "web"}}, Start: t0, Now: sc.Now, Record: sc.record})
	if err != nil || !synced {
		t.Fatalf("Start: synced %v, %v", synced, err)
	}
	defer w.Stop()
	sc.waitFor(t, 9)

	step := func(d time.Duration, n int, f func() error) {
		t.Helper()
		sc.set(d)
		if err := f(); err != nil {
			t.Fatal(err)
		}
		sc.waitFor(t, n)
	}
	apps, core, disc := cs.AppsV1(), cs.CoreV1(), cs.DiscoveryV1()
	hpas := cs.AutoscalingV2().HorizontalPodAutoscalers(ns)
	step(5*time.Second, 10, func() error { _, err := hpas.UpdateStatus(ctx, hpa(4, 2, 95), metav1.UpdateOptions{}); return err })
	step(5200*time.Millisecond, 11, func() error {
		_, err := apps.Deployments(ns).Update(ctx, deployment("web", 4), metav1.UpdateOptions{})
		return err
	})
	newPod := pod("web-abc-3", "web-abc", "abc", t0.Add(6*time.Second))
	step(6*time.Second, 12, func() error { _, err := core.Pods(ns).Create(ctx, newPod, metav1.CreateOptions{}); return err })
	step(7*time.Second, 13, func() error {
		_, err := core.Pods(ns).UpdateStatus(ctx, withConditions(newPod, "", t0.Add(7*time.Second), time.Time{}), metav1.UpdateOptions{})
		return err
	})
	step(9*time.Second, 14, func() error {
		_, err := core.Pods(ns).UpdateStatus(ctx, withConditions(newPod, "10.0.0.3", t0.Add(7*time.Second), t0.Add(9*time.Second)), metav1.UpdateOptions{})
		return err
	})
	step(9500*time.Millisecond, 15, func() error {
		_, err := disc.EndpointSlices(ns).Update(ctx, slice("web-s1", "web", ep{"10.0.0.1", "web-abc-1", true, true, false},
			ep{"10.0.0.2", "web-abc-2", true, true, false}, ep{"10.0.0.3", "web-abc-3", true, true, false}), metav1.UpdateOptions{})
		return err
	})
	// The unrelated workload changes too: nothing is recorded for it.
	sc.set(10 * time.Second)
	if _, err := core.Pods(ns).Create(ctx, pod("api-zzz-2", "api-zzz", "zzz", t0.Add(10*time.Second)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// web-abc-1 is deleted: terminating first, then gone.
	gone := old1.DeepCopy()
	gone.DeletionTimestamp = ptr(metav1.NewTime(t0.Add(20 * time.Second)))
	step(20*time.Second, 16, func() error { _, err := core.Pods(ns).Update(ctx, gone, metav1.UpdateOptions{}); return err })
	step(20500*time.Millisecond, 17, func() error {
		_, err := disc.EndpointSlices(ns).Update(ctx, slice("web-s1", "web", ep{"10.0.0.1", "web-abc-1", false, true, true},
			ep{"10.0.0.2", "web-abc-2", true, true, false}, ep{"10.0.0.3", "web-abc-3", true, true, false}), metav1.UpdateOptions{})
		return err
	})
	step(22*time.Second, 18, func() error {
		_, err := disc.EndpointSlices(ns).Update(ctx, slice("web-s1", "web",
			ep{"10.0.0.2", "web-abc-2", true, true, false}, ep{"10.0.0.3", "web-abc-3", true, true, false}), metav1.UpdateOptions{})
		return err
	})
	step(23*time.Second, 18, func() error { return core.Pods(ns).Delete(ctx, "web-abc-1", metav1.DeleteOptions{}) })
	time.Sleep(100 * time.Millisecond) // room for a wrong extra event to show
	w.Stop()

	got := sc.snapshot()
	sortEvents(got)
	ip := func(ip, pod string, ready, serving, term bool) string {
		return fmt.Sprintf("ip=%s ready=%t serving=%t terminating=%t service=web backend=%s", ip, ready, serving, term, pod)
	}
	want := []results.Event{
		ev(-60*time.Second, "pod.created", "pod/web-abc-1", "backend=web-abc-1"),
		ev(-60*time.Second, "pod.created", "pod/web-abc-2", "backend=web-abc-2"),
		ev(-59*time.Second, "pod.scheduled", "pod/web-abc-1", "backend=web-abc-1 node=node-1"),
		ev(-59*time.Second, "pod.scheduled", "pod/web-abc-2", "backend=web-abc-2 node=node-1"),
		ev(-50*time.Second, "pod.ready", "pod/web-abc-1", "backend=web-abc-1 ip=10.0.0.1"),
		ev(-49*time.Second, "pod.ready", "pod/web-abc-2", "backend=web-abc-2 ip=10.0.0.2"),
		ev(0, "endpoint.ready", "pod/web-abc-1", ip("10.0.0.1", "web-abc-1", true, true, false)),
		ev(0, "endpoint.ready", "pod/web-abc-2", ip("10.0.0.2", "web-abc-2", true, true, false)),
		ev(0, "hpa", "hpa/web", "desired=2 current=2 metric=cpu:40%/50%"),
		ev(5*time.Second, "hpa", "hpa/web", "desired=4 current=2 was=2 metric=cpu:95%/50%"),
		ev(5200*time.Millisecond, "scale", "deployment/web", "replicas=4 was=2"),
		ev(6*time.Second, "pod.created", "pod/web-abc-3", "backend=web-abc-3"),
		ev(7*time.Second, "pod.scheduled", "pod/web-abc-3", "backend=web-abc-3 node=node-1"),
		ev(9*time.Second, "pod.ready", "pod/web-abc-3", "backend=web-abc-3 ip=10.0.0.3"),
		ev(9500*time.Millisecond, "endpoint.ready", "pod/web-abc-3", ip("10.0.0.3", "web-abc-3", true, true, false)),
		ev(20*time.Second, "pod.deleted", "pod/web-abc-1", "backend=web-abc-1"),
		ev(20500*time.Millisecond, "endpoint.terminating", "pod/web-abc-1", ip("10.0.0.1", "web-abc-1", false, true, true)),
		ev(22*time.Second, "endpoint.removed", "pod/web-abc-1", ip("10.0.0.1", "web-abc-1", false, false, true)),
	}
	sortEvents(want)
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", dump(got), dump(want))
	}
}

// TestWatchHPATarget: --watch hpa/NAME follows the HPA's scale target.
func TestWatchHPATarget(t *testing.T) {
	sc := &scripted{now: t0}
	p := withConditions(pod("web-abc-1", "web-abc", "abc", t0.Add(-time.Second)), "10.0.0.1", time.Time{}, time.Time{})
	// No ReplicaSet is listed: the pod's owner comes from the naming rule.
	cs := fake.NewClientset(deployment("web", 1), p, hpa(1, 1, 10))
	w, _, err := Start(context.Background(), Config{Client: clientsetSource{cs}, Namespace: ns, Targets: []Target{{HPA, "web"}}, Start: t0, Now: sc.Now, Record: sc.record})
	if err != nil {
		t.Fatal(err)
	}
	sc.waitFor(t, 2)
	w.Stop()
	got := sc.snapshot()
	sortEvents(got)
	want := []results.Event{
		ev(-time.Second, "pod.created", "pod/web-abc-1", "backend=web-abc-1"),
		ev(0, "hpa", "hpa/web", "desired=1 current=1 metric=cpu:10%/50%"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", dump(got), dump(want))
	}
}

// TestWatchGap: the pods' listing fails twice; the informer retries, the
// run goes on and the gap is recorded with its length.
func TestWatchGap(t *testing.T) {
	sc := &scripted{now: t0}
	cs := fake.NewClientset(deployment("web", 1), replicaSet("web-abc", "web"), pod("web-abc-1", "web-abc", "abc", t0.Add(-time.Second)))
	var fails atomic.Int32
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fails.Add(1) <= 2 {
			sc.set(time.Duration(fails.Load()) * time.Second)
			return true, nil, errors.New("connection refused")
		}
		sc.set(3 * time.Second)
		return false, nil, nil
	})
	w, synced, err := Start(context.Background(), Config{Client: clientsetSource{cs}, Namespace: ns, Targets: []Target{{Deployment, "web"}}, Start: t0, Now: sc.Now, Record: sc.record})
	if err != nil || !synced {
		t.Fatalf("Start: synced %v, %v", synced, err)
	}
	sc.waitFor(t, 3)
	w.Stop()
	got := sc.snapshot()
	sortEvents(got)
	want := []results.Event{
		ev(-time.Second, "pod.created", "pod/web-abc-1", "backend=web-abc-1"),
		ev(time.Second, "watch.lost", "watch/pods", "error=failed_to_list_*v1.Pod:_connection_refused"),
		ev(3*time.Second, "watch.restored", "watch/pods", "gap=2.000s"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", dump(got), dump(want))
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		err  string
	}{
		{"deployment/web", Target{Deployment, "web"}, ""},
		{"deploy/web-1", Target{Deployment, "web-1"}, ""},
		{"StatefulSet/db", Target{StatefulSet, "db"}, ""},
		{"sts/db.x", Target{StatefulSet, "db.x"}, ""},
		{"hpa/web", Target{HPA, "web"}, ""},
		{"horizontalpodautoscaler/web", Target{HPA, "web"}, ""},
		{"web", Target{}, "want KIND/NAME"},
		{"pod/web", Target{}, `unknown kind "pod"`},
		{"deployment/", Target{}, "want KIND/NAME"},
		{"deployment/Web", Target{}, "not a Kubernetes object name"},
		{"deployment/a/b", Target{}, "not a Kubernetes object name"},
		{"deployment/-a", Target{}, "not a Kubernetes object name"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTarget(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// FuzzParseTarget: whatever --watch text comes in, ParseTarget errs or
// returns a target that prints back to an equivalent KIND/NAME.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"deployment/web", "sts/db", "hpa/web-1.x", "pod/x", "/", "deployment//", "HPA/Web", "deploy/-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if !validName(tg.Name) || tg.Name == "" {
			t.Fatalf("%q: invalid name %q accepted", s, tg.Name)
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q -> %v -> %v, %v", s, tg, again, err)
		}
	})
}

// clientsetSource lists and watches through a clientset (here client-go's
// fake): what NewClient's REST source does against a real API server.
type clientsetSource struct{ cs kubernetes.Interface }

func (c clientsetSource) ListWatch(ns, resource string) (cache.ListerWatcher, error) {
	lw := func(list func(context.Context, metav1.ListOptions) (runtime.Object, error), w func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
		// The fake says it cannot stream the initial list (WatchList), as
		// client-go's generated informers ask it.
		return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{ListWithContextFunc: list, WatchFuncWithContext: w}, c.cs)
	}
	switch resource {
	case "pods":
		i := c.cs.CoreV1().Pods(ns)
		return lw(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return i.List(ctx, o) }, i.Watch), nil
	case "endpointslices":
		i := c.cs.DiscoveryV1().EndpointSlices(ns)
		return lw(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return i.List(ctx, o) }, i.Watch), nil
	case "horizontalpodautoscalers":
		i := c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns)
		return lw(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return i.List(ctx, o) }, i.Watch), nil
	case "deployments":
		i := c.cs.AppsV1().Deployments(ns)
		return lw(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return i.List(ctx, o) }, i.Watch), nil
	case "replicasets":
		i := c.cs.AppsV1().ReplicaSets(ns)
		return lw(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return i.List(ctx, o) }, i.Watch), nil
	}
	return nil, fmt.Errorf("no resource %q", resource)
}
