package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// These tests render deploy/kubernetes the way `kubectl apply -k` does,
// decode every object strictly into the real Kubernetes API types, and check
// the manifests against the kaload binary itself: env names against what
// `kaload serve` reads, container args against its command line, probe paths
// against a running server.

// stack is one rendered kustomization, decoded.
type stack struct {
	Dir         string
	Namespaces  []corev1.Namespace
	Deployments []appsv1.Deployment
	Services    []corev1.Service
	HPAs        []autoscalingv2.HorizontalPodAutoscaler
	Jobs        []batchv1.Job
	PVCs        []corev1.PersistentVolumeClaim
	Pods        []corev1.Pod
	Ingresses   []networkingv1.Ingress
	// The RBAC of kaload hammer --watch (hammer-watch/).
	ServiceAccounts []corev1.ServiceAccount
	Roles           []rbacv1.Role
	RoleBindings    []rbacv1.RoleBinding
	raw             []map[string]any // as rendered, for comparing renderers
}

// decodeObject strictly decodes one rendered object (JSON) into its
// k8s.io/api type and appends it to st: an unknown kind, apiVersion or field
// is an error, as the API server's strict field validation would make it.
func (st *stack) decodeObject(js []byte) error {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return fmt.Errorf("object: %w", err)
	}
	strict := func(into any) error {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			return fmt.Errorf("%s %s/%s: %w", tm.APIVersion, tm.Kind, tm.Metadata.Name, err)
		}
		if dec.More() {
			return fmt.Errorf("%s/%s: trailing data after the object", tm.Kind, tm.Metadata.Name)
		}
		return nil
	}
	var err error
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "v1 Namespace":
		var o corev1.Namespace
		if err = strict(&o); err == nil {
			st.Namespaces = append(st.Namespaces, o)
		}
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		if err = strict(&o); err == nil {
			st.Deployments = append(st.Deployments, o)
		}
	case "v1 Service":
		var o corev1.Service
		if err = strict(&o); err == nil {
			st.Services = append(st.Services, o)
		}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		var o autoscalingv2.HorizontalPodAutoscaler
		if err = strict(&o); err == nil {
			st.HPAs = append(st.HPAs, o)
		}
	case "batch/v1 Job":
		var o batchv1.Job
		if err = strict(&o); err == nil {
			st.Jobs = append(st.Jobs, o)
		}
	case "v1 PersistentVolumeClaim":
		var o corev1.PersistentVolumeClaim
		if err = strict(&o); err == nil {
			st.PVCs = append(st.PVCs, o)
		}
	case "networking.k8s.io/v1 Ingress":
		var o networkingv1.Ingress
		if err = strict(&o); err == nil {
			st.Ingresses = append(st.Ingresses, o)
		}
	case "v1 Pod":
		var o corev1.Pod
		if err = strict(&o); err == nil {
			st.Pods = append(st.Pods, o)
		}
	case "v1 ServiceAccount":
		var o corev1.ServiceAccount
		if err = strict(&o); err == nil {
			st.ServiceAccounts = append(st.ServiceAccounts, o)
		}
	case "rbac.authorization.k8s.io/v1 Role":
		var o rbacv1.Role
		if err = strict(&o); err == nil {
			st.Roles = append(st.Roles, o)
		}
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		var o rbacv1.RoleBinding
		if err = strict(&o); err == nil {
			st.RoleBindings = append(st.RoleBindings, o)
		}
	default:
		return fmt.Errorf("%s/%s: unexpected object kind %q", tm.Kind, tm.Metadata.Name, gvk)
	}
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return err
	}
	st.raw = append(st.raw, m)
	return nil
}

// render builds the kustomization in dir in-process, as kubectl's embedded
// kustomize does.
func render(t *testing.T, dir string) *stack {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	st := &stack{Dir: dir}
	for _, r := range m.Resources() {
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize %s: %v", dir, err)
		}
		if err := st.decodeObject(js); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	return st
}

// kubectlRender renders dir with the kubectl in PATH, which users run.
func kubectlRender(ctx context.Context, dir string) ([]map[string]any, error) {
	out, err := exec.CommandContext(ctx, "kubectl", "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("kubectl kustomize %s: %w\n%s", dir, err, ee.Stderr)
		}
		return nil, err
	}
	var objs []map[string]any
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("kubectl kustomize %s: document %d: %w", dir, i, err)
		}
		objs = append(objs, m)
	}
	return objs, nil
}

// The three ways to deploy the server, and the MAX_REQUEST each must give.
var stacks = []struct {
	dir         string
	maxRequests int
}{
	{deployDir, 0},
	{deployDir + "/overlays/no-recycling", 0},
	{deployDir + "/overlays/recycling", 5},
	{deployDir + "/overlays/websocket", 0},
	{deployDir + "/overlays/grpc", 100},
}

func TestManifestsRender(t *testing.T) {
	for _, tt := range stacks {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			st := render(t, tt.dir)
			for kind, n := range map[string]int{
				"Namespace": len(st.Namespaces), "Deployment": len(st.Deployments), "Service": len(st.Services),
				"HorizontalPodAutoscaler": len(st.HPAs), "Job": len(st.Jobs), "PersistentVolumeClaim": len(st.PVCs),
			} {
				if n != 1 {
					t.Errorf("%s renders %d %s objects, want 1", tt.dir, n, kind)
				}
			}
			if len(st.Pods) != 0 {
				t.Errorf("%s renders a bare Pod", tt.dir)
			}
			if t.Failed() {
				return
			}
			var opts *served
			for _, err := range checkStack(t, st, &opts) {
				t.Error(err)
			}
			if opts != nil && opts.MaxRequests != tt.maxRequests {
				t.Errorf("%s: kaload serve runs with --max-requests %d, want %d", tt.dir, opts.MaxRequests, tt.maxRequests)
			}
		})
	}
}

