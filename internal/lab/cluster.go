package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

// PodSpec is what every pod of a scenario runs with.
type PodSpec struct {
	MaxRequests int           // server-side recycling after N responses; 0 = off
	MaxConnAge  time.Duration // server-side recycling after an age; 0 = off
	Capacity    float64       // requests/s a pod serves before queueing; 0 = unlimited
	Seed        uint64        // for the recycling jitter (none is configured, kept reproducible)
	GRPC        bool          // pods serve gRPC (ServeGRPC) instead of HTTP
}

// ScaleEvent is a change of the replica count, at an offset from the run's start.
type ScaleEvent struct {
	At   time.Duration
	From int
	To   int
}

type pod struct {
	name    string
	addr    string
	srv     *server.Server
	stop    context.CancelFunc
	done    chan error
	created time.Duration
	// HPA metric bookkeeping: the request count at the last observation.
	lastCount uint64
	lastAt    time.Time
}

// cluster is a Deployment of pods behind the balancer (the Service). It is
// the HPA's scale target.
type cluster struct {
	spec  PodSpec
	bal   *Balancer
	start time.Time // offset zero for events

	mu     sync.Mutex
	pods   []*pod
	nextID int
	events []ScaleEvent
	gone   []*pod // scaled-down pods, still draining
	// record, once set, receives the events a watched cluster would show
	// (pods created and Ready, endpoints, scale decisions), on c.start's
	// clock: the lab and kaload hammer --watch share one report.
	record  func(results.Event)
	desired int // the HPA's last desired count, for its events' was=
}

// emit records an event at the current offset; c.mu must not be held.
func (c *cluster) emit(kind, object, detail string) {
	c.mu.Lock()
	rec, at := c.record, time.Since(c.start)
	c.mu.Unlock()
	if rec != nil {
		rec(results.Event{T: at, Kind: kind, Object: object, Detail: detail})
	}
}

// decided records an HPA decision that changes the desired count.
func (c *cluster) decided(d Decision, target float64) {
	c.mu.Lock()
	was := c.desired
	c.desired = d.Desired
	c.mu.Unlock()
	if d.Desired == was {
		return
	}
	c.emit(results.EventHPA, "hpa/lab", fmt.Sprintf("desired=%d current=%d was=%d metric=rps:%.1f/%.1f", d.Desired, d.Current, was, d.Average, target))
}

func newCluster(spec PodSpec, bal *Balancer, start time.Time) *cluster {
	return &cluster{spec: spec, bal: bal, start: start}
}

// addPod starts one pod and puts it behind the Service once it listens.
// Pods outlive the ctx they were started with; shutdown stops them.
func (c *cluster) addPod(ctx context.Context) (*pod, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	name := fmt.Sprintf("pod-%d", id)
	srv, err := server.New(server.Config{
		Hostname:      name,
		MaxRequests:   c.spec.MaxRequests,
		MaxConnAge:    c.spec.MaxConnAge,
		Capacity:      c.spec.Capacity,
		ShutdownGrace: 2 * time.Second,
		Rand:          rand.New(rand.NewPCG(c.spec.Seed, uint64(id))),
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", name, err)
	}
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p := &pod{name: name, addr: ln.Addr().String(), srv: srv, stop: stop, done: make(chan error, 1), lastAt: time.Now()}
	p.created = p.lastAt.Sub(c.start)
	if c.spec.GRPC {
		go func() { p.done <- srv.ServeGRPC(pctx, ln) }()
	} else {
		go func() { p.done <- srv.Serve(pctx, ln) }()
	}
	c.mu.Lock()
	c.pods = append(c.pods, p)
	c.mu.Unlock()
	// A lab pod is Ready as it listens, and in the Service at once.
	c.emit(results.EventPodCreated, "pod/"+name, "backend="+name)
	c.emit(results.EventPodReady, "pod/"+name, "backend="+name+" ip="+p.addr)
	c.bal.Add(p.addr)
	c.emit(results.EventEndpointReady, "pod/"+name, "ip="+p.addr+" ready=true serving=true terminating=false service=lab backend="+name)
	return p, nil
}

// Scale adds or removes pods to reach n. Removed pods leave the Service at
// once and drain: their keep-alive connections close after the next response.
func (c *cluster) Scale(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("scale to %d: a lab needs at least one pod", n)
	}
	from := c.Replicas()
	if n == from {
		return nil
	}
	// The event is when the Service starts to change: no request can reach
	// a new pod before it (reports place requests by when they were sent).
	at := time.Since(c.start)
	c.emit(results.EventScale, "deployment/lab", fmt.Sprintf("replicas=%d was=%d", n, from))
	for i := from; i < n; i++ {
		if _, err := c.addPod(ctx); err != nil {
			return err
		}
	}
	if n < from {
		c.mu.Lock()
		removed := c.pods[n:]
		c.pods = c.pods[:n:n]
		c.gone = append(c.gone, removed...)
		c.mu.Unlock()
		for _, p := range removed {
			c.emit(results.EventPodDeleted, "pod/"+p.name, "backend="+p.name)
			c.bal.Remove(p.addr)
			c.emit(results.EventEndpointRemoved, "pod/"+p.name, "ip="+p.addr+" ready=false serving=false terminating=true service=lab backend="+p.name)
			p.stop()
		}
	}
	c.mu.Lock()
	c.events = append(c.events, ScaleEvent{At: at, From: from, To: n})
	c.mu.Unlock()
	return nil
}

// Replicas is the number of pods behind the Service.
func (c *cluster) Replicas() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pods)
}

// Observe returns the replica count and the pods' average requests/s since
// the previous observation, read from each pod's own counter, as a custom
// pods metric would be.
func (c *cluster) Observe() (int, float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var sum float64
	for _, p := range c.pods {
		count := p.srv.Stats().Requests
		if el := now.Sub(p.lastAt).Seconds(); el > 0 {
			sum += float64(count-p.lastCount) / el
		}
		p.lastCount, p.lastAt = count, now
	}
	if len(c.pods) == 0 {
		return 0, 0
	}
	return len(c.pods), sum / float64(len(c.pods))
}

// Events returns the scale events so far.
func (c *cluster) Events() []ScaleEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ScaleEvent(nil), c.events...)
}

// podInfo is a pod as the report needs it.
type podInfo struct {
	Name     string
	Created  time.Duration
	Requests uint64
}

func (c *cluster) podInfos() []podInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []podInfo
	for _, p := range append(append([]*pod(nil), c.pods...), c.gone...) {
		out = append(out, podInfo{Name: p.name, Created: p.created, Requests: p.srv.Stats().Requests})
	}
	return out
}

// shutdown stops every pod and waits for their drains.
func (c *cluster) shutdown() error {
	c.mu.Lock()
	all := append(append([]*pod(nil), c.pods...), c.gone...)
	c.mu.Unlock()
	var errs []error
	for _, p := range all {
		p.stop()
	}
	for _, p := range all {
		if err := <-p.done; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}
