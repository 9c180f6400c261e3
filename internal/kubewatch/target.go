// Package kubewatch follows a workload on a Kubernetes cluster while kaload
// hammer runs: its HorizontalPodAutoscaler, its pods and the EndpointSlices
// that point at them, through client-go informers. What changes becomes
// results.Events on the run's clock, for the report's stages (scale
// decision -> pod created -> Ready -> endpoint ready -> first request).
//
// Watching is best effort: a watch that fails is re-established by the
// informer and the gap is recorded (watch.lost, watch.restored); it never
// fails the run.
package kubewatch

import (
	"fmt"
	"strings"
)

// Kind is the kind of a watched object.
type Kind string

const (
	Deployment  Kind = "deployment"
	StatefulSet Kind = "statefulset"
	HPA         Kind = "hpa"
)

// Target is one --watch KIND/NAME.
type Target struct {
	Kind Kind
	Name string
}

func (t Target) String() string { return string(t.Kind) + "/" + t.Name }

// kindNames are the spellings kubectl users type for each kind.
var kindNames = map[string]Kind{
	"deployment": Deployment, "deployments": Deployment, "deploy": Deployment,
	"statefulset": StatefulSet, "statefulsets": StatefulSet, "sts": StatefulSet,
	"hpa": HPA, "horizontalpodautoscaler": HPA, "horizontalpodautoscalers": HPA,
}

// ParseTarget parses KIND/NAME: deployment/web, statefulset/db, hpa/web
// (also kubectl's short and plural names: deploy, sts, horizontalpodautoscaler).
func ParseTarget(s string) (Target, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || kind == "" || name == "" {
		return Target{}, fmt.Errorf("%q: want KIND/NAME, e.g. deployment/web, statefulset/db or hpa/web", s)
	}
	k, ok := kindNames[strings.ToLower(kind)]
	if !ok {
		return Target{}, fmt.Errorf("%q: unknown kind %q (want deployment, statefulset or hpa)", s, kind)
	}
	if strings.Contains(name, "/") || !validName(name) {
		return Target{}, fmt.Errorf("%q: %q is not a Kubernetes object name", s, name)
	}
	return Target{Kind: k, Name: name}, nil
}

// validName accepts a DNS subdomain (RFC 1123): what object names are.
func validName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '.' {
			return false
		}
		if (i == 0 || i == len(s)-1) && !alnum {
			return false
		}
	}
	return true
}