// TestManifestsMatchKubectl checks that the kubectl users run renders the same
// objects as the kustomize library the other tests use.
func TestManifestsMatchKubectl(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, dir := range []string{deployDir, deployDir + "/overlays/no-recycling", deployDir + "/overlays/recycling", deployDir + "/overlays/websocket", deployDir + "/overlays/small-no-recycling", deployDir + "/overlays/small-recycling", deployDir + "/report"} {
		want := render(t, dir).raw
		got, err := kubectlRender(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		key := func(m map[string]any) string {
			md, _ := m["metadata"].(map[string]any)
			return fmt.Sprint(m["kind"], "/", md["name"])
		}
		gotBy := map[string]map[string]any{}
		for _, m := range got {
			gotBy[key(m)] = m
		}
		if len(got) != len(want) {
			t.Errorf("%s: kubectl renders %d objects, the library %d", dir, len(got), len(want))
		}
		for _, w := range want {
			g, ok := gotBy[key(w)]
			if !ok {
				t.Errorf("%s: kubectl does not render %s", dir, key(w))
				continue
			}
			if !reflect.DeepEqual(g, w) {
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(w)
				t.Errorf("%s: %s differs:\nkubectl %s\nlibrary %s", dir, key(w), gj, wj)
			}
		}
	}
}

// checkStack checks one rendered server+hammer stack: its objects against
// each other and against kaload's commands (checkReportPod does the report
// Pod). It returns every
// violation, so a test can also prove that a broken manifest is caught. The
// serve options the Deployment would run with are stored in *serveOut.
func checkStack(t *testing.T, st *stack, serveOut **served) []error {
	t.Helper()
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(st.Deployments) != 1 || len(st.Services) != 1 || len(st.HPAs) != 1 || len(st.Jobs) != 1 {
		return []error{fmt.Errorf("want one Deployment, Service, HPA and Job")}
	}
	dep, svc, hpa, job := &st.Deployments[0], &st.Services[0], &st.HPAs[0], &st.Jobs[0]

	// Namespace: everything lives in one, which enforces the restricted
	// Pod Security Standard.
	ns := ""
	if len(st.Namespaces) == 1 {
		ns = st.Namespaces[0].Name
		if lvl := st.Namespaces[0].Labels["pod-security.kubernetes.io/enforce"]; lvl != "restricted" {
			fail("Namespace %s: pod-security.kubernetes.io/enforce = %q, want restricted", ns, lvl)
		}
	} else {
		fail("want one Namespace, got %d", len(st.Namespaces))
	}
	for _, md := range []struct{ kind, name, ns string }{
		{"Deployment", dep.Name, dep.Namespace}, {"Service", svc.Name, svc.Namespace},
		{"HorizontalPodAutoscaler", hpa.Name, hpa.Namespace}, {"Job", job.Name, job.Namespace},
	} {
		if md.ns != ns {
			fail("%s/%s is in namespace %q, want %q", md.kind, md.name, md.ns, ns)
		}
	}

	// --- server Deployment ---
	pod := &dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		return append(errs, fmt.Errorf("Deployment %s: want one container, got %d", dep.Name, len(pod.Containers)))
	}
	c := &pod.Containers[0]
	if dep.Spec.Replicas != nil {
		fail("Deployment %s sets replicas %d: the HPA owns the count and every apply would reset it", dep.Name, *dep.Spec.Replicas)
	}
	if dep.Spec.Selector == nil || !subset(dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		fail("Deployment %s: selector does not match its pod template labels", dep.Name)
	}
	opts, err := serveContainer(t, c)
	if err != nil {
		fail("Deployment %s: %v", dep.Name, err)
		return errs
	}
	*serveOut = opts
	_, listenPort, _ := strings.Cut(opts.Listen, ":")
	port, ok := containerPort(c, intstr.FromString(listenPort))
	if !ok {
		fail("Deployment %s: kaload serve listens on %s but the container declares no such port", dep.Name, opts.Listen)
	}
	grpcPort := int32(0)
	if opts.GRPCListen != "" {
		_, gp, _ := strings.Cut(opts.GRPCListen, ":")
		if grpcPort, ok = containerPort(c, intstr.FromString(gp)); !ok {
			fail("Deployment %s: kaload serve serves gRPC on %s but the container declares no such port", dep.Name, opts.GRPCListen)
		}
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if g := p.probe; p.name == "readinessProbe" && g != nil && g.GRPC != nil {
			// The gRPC variant: grpc.health.v1 on the gRPC port.
			if grpcPort == 0 || g.GRPC.Port != grpcPort {
				fail("Deployment %s: gRPC readinessProbe on port %d, but kaload serve serves gRPC on %q", dep.Name, g.GRPC.Port, opts.GRPCListen)
			}
			continue
		}
		if p.probe == nil || p.probe.HTTPGet == nil {
			fail("Deployment %s: %s must be an httpGet probe", dep.Name, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			fail("Deployment %s: %s path %q, want %q", dep.Name, p.name, p.probe.HTTPGet.Path, p.path)
		}
		if pp, ok := containerPort(c, p.probe.HTTPGet.Port); !ok || pp != port {
			fail("Deployment %s: %s port %s is not the port kaload serve listens on (%d)", dep.Name, p.name, p.probe.HTTPGet.Port.String(), port)
		}
	}
	if err := checkProbePaths(opts.Addr); err != nil {
		fail("Deployment %s: %v", dep.Name, err)
	}
	ann := dep.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(int(port)) {
		fail("Deployment %s: Prometheus annotations %v do not point at /metrics on port %d", dep.Name, ann, port)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		fail("Deployment %s: container needs cpu and memory requests (the HPA measures utilization against them)", dep.Name)
	}
	// Shutdown: the preStop pause, then --shutdown-grace to drain, must fit in
	// the grace period, or the kubelet kills a pod that is still draining.
	var preStop int64
	if lc := c.Lifecycle; lc == nil || lc.PreStop == nil || lc.PreStop.Sleep == nil {
		fail("Deployment %s: want a preStop sleep action (the image has no shell, so exec cannot pause)", dep.Name)
	} else {
		preStop = lc.PreStop.Sleep.Seconds
	}
	grace := int64(30) // the API default
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	// The drain delay comes before the shutdown grace (WebSockets close
	// spread over it).
	if need := time.Duration(preStop)*time.Second + opts.DrainDelay + opts.ShutdownGrace; time.Duration(grace)*time.Second <= need {
		fail("Deployment %s: terminationGracePeriodSeconds %d must exceed preStop %ds + kaload serve's drain delay %v + shutdown grace %v",
			dep.Name, grace, preStop, opts.DrainDelay, opts.ShutdownGrace)
	}

	// --- Service ---
	if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
		fail("Service %s: type %s, want ClusterIP", svc.Name, svc.Spec.Type)
	}
	if len(svc.Spec.Selector) == 0 || !subset(svc.Spec.Selector, dep.Spec.Template.Labels) {
		fail("Service %s: selector %v does not select the Deployment's pods %v", svc.Name, svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	svcPort, svcGRPCPort := int32(0), int32(0)
	if len(svc.Spec.Ports) == 2 && svc.Spec.Ports[1].Name == "grpc" {
		gp := svc.Spec.Ports[1]
		if p, ok := containerPort(c, gp.TargetPort); !ok || p != grpcPort || grpcPort == 0 {
			fail("Service %s: port grpc targets %s, not kaload serve's gRPC port (%q)", svc.Name, gp.TargetPort.String(), opts.GRPCListen)
		}
		svcGRPCPort = gp.Port
	}
	if len(svc.Spec.Ports) != 1 && svcGRPCPort == 0 {
		fail("Service %s: want one port (and a second named grpc)", svc.Name)
	} else {
		svcPort = svc.Spec.Ports[0].Port
		tp := svc.Spec.Ports[0].TargetPort
		if tp.IntVal == 0 && tp.StrVal == "" {
			tp = intstr.FromInt32(svcPort)
		}
		if p, ok := containerPort(c, tp); !ok || p != port {
			fail("Service %s: targetPort %s is not kaload serve's port %d", svc.Name, tp.String(), port)
		}
	}

	// --- HPA ---
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != dep.Name {
		fail("HPA %s targets %s %s/%s, want apps/v1 Deployment/%s", hpa.Name, ref.APIVersion, ref.Kind, ref.Name, dep.Name)
	}
	if b := hpa.Spec.Behavior; b == nil || b.ScaleUp == nil || b.ScaleDown == nil {
		fail("HPA %s: want an explicit behavior with scaleUp and scaleDown", hpa.Name)
	}
	cpu := false
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
			cpu = true
		}
	}
	if !cpu {
		fail("HPA %s: want a CPU utilization metric", hpa.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 1 || hpa.Spec.MaxReplicas < 2 {
		fail("HPA %s: the experiment starts from 1 pod and needs room to scale (min %v, max %d)", hpa.Name, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}

	// --- hammer Job ---
	js := &job.Spec
	if js.CompletionMode == nil || *js.CompletionMode != batchv1.IndexedCompletion {
		fail("Job %s: want completionMode Indexed (each hammer labels its run with its index)", job.Name)
	}
	if js.Completions == nil || js.Parallelism == nil || *js.Parallelism != *js.Completions || *js.Completions < 2 {
		fail("Job %s: want parallelism = completions >= 2 (all hammers at once)", job.Name)
		return errs
	}
	if js.Suspend == nil || !*js.Suspend {
		fail("Job %s: want suspend: true, started by hand once the server is ready", job.Name)
	}
	if js.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		fail("Job %s: restartPolicy %q, want Never (a restarted hammer would overwrite its results)", job.Name, js.Template.Spec.RestartPolicy)
	}
	if len(js.Template.Spec.Containers) != 1 {
		return append(errs, fmt.Errorf("Job %s: want one container", job.Name))
	}
	hc := &js.Template.Spec.Containers[0]
	if hc.Image != c.Image {
		fail("Job %s runs image %q, the server %q: one image for both", job.Name, hc.Image, c.Image)
	}
	outputs := map[string]bool{}
	labels := map[string]bool{}
	for i := range *js.Completions {
		fs, err := parseContainerArgs(t, hc, "hammer", map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(int(i))})
		if err != nil {
			fail("Job %s index %d: %v", job.Name, i, err)
			return errs
		}
		url, _ := fs.GetString("url")
		wantURL := fmt.Sprintf("http://%s:%d/", svc.Name, svcPort)
		if strings.HasPrefix(url, "ws://") {
			wantURL = fmt.Sprintf("ws://%s:%d/ws", svc.Name, svcPort) // the WebSocket variant
		}
		if strings.HasPrefix(url, "grpc://") {
			wantURL = fmt.Sprintf("grpc://%s:%d", svc.Name, svcGRPCPort) // the gRPC variant
		}
		if url != wantURL {
			fail("Job %s: --url %q, want the Service %q", job.Name, url, wantURL)
		}
		out, _ := fs.GetString("output")
		label, _ := fs.GetString("label")
		outputs[out], labels[label] = true, true
		if out == "" || out == "-" {
			fail("Job %s: want --output to a file on the results volume, got %q", job.Name, out)
		} else if claim := volumeClaimFor(&js.Template.Spec, hc, out); claim == "" {
			fail("Job %s: --output %s is not on a PersistentVolumeClaim mount (the root filesystem is read-only and an emptyDir dies with the pod)", job.Name, out)
		} else if !slices.ContainsFunc(st.PVCs, func(p corev1.PersistentVolumeClaim) bool { return p.Name == claim }) {
			fail("Job %s: claim %s is not part of the stack", job.Name, claim)
		}
	}
	// Metrics: --metrics-addr on a declared port, the annotations on it.
	if fs, err := parseContainerArgs(t, hc, "hammer", map[string]string{"JOB_COMPLETION_INDEX": "0"}); err == nil {
		addr, _ := fs.GetString("metrics-addr")
		_, portText, _ := strings.Cut(addr, ":")
		mp, perr := strconv.Atoi(portText)
		ann := js.Template.Annotations
		switch {
		case addr == "" || perr != nil:
			fail("Job %s: want --metrics-addr=:PORT for Prometheus, got %q", job.Name, addr)
		case !slices.ContainsFunc(hc.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == int32(mp) && p.Name == "metrics" }):
			fail("Job %s: --metrics-addr port %d is not a container port named metrics", job.Name, mp)
		case ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != portText:
			fail("Job %s: Prometheus annotations %v do not point at /metrics on --metrics-addr's port %s", job.Name, ann, portText)
		}
	}
	if n := int(*js.Completions); len(outputs) != n || len(labels) != n {
		fail("Job %s: %d completions write %d distinct files with %d distinct labels; want one each (use $(JOB_COMPLETION_INDEX))",
			job.Name, n, len(outputs), len(labels))
	}

	// --- every pod: the restricted Pod Security Standard, and then some ---
	for _, p := range []struct {
		what string
		spec *corev1.PodSpec
	}{{"Deployment " + dep.Name, pod}, {"Job " + job.Name, &js.Template.Spec}} {
		for _, err := range checkPodSecurity(p.spec) {
			fail("%s: %v", p.what, err)
		}
	}
	return errs
}

