package deploy

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestManifestWatchRBAC: the hammer's ServiceAccount gets exactly list and
// watch of what kaload hammer --watch reads (internal/kubewatch), in the
// experiment's namespace, and nothing else. The integration test
// (cmd/kaload TestHammerWatchAPIServer) proves these verbs suffice against
// a real kube-apiserver.
func TestManifestWatchRBAC(t *testing.T) {
	abs, err := filepath.Abs(deployDir + "/hammer-watch")
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatal(err)
	}
	var roles []rbacv1.Role
	var bindings []rbacv1.RoleBinding
	var accounts []string
	for _, r := range m.Resources() {
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetNamespace() != "kaload" {
			t.Errorf("%s/%s in namespace %q, want kaload", r.GetKind(), r.GetName(), r.GetNamespace())
		}
		switch r.GetKind() {
		case "ServiceAccount":
			accounts = append(accounts, r.GetName())
		case "Role":
			var role rbacv1.Role
			if err := yaml.UnmarshalStrict(js, &role); err != nil {
				t.Fatal(err)
			}
			roles = append(roles, role)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict(js, &b); err != nil {
				t.Fatal(err)
			}
			bindings = append(bindings, b)
		default:
			t.Errorf("unexpected %s/%s: the watch needs a ServiceAccount, a Role and its binding only", r.GetKind(), r.GetName())
		}
	}
	if len(roles) != 1 || len(bindings) != 1 || !slices.Equal(accounts, []string{"kaload-hammer"}) {
		t.Fatalf("roles %d, bindings %d, service accounts %v", len(roles), len(bindings), accounts)
	}
	want := map[string]bool{"/pods": true, "discovery.k8s.io/endpointslices": true, "autoscaling/horizontalpodautoscalers": true,
		"apps/deployments": true, "apps/replicasets": true}
	got := map[string]bool{}
	for _, rule := range roles[0].Rules {
		if !slices.Equal(rule.Verbs, []string{"list", "watch"}) || len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
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
	b := bindings[0]
	if b.RoleRef.Kind != "Role" || b.RoleRef.Name != roles[0].Name || len(b.Subjects) != 1 ||
		b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != "kaload-hammer" || b.Subjects[0].Namespace != "kaload" {
		t.Errorf("binding %+v does not give the Role to the hammer's ServiceAccount", b)
	}
}
