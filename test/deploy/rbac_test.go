package deploy

import (
	"maps"
	"testing"
)

// TestManifestWatchRBAC: the hammer's ServiceAccount gets exactly list and
// watch of what kaload hammer --watch reads (internal/kubewatch), in the
// experiment's namespace, and nothing else. The integration test
// (cmd/kaload TestHammerWatchAPIServer) proves these verbs suffice against
// a real kube-apiserver.
func TestManifestWatchRBAC(t *testing.T) {
	st := render(t, deployDir+"/hammer-watch")
	if len(st.raw) != 3 || len(st.ServiceAccounts) != 1 || len(st.Roles) != 1 || len(st.RoleBindings) != 1 {
		t.Fatalf("want one ServiceAccount, Role and RoleBinding, got %d objects", len(st.raw))
	}
	sa, role, b := st.ServiceAccounts[0], st.Roles[0], st.RoleBindings[0]
	for _, ns := range []string{sa.Namespace, role.Namespace, b.Namespace} {
		if ns != "kaload" {
			t.Errorf("an object in namespace %q, want kaload", ns)
		}
	}
	want := map[string]bool{"/pods": true, "discovery.k8s.io/endpointslices": true, "autoscaling/horizontalpodautoscalers": true,
		"apps/deployments": true, "apps/replicasets": true}
	got := map[string]bool{}
	for _, rule := range role.Rules {
		if len(rule.Verbs) != 2 || rule.Verbs[0] != "list" || rule.Verbs[1] != "watch" || len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: want exactly the verbs list and watch", rule)
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				got[g+"/"+res] = true
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("the Role grants %v, want exactly %v", got, want)
	}
	if b.RoleRef.Kind != "Role" || b.RoleRef.Name != role.Name || len(b.Subjects) != 1 ||
		b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa.Name || b.Subjects[0].Namespace != "kaload" {
		t.Errorf("binding %+v does not give the Role to the hammer's ServiceAccount %s", b, sa.Name)
	}
}