// checkReportJob checks the report Job against the stack's hammer Job: it
// reads the directory every hammer writes to, from the same claim, with the
// real `kaload report` flags, and ends as a Job (Complete or Failed, never
// retried).
func checkReportJob(t *testing.T, st *stack, rj *batchv1.Job) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	job := &st.Jobs[0]
	hc := &job.Spec.Template.Spec.Containers[0]
	rp := &rj.Spec.Template.Spec
	if rj.Namespace != job.Namespace {
		fail("Job %s is in namespace %q, the hammers in %q", rj.Name, rj.Namespace, job.Namespace)
	}
	if rp.RestartPolicy != corev1.RestartPolicyNever {
		fail("Job %s: restartPolicy %q, want Never", rj.Name, rp.RestartPolicy)
	}
	if rj.Spec.BackoffLimit == nil || *rj.Spec.BackoffLimit != 0 {
		fail("Job %s: want backoffLimit 0 (the exit code is the verdict; a retry says the same)", rj.Name)
	}
	if rj.Spec.Suspend != nil && *rj.Spec.Suspend {
		fail("Job %s is suspended: it should run once applied", rj.Name)
	}
	if len(rp.Containers) != 1 {
		return append(errs, fmt.Errorf("Job %s: want one container", rj.Name))
	}
	rc := &rp.Containers[0]
	if rc.Image != hc.Image {
		fail("Job %s runs image %q, the hammers %q", rj.Name, rc.Image, hc.Image)
	}
	fs, err := parseContainerArgs(t, rc, "report", nil)
	if err != nil {
		return append(errs, fmt.Errorf("Job %s: %v", rj.Name, err))
	}
	reads := fs.Args()
	for i := range *job.Spec.Completions {
		hfs, err := parseContainerArgs(t, hc, "hammer", map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(int(i))})
		if err != nil {
			return append(errs, err)
		}
		out, _ := hfs.GetString("output")
		if !slices.Contains(reads, out) && !slices.Contains(reads, filepath.Dir(out)) {
			fail("Job %s reads %q, which holds neither hammer %d's file %s nor its directory", rj.Name, reads, i, out)
		}
		jobClaim := volumeClaimFor(&job.Spec.Template.Spec, hc, out)
		if got := volumeClaimFor(rp, rc, out); got == "" || got != jobClaim {
			fail("Job %s: %s is not on the hammers' claim %q (got %q)", rj.Name, out, jobClaim, got)
		}
	}
	for _, err := range checkPodSecurity(rp) {
		fail("Job %s: %v", rj.Name, err)
	}
	return errs
}

