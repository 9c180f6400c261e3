package kubewatch

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Source lists and watches one resource of a namespace: "pods",
// "endpointslices", "horizontalpodautoscalers", "deployments" or
// "replicasets".
type Source interface {
	ListWatch(namespace, resource string) (cache.ListerWatcher, error)
}

// resources are what the watch reads: group version, list type and object type.
var resources = map[string]struct {
	gv   schema.GroupVersion
	list func() runtime.Object
	obj  runtime.Object
}{
	"pods":                     {corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.PodList{} }, &corev1.Pod{}},
	"endpointslices":           {discoveryv1.SchemeGroupVersion, func() runtime.Object { return &discoveryv1.EndpointSliceList{} }, &discoveryv1.EndpointSlice{}},
	"horizontalpodautoscalers": {autoscalingv2.SchemeGroupVersion, func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} }, &autoscalingv2.HorizontalPodAutoscaler{}},
	"deployments":              {appsv1.SchemeGroupVersion, func() runtime.Object { return &appsv1.DeploymentList{} }, &appsv1.Deployment{}},
	"replicasets":              {appsv1.SchemeGroupVersion, func() runtime.Object { return &appsv1.ReplicaSetList{} }, &appsv1.ReplicaSet{}},
}

// restSource talks to the API server with a REST client per API group and
// a scheme of just the four groups read: client-go's clientset would link
// every API group into kaload (about 50 MB).
type restSource struct {
	clients map[schema.GroupVersion]*rest.RESTClient
	params  runtime.ParameterCodec
}

// NewClient connects the way kubectl does: an explicit kubeconfig path if
// given, else $KUBECONFIG, else ~/.kube/config, and inside a pod with none
// of those the pod's service account (in-cluster config). namespace "" takes
// the kubeconfig context's namespace (in a pod: the pod's own), else
// "default". It returns the namespace in effect.
func NewClient(kubeconfig, namespace string) (Source, string, error) {
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
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, discoveryv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, "", fmt.Errorf("kubernetes scheme: %w", err)
		}
	}
	codecs := serializer.NewCodecFactory(scheme)
	s := &restSource{clients: map[schema.GroupVersion]*rest.RESTClient{}, params: runtime.NewParameterCodec(scheme)}
	for _, r := range resources {
		if s.clients[r.gv] != nil {
			continue
		}
		c := rest.CopyConfig(cfg)
		gv := r.gv
		c.GroupVersion = &gv
		c.APIPath = "/apis"
		if gv.Group == "" {
			c.APIPath = "/api"
		}
		c.NegotiatedSerializer = codecs.WithoutConversion()
		rc, err := rest.RESTClientFor(c)
		if err != nil {
			return nil, "", fmt.Errorf("kubernetes client: %w", err)
		}
		s.clients[gv] = rc
	}
	return s, ns, nil
}

func (s *restSource) ListWatch(namespace, resource string) (cache.ListerWatcher, error) {
	r, ok := resources[resource]
	if !ok {
		return nil, fmt.Errorf("kubewatch: no resource %q", resource)
	}
	rc := s.clients[r.gv]
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := r.list()
			err := rc.Get().Namespace(namespace).Resource(resource).VersionedParams(&opts, s.params).Do(ctx).Into(list)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.Watch = true
			return rc.Get().Namespace(namespace).Resource(resource).VersionedParams(&opts, s.params).Watch(ctx)
		},
	}, nil
}
