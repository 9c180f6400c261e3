package deploy

import (
	"strconv"
	"testing"
	"time"
)

// TestWebSocketOverlay: the WebSocket variant recycles sockets by age, its
// hammers hold idle sockets on the Service's /ws, and the Ingress in front
// neither cuts idle sockets before the pings nor routes elsewhere.
func TestWebSocketOverlay(t *testing.T) {
	st := render(t, deployDir+"/overlays/websocket")
	var opts *served
	for _, err := range checkStack(t, st, &opts) {
		t.Error(err)
	}
	if t.Failed() || opts == nil {
		return
	}
	if opts.MaxConnAge <= 0 {
		t.Errorf("kaload serve runs without --max-conn-age: sockets would never move to new pods")
	}
	if opts.DrainDelay <= 0 {
		t.Errorf("kaload serve runs without --drain-delay: every socket of a stopping pod would reconnect at once")
	}
	hc := &st.Jobs[0].Spec.Template.Spec.Containers[0]
	fs, err := parseContainerArgs(t, hc, "hammer", map[string]string{"JOB_COMPLETION_INDEX": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if idle, _ := fs.GetBool("idle"); !idle {
		t.Errorf("the hammers should hold idle sockets (--idle)")
	}
	ping, _ := fs.GetDuration("ping-interval")
	if len(st.Ingresses) != 1 {
		t.Fatalf("want one Ingress, got %d", len(st.Ingresses))
	}
	ing := &st.Ingresses[0]
	svc := &st.Services[0]
	if ing.Namespace != svc.Namespace {
		t.Errorf("Ingress in namespace %q, Service in %q", ing.Namespace, svc.Namespace)
	}
	found := false
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			b := p.Backend.Service
			if p.Path == "/ws" && b != nil && b.Name == svc.Name && (b.Port.Name == svc.Spec.Ports[0].Name || b.Port.Number == svc.Spec.Ports[0].Port) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("Ingress %s routes no /ws path to Service %s's port", ing.Name, svc.Name)
	}
	for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		secs, err := strconv.Atoi(ing.Annotations[a])
		if err != nil {
			t.Errorf("Ingress %s: %s = %q, want seconds", ing.Name, a, ing.Annotations[a])
			continue
		}
		if d := time.Duration(secs) * time.Second; d <= ping || d <= opts.MaxConnAge {
			t.Errorf("Ingress %s: %s %v must exceed the hammer's ping interval %v and the server's max conn age %v, or the proxy ends idle sockets (1006)",
				ing.Name, a, d, ping, opts.MaxConnAge)
		}
	}
}