func TestManifestReportPodMatchesJob(t *testing.T) {
	st := render(t, deployDir)
	rs := render(t, deployDir+"/report")
	if len(rs.Jobs) != 1 || len(rs.raw) != 1 {
		t.Fatalf("report/ renders %d objects, want the one Pod", len(rs.raw))
	}
	for _, err := range checkReportJob(t, st, &rs.Jobs[0]) {
		t.Error(err)
	}
}

// TestManifestChecksCatchMistakes breaks one thing at a time in the rendered
// stack and expects the checks to name it: the invariants can fail.
func TestManifestChecksCatchMistakes(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(st *stack)
		wantErr string
	}{
		{"readiness path", func(st *stack) {
			st.Deployments[0].Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
		}, `readinessProbe path "/ready"`},
		{"liveness port", func(st *stack) {
			st.Deployments[0].Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromInt32(9090)
		}, "livenessProbe port 9090"},
		{"env name kaload does not read", func(st *stack) {
			c := &st.Deployments[0].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "KALOAD_MAX_REQUEST", Value: "5"})
		}, "KALOAD_MAX_REQUEST is not a variable kaload serve reads"},
		{"bad env value", func(st *stack) {
			c := &st.Deployments[0].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "KALOAD_SHUTDOWN_GRACE", Value: "20"})
		}, "KALOAD_SHUTDOWN_GRACE"},
		{"grace too short", func(st *stack) {
			g := int64(20)
			st.Deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds 20 must exceed"},
		{"hpa target", func(st *stack) { st.HPAs[0].Spec.ScaleTargetRef.Name = "web" }, "targets apps/v1 Deployment/web"},
		{"hpa behavior", func(st *stack) { st.HPAs[0].Spec.Behavior = nil }, "explicit behavior"},
		{"replicas", func(st *stack) { r := int32(3); st.Deployments[0].Spec.Replicas = &r }, "sets replicas 3"},
		{"service selector", func(st *stack) { st.Services[0].Spec.Selector = map[string]string{"app": "x"} }, "does not select"},
		{"job not indexed", func(st *stack) {
			m := batchv1.NonIndexedCompletion
			st.Jobs[0].Spec.CompletionMode = &m
		}, "completionMode Indexed"},
		{"hammer flag typo", func(st *stack) {
			c := &st.Jobs[0].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--conections=8")
		}, "unknown flag: --conections"},
		{"hammer bad duration", func(st *stack) {
			c := &st.Jobs[0].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--duration=5")
		}, "--duration"},
		{"same file for every index", func(st *stack) {
			c := &st.Jobs[0].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--output=/results/hammer.kld")
		}, "distinct files"},
		{"undefined variable", func(st *stack) {
			c := &st.Jobs[0].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--label=$(POD_INDEX)")
		}, "$(POD_INDEX)"},
		{"output on root fs", func(st *stack) {
			c := &st.Jobs[0].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--output=/tmp/hammer-$(JOB_COMPLETION_INDEX).kld")
		}, "not on a PersistentVolumeClaim mount"},
		{"privilege escalation", func(st *stack) {
			f := true
			st.Jobs[0].Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &f
		}, "allowPrivilegeEscalation"},
		{"capabilities", func(st *stack) {
			st.Deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Drop = nil
		}, "drop ALL"},
	}
	var opts *served
	if errs := checkStack(t, render(t, deployDir), &opts); len(errs) != 0 {
		t.Fatalf("the unbroken stack fails: %v", errs)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := render(t, deployDir)
			tt.mutate(st)
			errs := checkStack(t, st, &opts)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tt.wantErr) }) {
				t.Errorf("checks returned %v, want an error containing %q", errs, tt.wantErr)
			}
		})
	}

	// The report must read where the hammers write.
	st, rs := render(t, deployDir), render(t, deployDir+"/report")
	rj := &rs.Jobs[0]
	rj.Spec.Template.Spec.Containers[0].Args = []string{"report", "/results/hammer-0.kld", "/results/hammer-1.kld"}
	if errs := checkReportJob(t, st, rj); len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), "hammer 2's file") {
		t.Errorf("a report missing a hammer's file: checks returned %v", errs)
	}
	rj.Spec.BackoffLimit = nil
	if errs := checkReportJob(t, st, rj); !strings.Contains(errors.Join(errs...).Error(), "backoffLimit 0") {
		t.Errorf("a retried report: checks returned %v", errs)
	}
}

