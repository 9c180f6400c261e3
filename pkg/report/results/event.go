package results

import (
	"fmt"
	"strings"
	"time"
)

// Event is something the system under test did while the run went on: an
// autoscaler decision, a pod becoming Ready, an endpoint added to a Service.
// kaload hammer --watch records them from the Kubernetes API and kaload lab
// from its emulated autoscaler and balancer; both go through the same
// report. Events are a second record kind of a results file, next to the
// Results (format version 2 and later).
type Event struct {
	// T is the offset on the run's clock: from Header.Start, like Result.Start.
	T time.Duration
	// Kind is one of the Event* constants; readers keep unknown kinds as they are.
	Kind string
	// Object names what the event is about: "pod/web-7d4f-abcde", "hpa/web",
	// "deployment/web", "watch/pods".
	Object string
	// Detail is space-separated key=value pairs (see EventField), e.g.
	// "desired=4 current=2 metric=cpu:85%/50%" or "ip=10.0.0.7 backend=web-7d4f-abcde".
	Detail string
}

// Event kinds. Pod and endpoint events carry backend=NAME in Detail when the
// producer knows which backend name (the server's backend header) the pod
// answers with.
const (
	// EventHPA: the autoscaler's status changed. Detail: desired=N current=N
	// and, when known, metric=NAME:CURRENT/TARGET.
	EventHPA = "hpa"
	// EventScale: a workload's replica count changed (the scale decision as
	// the Deployment or StatefulSet sees it). Detail: replicas=N was=N.
	EventScale = "scale"

	EventPodCreated   = "pod.created"
	EventPodScheduled = "pod.scheduled" // Detail: node=NAME
	EventPodReady     = "pod.ready"     // Detail: ip=IP
	EventPodUnready   = "pod.unready"
	EventPodDeleted   = "pod.deleted"

	// Endpoint events follow one address of the Service's EndpointSlices.
	// Object is the pod ("pod/NAME") when the endpoint names it, else
	// "ip/ADDRESS". Detail: ip=IP ready=BOOL serving=BOOL terminating=BOOL.
	EventEndpointReady       = "endpoint.ready"       // added ready, or became ready
	EventEndpointNotReady    = "endpoint.notready"    // added not ready, or stopped being ready
	EventEndpointServing     = "endpoint.serving"     // only the serving condition changed
	EventEndpointTerminating = "endpoint.terminating" // became terminating
	EventEndpointRemoved     = "endpoint.removed"

	// EventWatchLost and EventWatchRestored bracket a gap in what was
	// watched: events of that gap are missing. Object: "watch/RESOURCE".
	EventWatchLost     = "watch.lost"
	EventWatchRestored = "watch.restored"
)

// EventField returns the value of key in a Detail of key=value pairs.
func EventField(detail, key string) (string, bool) {
	for f := range strings.FieldsSeq(detail) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// maxEvents bounds the events a file may hold, so a runaway producer or a
// hostile file cannot make a reader keep them without limit. A run that
// watches one workload records a few per pod.
const maxEvents = 1 << 20

func (e *Event) validate() error {
	if e.Kind == "" {
		return fmt.Errorf("event at %s: no kind", e.T)
	}
	return nil
}
