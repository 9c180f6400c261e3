package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kaload/kaload/internal/kubetest"
	"github.com/kaload/kaload/internal/lab"
	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

func TestHammerWatchUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--watch", "pod/x"}, `unknown kind "pod"`},
		{[]string{"--watch", "web"}, "want KIND/NAME"},
		{[]string{"--namespace", "shop"}, "--namespace and --kubeconfig need --watch"},
	}
	for _, tt := range tests {
		code, _, errs := runReportCmd(t, append([]string{"hammer", "--url", "http://127.0.0.1:1/", "-d", "1s"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, errs, exitUsage, tt.want)
		}
	}
	code, _, errs := runReportCmd(t, "hammer", "--url", "http://127.0.0.1:1/", "-d", "1s", "--watch", "deployment/web", "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if code != exitRuntime || !strings.Contains(errs, "--watch: kubernetes client configuration") {
		t.Errorf("missing kubeconfig: exit %d, stderr %q", code, errs)
	}
}

const watchNS = "shop"

// applyRBAC creates the manifest's ServiceAccount, Role and RoleBinding in ns.
func applyRBAC(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "hammer-watch", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("rbac.yaml: %v", err)
		}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = cs.RbacV1().Roles(ns).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			for i := range o.Subjects {
				o.Subjects[i].Namespace = ns
			}
			_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("rbac.yaml: unexpected %T", obj)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestHammerWatchAPIServer runs kaload hammer --watch against a real