func TestDecodeObjectIsStrict(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        imagePullPolicyy: Always\n",
			`unknown field "imagePullPolicyy"`},
		{"wrong type", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {parallelism: three}\n", "parallelism"},
		{"old api version", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n", `unexpected object kind "autoscaling/v1 HorizontalPodAutoscaler"`},
		{"field of another version", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec: {targetCPUUtilizationPercentage: 50}\n", `unknown field "targetCPUUtilizationPercentage"`},
		{"ok", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ClusterIP}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := yaml.YAMLToJSON([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = new(stack).decodeObject(js)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// served is what a container's `kaload serve` runs with, read from the
// running binary's startup line.
type served struct {
	Listen        string // as configured (flag, variable or default)
	GRPCListen    string // --grpc-listen as configured; "" = no gRPC
	Addr          string // where the test instance listens: 127.0.0.1:port
	MaxRequests   int
	MaxConnAge    time.Duration
	DrainDelay    time.Duration
	ShutdownGrace time.Duration
}

// cmdHelp is what `kaload VERB --help` says about the command's flags.
type cmdHelp struct {
	long     string            // the help text
	defaults map[string]string // flag -> default value, unquoted
	bools    map[string]bool   // flags without a value
	short    map[string]string // flag -> one-letter shorthand
}

var helpCache sync.Map // verb -> *cmdHelp

// helpFor runs `kaload VERB --help` once and reads its flag table.
func helpFor(t *testing.T, verb string) *cmdHelp {
	t.Helper()
	if h, ok := helpCache.Load(verb); ok {
		return h.(*cmdHelp)
	}
	out, err := exec.Command(kaloadBin, verb, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("kaload %s --help: %v\n%s", verb, err, out)
	}
	h := &cmdHelp{long: string(out), defaults: map[string]string{}, bools: map[string]bool{}, short: map[string]string{}}
	line := regexp.MustCompile(`^\s+(?:-(\w), )?--([\w-]+)(?: (\w+))?\s{2,}(.*)$`)
	for l := range strings.SplitSeq(string(out), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || m[2] == "help" {
			continue
		}
		name := m[2]
		h.short[name] = m[1]
		h.bools[name] = m[3] == ""
		if d := regexp.MustCompile(`\(default (.*)\)$`).FindStringSubmatch(m[4]); d != nil {
			h.defaults[name] = strings.Trim(d[1], `"`)
		}
	}
	if len(h.bools) == 0 {
		t.Fatalf("kaload %s --help lists no flags:\n%s", verb, out)
	}
	helpCache.Store(verb, h)
	return h
}

func serveHelp(t *testing.T) *cmdHelp { return helpFor(t, "serve") }

// flagSet mirrors the command's flags in a pflag.FlagSet, to read the values
// of a command line the binary accepted.
func (h *cmdHelp) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("kaload", pflag.ContinueOnError)
	for name, isBool := range h.bools {
		if isBool {
			fs.BoolP(name, h.short[name], false, "")
		} else {
			fs.StringP(name, h.short[name], h.defaults[name], "")
		}
	}
	return fs
}

// serveEnv lists every variable kaload serve reads: KALOAD_<FLAG> for each
// flag and the aliases its help names ("MAX_REQUEST also sets --max-requests").
func serveEnv(t *testing.T) map[string]bool {
	h := serveHelp(t)
	known := map[string]bool{}
	for name := range h.bools {
		known["KALOAD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = true
	}
	for _, m := range regexp.MustCompile(`\b([A-Z][A-Z0-9_]+) (?:also )?sets\s+--[\w-]+`).FindAllStringSubmatch(h.long, -1) {
		known[m[1]] = true
	}
	return known
}

// serveContainer runs the container's `kaload serve` command line and env
// with the real binary (listening on loopback instead of its port) and
// returns what it runs with; the server stops when the test ends.
func serveContainer(t *testing.T, c *corev1.Container) (*served, error) {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != "serve" || len(c.Command) != 0 {
		return nil, fmt.Errorf("container %s: want args [serve ...] under the image's ENTRYPOINT, got command %q args %q", c.Name, c.Command, c.Args)
	}
	known := serveEnv(t)
	env := map[string]string{}
	var environ []string
	for _, e := range c.Env {
		if !known[e.Name] {
			return nil, fmt.Errorf("container %s: env %s is not a variable kaload serve reads (known: %s)", c.Name, e.Name, strings.Join(slices.Sorted(maps.Keys(known)), " "))
		}
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("container %s: env %s: only fieldRef sources are understood here", c.Name, e.Name)
			}
			v = "downward-" + e.ValueFrom.FieldRef.FieldPath
		}
		env[e.Name] = expandK8sVars(v, env)
		environ = append(environ, e.Name+"="+env[e.Name])
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = expandK8sVars(a, env)
	}
	fs := serveHelp(t).flagSet()
	if err := fs.Parse(args[1:]); err != nil {
		return nil, fmt.Errorf("container %s: kaload %q: %w", c.Name, args, err)
	}
	listen, _ := fs.GetString("listen")
	if v := env["KALOAD_LISTEN"]; v != "" && !fs.Changed("listen") {
		listen = v
	}
	grpcListen, _ := fs.GetString("grpc-listen")
	if v := env["KALOAD_GRPC_LISTEN"]; v != "" && !fs.Changed("grpc-listen") {
		grpcListen = v
	}
	// A later flag wins: the test instance listens on loopback.
	testArgs := append(args, "--listen=127.0.0.1:0")
	if grpcListen != "" {
		testArgs = append(testArgs, "--grpc-listen=127.0.0.1:0")
	}
	addr, err := startServe(t, environ, testArgs)
	if err != nil {
		return nil, fmt.Errorf("container %s: kaload %q rejects its configuration: %w", c.Name, args, err)
	}
	return &served{Listen: listen, GRPCListen: grpcListen, Addr: addr.addr, MaxRequests: addr.maxRequests, MaxConnAge: addr.maxConnAge,
		DrainDelay: addr.drainDelay, ShutdownGrace: addr.shutdownGrace}, nil
}

// startup is what kaload serve's first stderr line says.
type startup struct {
	addr          string
	maxRequests   int
	maxConnAge    time.Duration // 0 when the line does not say
	drainDelay    time.Duration // 0 when the line does not say
	shutdownGrace time.Duration
}

// startServe starts the kaload binary with args and exactly environ, waits
// for its startup line and kills it when the test ends.
func startServe(t *testing.T, environ, args []string) (startup, error) {
	t.Helper()
	cmd := exec.Command(kaloadBin, args...)
	cmd.Env = environ
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return startup{}, err
	}
	if err := cmd.Start(); err != nil {
		return startup{}, err
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() { // reads stderr to its end, so the server never blocks on it
		sc := bufio.NewScanner(stderr)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
				continue
			}
		}
		if first {
			close(lines)
		}
	}()
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			cmd.Wait()
			return startup{}, fmt.Errorf("exited %v", cmd.ProcessState)
		}
		line = l
	case <-time.After(30 * time.Second):
		return startup{}, errors.New("no startup line within 30s")
	}
	m := regexp.MustCompile(`listening on (\S+) .* max-requests=(\d+|unlimited).* shutdown-grace=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		return startup{}, fmt.Errorf("%s", strings.TrimPrefix(line, "kaload: "))
	}
	var s startup
	s.addr = m[1]
	if m[2] != "unlimited" {
		s.maxRequests, _ = strconv.Atoi(m[2])
	}
	for _, f := range []struct {
		re  string
		dst *time.Duration
	}{{`drain-delay=([0-9.a-zµ]+)`, &s.drainDelay}, {`max-conn-age=([0-9.a-zµ]+)`, &s.maxConnAge}} {
		if m := regexp.MustCompile(f.re).FindStringSubmatch(line); m != nil {
			if *f.dst, err = time.ParseDuration(m[1]); err != nil {
				return s, fmt.Errorf("startup line %q: %w", line, err)
			}
		}
	}
	s.shutdownGrace, err = time.ParseDuration(m[3])
	return s, err
}

// checkProbePaths asks the running kaload server for the probe and scrape paths.
func checkProbePaths(addr string) error {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			return fmt.Errorf("GET %s on kaload serve: %w", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s on kaload serve answered %d", path, resp.StatusCode)
		}
	}
	return nil
}

// parseContainerArgs checks a container's args with the kaload binary, as
// the image's ENTRYPOINT kaload would get them after the kubelet's $(VAR)
// expansion with vars plus the container's env (`kaload ARGS --help` parses
// every flag and runs nothing), and returns their values.
func parseContainerArgs(t *testing.T, c *corev1.Container, verb string, vars map[string]string) (*pflag.FlagSet, error) {
	if len(c.Command) != 0 {
		return nil, fmt.Errorf("container %s sets command %q; want args under the image's ENTRYPOINT kaload", c.Name, c.Command)
	}
	env := maps.Clone(vars)
	if env == nil {
		env = map[string]string{}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = expandK8sVars(a, env)
		if m := regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`).FindString(args[i]); m != "" {
			return nil, fmt.Errorf("container %s: arg %q refers to %s, which is not defined: the kubelet would pass it literally", c.Name, a, m)
		}
	}
	if len(args) == 0 || args[0] != verb {
		return nil, fmt.Errorf("container %s: args %q run kaload %s, want kaload %s", c.Name, args, strings.Join(args[:min(1, len(args))], ""), verb)
	}
	if out, err := exec.Command(kaloadBin, append(slices.Clone(args), "--help")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("container %s: kaload %s: %s", c.Name, verb, strings.TrimSpace(strings.TrimPrefix(string(out), "kaload: ")))
	}
	fs := helpFor(t, verb).flagSet()
	if err := fs.Parse(args[1:]); err != nil {
		return nil, fmt.Errorf("container %s: kaload %s: %w", c.Name, verb, err)
	}
	return fs, nil
}

