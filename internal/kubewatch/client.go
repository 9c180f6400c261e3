package kubewatch

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClient connects the way kubectl does: an explicit kubeconfig path if
// given, else $KUBECONFIG, else ~/.kube/config, and inside a pod with none
// of those the pod's service account (in-cluster config). namespace "" takes
// the kubeconfig context's namespace (in a pod: the pod's own), else
// "default". It returns the namespace in effect.
func NewClient(kubeconfig, namespace string) (kubernetes.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{}
	overrides.Context.Namespace = namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client configuration: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes namespace: %w", err)
	}
	cfg.UserAgent = "kaload"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, ns, nil
}