// kube-apiserver and etcd, as the RBAC manifest's ServiceAccount, while the
// test plays the controllers: the HPA decides to scale from 2 to 3, a pod is
// created, scheduled and Ready, its endpoint is added, and the "Service"
// (the lab's L4 balancer in front of real kaload servers) starts sending it
// connections. The results file holds the events; the report's stages put
// them next to the traffic.
func TestHammerWatchAPIServer(t *testing.T) {
	c := kubetest.Start(t, kubetest.ServiceAccountToken{Token: "hammer-token-0123456789", Namespace: watchNS, Name: "kaload-hammer"})
	ctx := context.Background()
	// The test plays the controllers as admin, with client-go's clientset.
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	must[*corev1.Namespace](t)(cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: watchNS}}, metav1.CreateOptions{}))
	applyRBAC(t, ctx, cs, watchNS)

	labels := map[string]string{"app": "web"}
	dep := must[*appsv1.Deployment](t)(cs.AppsV1().Deployments(watchNS).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "kaload:dev"}}}}},
	}, metav1.CreateOptions{}))
	rs := must[*appsv1.ReplicaSet](t)(cs.AppsV1().ReplicaSets(watchNS).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: dep.UID}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "kaload:dev"}}}}},
	}, metav1.CreateOptions{}))
	pods := cs.CoreV1().Pods(watchNS)
	newPod := func(name string) *corev1.Pod {
		return must[*corev1.Pod](t)(pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: "abc"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: rs.UID}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "kaload:dev"}}},
		}, metav1.CreateOptions{}))
	}
	setStatus := func(p *corev1.Pod, ip string, ready bool) *corev1.Pod {
		p = p.DeepCopy()
		now := metav1.Now()
		p.Spec.NodeName = "node-1"
		p.Status.PodIP = ip
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		if ready {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now})
		}
		return must[*corev1.Pod](t)(pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}))
	}
	setStatus(newPod("web-abc-1"), "10.0.0.1", true)
	setStatus(newPod("web-abc-2"), "10.0.0.2", true)
	hpas := cs.AutoscalingV2().HorizontalPodAutoscalers(watchNS)
	h := must[*autoscalingv2.HorizontalPodAutoscaler](t)(hpas.Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: ptrTo(int32(2)), MaxReplicas: 5,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: quantity("100")}}}}},
	}, metav1.CreateOptions{}))
	setHPA := func(desired, current int32, rps string) {
		h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{DesiredReplicas: desired, CurrentReplicas: current,
			CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{
				Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"}, Current: autoscalingv2.MetricValueStatus{AverageValue: quantity(rps)}}}}}
		h = must[*autoscalingv2.HorizontalPodAutoscaler](t)(hpas.UpdateStatus(ctx, h, metav1.UpdateOptions{}))
	}
	setHPA(2, 2, "90")
	slices := cs.DiscoveryV1().EndpointSlices(watchNS)
	endpoints := func(names ...string) []discoveryv1.Endpoint {
		var out []discoveryv1.Endpoint
		for i, n := range names {
			out = append(out, discoveryv1.Endpoint{Addresses: []string{"10.0.0." + string(rune('1'+i))},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: n, Namespace: watchNS},
				Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)}})
		}
		return out
	}
	sl := must[*discoveryv1.EndpointSlice](t)(slices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-x1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: endpoints("web-abc-1", "web-abc-2"),
	}, metav1.CreateOptions{}))

	// The pods' servers behind the "Service".
	a := servertest.Start(t, server.Config{Hostname: "web-abc-1", MaxRequests: 20})
	b := servertest.Start(t, server.Config{Hostname: "web-abc-2", MaxRequests: 20})
	p3 := servertest.Start(t, server.Config{Hostname: "web-abc-3", MaxRequests: 20})
	bal := lab.NewBalancer(lab.PolicyRoundRobin, 0)
	bal.SetBackends(a.Addr, b.Addr)
	// The hammer lists the cluster before its first connection: the
	// controllers start when the load does, so the run begins with the
	// state before the scale-up (desired=2, replicas=2) however long the
	// hammer took to start.
	loadStarted := make(chan struct{})
	ln := &firstAccept{Listener: listenLoopback(t), first: loadStarted}
	balDone := make(chan error, 1)
	go func() { balDone <- bal.Serve(context.Background(), ln) }()
	defer func() { bal.Close(); <-balDone; bal.Wait() }()

	// The controllers' part, during the run.
	script := make(chan error, 1)
	go func() {
		step := func(d time.Duration) { time.Sleep(d) }
		defer close(script)
		select {
		case <-loadStarted:
		case <-time.After(30 * time.Second):
			script <- errors.New("the hammer sent nothing in 30 s")
			return
		}
		step(1500 * time.Millisecond)
		setHPA(3, 2, "150")
		dep.Spec.Replicas = ptrTo(int32(3))
		if _, err := cs.AppsV1().Deployments(watchNS).Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
			script <- err
			return
		}
		step(300 * time.Millisecond)
		p := newPod("web-abc-3")
		step(300 * time.Millisecond)
		p = setStatus(p, "10.0.0.3", false)
		step(500 * time.Millisecond)
		setStatus(p, "10.0.0.3", true)
		step(300 * time.Millisecond)
		sl.Endpoints = endpoints("web-abc-1", "web-abc-2", "web-abc-3")
		if _, err := slices.Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
			script <- err
			return
		}
		step(300 * time.Millisecond)
		bal.Add(p3.Addr) // kube-proxy programs the new endpoint
		setHPA(3, 3, "100")
	}()

	file := filepath.Join(t.TempDir(), "run.kld")
	code, out, errs := runReportCmd(t, "hammer", "--url", "http://"+ln.Addr().String()+"/", "-d", "6s", "-c", "4", "--rate", "400",
		"--watch", "deployment/web", "--kubeconfig", c.KubeconfigFor("hammer-token-0123456789"), "--namespace", watchNS,
		"-o", file, "--quiet", "--format", "json")
	if err := <-script; err != nil {
		t.Fatal(err)
	}
	if code != exitOK {
		t.Fatalf("hammer exit %d\n%s\n%s", code, out, errs)
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}

	// The file holds the events the summary showed.
	rd, err := results.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var r client.Result
	for rd.Read(&r) == nil {
	}
	fileEvents := rd.Events()
	// Each watch delivers its objects' changes in order, but the watches of
	// different resources are independent streams: two changes made back to
	// back (the HPA's decision and the Deployment's scale, the endpoint and
	// the HPA's catching up) may arrive, and be timed, in either order. So
	// each object's events must be exactly these, in this order, as each
	// watch saw them (the pod's own changes apart from its endpoint's), and
	// nothing else of these objects.
	got := map[string][]string{}
	for _, e := range s.Events {
		if e.Object == "pod/web-abc-3" || e.Object == "hpa/web" || e.Object == "deployment/web" {
			watch := e.Object
			if strings.HasPrefix(e.Kind, "endpoint.") {
				watch = "endpointslices " + e.Object
			}
			got[watch] = append(got[watch], e.Kind+" "+firstField(e.Detail))
		}
	}
	want := map[string][]string{
		"hpa/web": {
			"hpa desired=2", // the state when the run started
			"hpa desired=3",
			"hpa desired=3", // current=3
		},
		"deployment/web":               {"scale replicas=3"},
		"pod/web-abc-3":                {"pod.created backend=web-abc-3", "pod.scheduled backend=web-abc-3", "pod.ready backend=web-abc-3"},
		"endpointslices pod/web-abc-3": {"endpoint.ready ip=10.0.0.3"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events by watch:\n%v\nwant:\n%v\nall:\n%v", got, want, s.Events)
	}
	if len(fileEvents) < len(s.Events) {
		t.Errorf("the file holds %d events, the summary %d", len(fileEvents), len(s.Events))
	}
	// The stages of the new pod, in order on one clock: they come from
	// different watches and the traffic, so this holds because the script
	// spaces them 300 ms apart (more than a loaded API server delays one
	// watch against another), not because the watches keep an order.
	var st *report.PodStages
	for i := range s.Stages {
		if s.Stages[i].Pod == "web-abc-3" {
			st = &s.Stages[i]
		}
	}
	if st == nil {
		t.Fatalf("no stages for web-abc-3: %+v", s.Stages)
	}
	prev := -1.0
	for i, name := range []string{"decision", "created", "ready", "endpoint ready", "first request"} {
		v := []*float64{st.DecisionSeconds, &st.CreatedSeconds, st.ReadySeconds, st.EndpointReadySeconds, st.FirstRequestSeconds}[i]
		if v == nil || *v < prev {
			t.Errorf("stage %s: %v after %v (%+v)", name, v, prev, st)
			continue
		}
		prev = *v
	}
	if !bytes.Contains([]byte(out), []byte(`"events"`)) {
		t.Error("no events in the JSON summary")
	}
	if t.Failed() {
		t.Logf("stderr: %s", errs)
	}
}

// firstAccept closes first when its first connection is accepted.
type firstAccept struct {
	net.Listener
	first chan struct{}
	once  sync.Once
}

func (l *firstAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.once.Do(func() { close(l.first) })
	}
	return c, err
}

func firstField(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
}

func ptrTo[T any](v T) *T { return &v }

func quantity(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

func listenLoopback(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