// expandK8sVars does what the kubelet does to command, args and env values:
// $(NAME) becomes NAME's value when defined and stays as written otherwise;
// $$ escapes a dollar.
func expandK8sVars(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// volumeClaimFor returns the claim behind the mount that holds path in c, or "".
func volumeClaimFor(spec *corev1.PodSpec, c *corev1.Container, path string) string {
	best := -1
	var claim string
	for _, m := range c.VolumeMounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		if !strings.HasPrefix(path, mp+"/") || len(mp) <= best {
			continue
		}
		best, claim = len(mp), ""
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	return claim
}

// containerPort resolves a named or numbered port against c's ports.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) ||
			(p.Type == intstr.Int && cp.ContainerPort == p.IntVal) ||
			(p.Type == intstr.String && strconv.Itoa(int(cp.ContainerPort)) == p.StrVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkPodSecurity checks the restricted Pod Security Standard's container
// rules that matter here, plus a read-only root filesystem.
func checkPodSecurity(spec *corev1.PodSpec) []error {
	var errs []error
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			errs = append(errs, fmt.Errorf("volume %s is a hostPath", v.Name))
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		errs = append(errs, errors.New("uses host namespaces"))
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		errs = append(errs, errors.New("mounts a service account token kaload never uses"))
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := c.SecurityContext
		if sc == nil {
			errs = append(errs, fmt.Errorf("container %s has no securityContext", c.Name))
			continue
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			errs = append(errs, fmt.Errorf("container %s: want runAsNonRoot", c.Name))
		}
		if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsUser == nil && psc.RunAsUser != nil && *psc.RunAsUser == 0) {
			errs = append(errs, fmt.Errorf("container %s runs as uid 0", c.Name))
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			errs = append(errs, fmt.Errorf("container %s: want allowPrivilegeEscalation: false", c.Name))
		}
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, fmt.Errorf("container %s is privileged", c.Name))
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			errs = append(errs, fmt.Errorf("container %s: want readOnlyRootFilesystem: true", c.Name))
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			errs = append(errs, fmt.Errorf("container %s: want capabilities drop ALL and add none", c.Name))
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			errs = append(errs, fmt.Errorf("container %s: want seccompProfile RuntimeDefault", c.Name))
		}
	}
	return errs
}

