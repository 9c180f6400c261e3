package deploy

import "testing"

// TestGRPCOverlay: the gRPC variant recycles RPC connections (count and
// age), the pods become ready by the gRPC health check on the named grpc
// port, and the hammers call the Service's grpc port.
func TestGRPCOverlay(t *testing.T) {
	st := render(t, deployDir+"/overlays/grpc")
	var opts *served
	for _, err := range checkStack(t, st, &opts) {
		t.Error(err)
	}
	if t.Failed() || opts == nil {
		return
	}
	if opts.GRPCListen == "" || opts.MaxRequests <= 0 || opts.MaxConnAge <= 0 {
		t.Errorf("kaload serve: grpc-listen %q, max-requests %d, max-conn-age %v; want gRPC recycled by count and age",
			opts.GRPCListen, opts.MaxRequests, opts.MaxConnAge)
	}
	c := &st.Deployments[0].Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil {
		t.Errorf("readinessProbe %+v, want a gRPC health probe", c.ReadinessProbe)
	}
	svc := &st.Services[0]
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[1].Name != "grpc" {
		t.Errorf("Service %s ports %+v, want http and grpc", svc.Name, svc.Spec.Ports)
	}
	fs, err := parseContainerArgs(t, &st.Jobs[0].Spec.Template.Spec.Containers[0], "hammer", map[string]string{"JOB_COMPLETION_INDEX": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if url, _ := fs.GetString("url"); url != "grpc://kaload:9090" {
		t.Errorf("hammer --url %q, want grpc://kaload:9090", url)
	}
}