func subset(sub, super map[string]string) bool {
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

// runKaload runs the kaload binary with args.
func runKaload(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, kaloadBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code, errb = -1, *bytes.NewBufferString(err.Error())
	}
	return code, out.String(), errb.String()
}

// TestJobHammersMergeInOneReport runs the Job's hammer command, as rendered,
// once per completion index against a real kaload server on loopback (only
// the URL, the duration and the results directory changed), then the report
// Job's command over their directory: one merged run, each hammer's label kept.
func TestJobHammersMergeInOneReport(t *testing.T) {
	st, rs := render(t, deployDir), render(t, deployDir+"/report")
	job, rj := &st.Jobs[0], &rs.Jobs[0]
	hc, rc := &job.Spec.Template.Spec.Containers[0], &rj.Spec.Template.Spec.Containers[0]
	srv, err := startServe(t, nil, []string{"serve", "--listen=127.0.0.1:0", "--hostname=pod-a", "--max-requests=5"})
	if err != nil {
		t.Fatalf("kaload serve: %v", err)
	}
	url := "http://" + srv.addr + "/"
	dir := t.TempDir()
	mount := hc.VolumeMounts[0].MountPath

	n := int(*job.Spec.Completions)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type res struct {
		i              int
		code           int
		stdout, stderr string
	}
	done := make(chan res, n)
	for i := range n {
		env := map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(i)}
		var args []string
		for _, a := range hc.Args {
			a = expandK8sVars(a, env)
			a = strings.Replace(a, mount+"/", dir+"/", 1)
			args = append(args, a)
		}
		// Later flags win: a short run against the loopback server.
		args = append(args, "--url="+url, "--duration=1s", "--quiet", "--format=json", "--metrics-addr=127.0.0.1:0") // one port each
		go func() {
			code, out, errOut := runKaload(ctx, args...)
			done <- res{i, code, out, errOut}
		}()
	}
	for range n {
		r := <-done
		if r.code != 0 {
			t.Errorf("hammer %d exited %d: %s", r.i, r.code, r.stderr)
		}
	}
	if t.Failed() {
		return
	}

	args := []string{}
	for _, a := range rc.Args {
		if a == mount {
			a = dir
		}
		args = append(args, strings.Replace(a, mount+"/", dir+"/", 1))
	}
	args = append(args, "--format=json")
	code, out, errOut := runKaload(ctx, args...)
	if code != 0 {
		t.Fatalf("kaload %q exited %d: %s", args, code, errOut)
	}
	// The JSON contract (docs/design.md), as a script reading it sees it.
	var s struct {
		Requests uint64 `json:"requests"`
		Runs     []struct {
			Label    string `json:"label"`
			Requests uint64 `json:"requests"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	var labels []string
	var sum uint64
	for _, r := range s.Runs {
		labels = append(labels, r.Label)
		sum += r.Requests
		if r.Requests == 0 {
			t.Errorf("run %q has no requests", r.Label)
		}
	}
	slices.Sort(labels)
	want := []string{}
	for i := range n {
		want = append(want, "hammer-"+strconv.Itoa(i))
	}
	if !slices.Equal(labels, want) {
		t.Errorf("merged report runs %q, want one per hammer %q", labels, want)
	}
	if s.Requests == 0 || sum != s.Requests {
		t.Errorf("merged report counts %d requests, its runs %d", s.Requests, sum)
	}
}

func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":8080,"targetPort":"http"}]}}`))
	f.Add([]byte(`{"apiVersion":"batch/v1","kind":"Job","spec":{"completionMode":"Indexed","parallelism":3}}`))
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":"x"}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		st := new(stack)
		if err := st.decodeObject(js); err != nil {
			return
		}
		// What decoded strictly encodes and decodes strictly again.
		var again stack
		for _, m := range st.raw {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := again.decodeObject(b); err != nil {
				t.Fatalf("re-decoding %s: %v", b, err)
			}
		}
	})
}

func FuzzExpandK8sVars(f *testing.F) {
	for _, s := range []string{"hammer-$(JOB_COMPLETION_INDEX)", "$$(X)", "$(", "a$", "$(UNDEF)x$(A)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		env := map[string]string{"A": "1", "JOB_COMPLETION_INDEX": "7"}
		got := expandK8sVars(s, env)
		// With nothing defined, text without $$ comes back unchanged.
		if !strings.Contains(s, "$$") && expandK8sVars(s, nil) != s {
			t.Fatalf("expand(%q) with no vars = %q", s, expandK8sVars(s, nil))
		}
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("expand(%q) = %q", s, got)
		}
	})
}

// TestManifestOverlaysDifferOnlyInRecycling: the two halves of the experiment
// must be the same experiment but for MAX_REQUEST, or the comparison says
// nothing about recycling.
func TestManifestOverlaysDifferOnlyInRecycling(t *testing.T) {
	strip := func(st *stack) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, m := range st.raw {
			b, _ := json.Marshal(m)
			var c map[string]any
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			if c["kind"] == "Deployment" {
				spec := c["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
				for _, ci := range spec["containers"].([]any) {
					ctr := ci.(map[string]any)
					var env []any
					found := 0
					for _, e := range ctr["env"].([]any) {
						if e.(map[string]any)["name"] == "MAX_REQUEST" {
							found++
							continue
						}
						env = append(env, e)
					}
					if found != 1 {
						t.Errorf("%s: MAX_REQUEST set %d times in the Deployment, want once", st.Dir, found)
					}
					ctr["env"] = env
				}
			}
			out = append(out, c)
		}
		return out
	}
	base := strip(render(t, deployDir))
	for _, dir := range []string{deployDir + "/overlays/no-recycling", deployDir + "/overlays/recycling"} {
		if got := strip(render(t, dir)); !reflect.DeepEqual(got, base) {
			gj, _ := json.MarshalIndent(got, "", " ")
			bj, _ := json.MarshalIndent(base, "", " ")
			t.Errorf("%s differs from %s in more than MAX_REQUEST:\n%s\nvs\n%s", dir, deployDir, gj, bj)
		}
	}
}
