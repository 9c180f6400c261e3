// Package lab rebuilds a Kubernetes scale-up on one machine: pods are kaload
// servers on loopback, a Service is an in-process L4 balancer that, like
// kube-proxy, chooses a backend only when a connection opens, and an emulated
// HorizontalPodAutoscaler adds pods by Kubernetes' own rule.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// Policy is how the balancer picks a backend for a new connection.
type Policy string

const (
	// PolicyRandom picks uniformly at random, as kube-proxy's iptables
	// (statistic --mode random --probability 1/(n-k)) and nftables (numgen) modes do.
	PolicyRandom Policy = "random"
	// PolicyRoundRobin cycles through the backends, as IPVS's default "rr" scheduler does.
	PolicyRoundRobin Policy = "roundrobin"
)

// ParsePolicy accepts "random" or "roundrobin" (also "rr").
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "random":
		return PolicyRandom, nil
	case "roundrobin", "rr":
		return PolicyRoundRobin, nil
	}
	return "", fmt.Errorf("unknown balancer policy %q (want random or roundrobin)", s)
}

// Balancer is an L4 TCP proxy standing in for a Service's virtual IP. It
// picks a backend once per connection and then only copies bytes, so changing
// the backend set never moves a connection that is already open: exactly the
// conntrack behaviour that keeps keep-alive clients on old pods.
type Balancer struct {
	policy  Policy
	dialer  net.Dialer
	closing chan struct{} // closed by Close; aborts dials in progress

	mu       sync.Mutex
	backends []string
	rng      *rand.Rand
	next     int
	picks    map[string]int64
	conns    map[net.Conn]struct{}
	active   int
	lns      map[net.Listener]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// NewBalancer returns a balancer with no backends. seed makes PolicyRandom's
// choices reproducible.
func NewBalancer(policy Policy, seed uint64) *Balancer {
	return &Balancer{
		policy:  policy,
		dialer:  net.Dialer{Timeout: 5 * time.Second},
		closing: make(chan struct{}),
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		picks:   make(map[string]int64),
		conns:   make(map[net.Conn]struct{}),
		lns:     make(map[net.Listener]struct{}),
	}
}

// SetBackends replaces the backend set (host:port addresses). Open
// connections keep their backend; only new connections see the change.
func (b *Balancer) SetBackends(addrs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = slices.Clone(addrs)
	b.next = 0
}

// Add appends a backend unless it is already present.
func (b *Balancer) Add(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Contains(b.backends, addr) {
		b.backends = append(b.backends, addr)
	}
}

// Remove drops a backend; its open connections carry on until they end.
func (b *Balancer) Remove(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.backends, addr); i >= 0 {
		b.backends = slices.Delete(b.backends, i, i+1)
		if b.next > i {
			b.next--
		}
	}
}

// Backends returns the current backend set.
func (b *Balancer) Backends() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.backends)
}

// Picks returns how many connections were sent to each backend so far.
func (b *Balancer) Picks() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]int64, len(b.picks))
	for k, v := range b.picks {
		m[k] = v
	}
	return m
}

// ActiveConns is the number of client connections being proxied now.
func (b *Balancer) ActiveConns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active
}

// pick chooses the backend for one new connection; "" when there is none.
func (b *Balancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.backends)
	if n == 0 {
		return ""
	}
	var addr string
	switch b.policy {
	case PolicyRoundRobin:
		addr = b.backends[b.next%n]
		b.next = (b.next + 1) % n
	default:
		addr = b.backends[b.rng.IntN(n)]
	}
	b.picks[addr]++
	return addr
}

// track registers c so Close can end it; false when the balancer is closed.
func (b *Balancer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Balancer) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// Serve accepts connections on ln until ctx ends, ln fails or Close is
// called, then closes every proxied connection and returns once all of its
// goroutines have finished. It returns nil after ctx or Close.
func (b *Balancer) Serve(ctx context.Context, ln net.Listener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ln.Close()
		return nil
	}
	b.lns[ln] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()

	stop := context.AfterFunc(ctx, func() { b.Close() })
	defer stop()

	for {
		c, err := ln.Accept()
		if err != nil {
			b.mu.Lock()
			closed := b.closed
			b.mu.Unlock()
			ln.Close()
			if closed || ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("balancer accept: %w", err)
		}
		if !b.track(c) {
			c.Close()
			return nil
		}
		b.wg.Add(1)
		go b.proxy(c)
	}
}

// Close stops every Serve loop and ends all proxied connections.
func (b *Balancer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.closing)
	for ln := range b.lns {
		ln.Close()
	}
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	return nil
}

// Wait blocks until every Serve loop and proxied connection has ended.
func (b *Balancer) Wait() { b.wg.Wait() }

// proxy connects the client to one backend and copies both ways.
func (b *Balancer) proxy(client net.Conn) {
	defer b.wg.Done()
	defer b.untrack(client)
	defer client.Close()
	b.mu.Lock()
	b.active++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.active--
		b.mu.Unlock()
	}()

	addr := b.pick()
	if addr == "" {
		// A Service without endpoints rejects the connection.
		return
	}
	backend, err := b.dial(addr)
	if err != nil {
		return
	}
	if !b.track(backend) {
		backend.Close()
		return
	}
	defer b.untrack(backend)
	defer backend.Close()

	done := make(chan struct{}, 2)
	go func() { pipe(backend, client); done <- struct{}{} }()
	pipe(client, backend)
	<-done
}

// dial connects to a backend; Close aborts it.
func (b *Balancer) dial(addr string) (net.Conn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-b.closing:
			cancel()
		case <-stop:
		}
	}()
	return b.dialer.DialContext(ctx, "tcp", addr)
}

// pipe copies src to dst. On a clean EOF it half-closes dst, so a peer that
// shuts down its write side (HTTP "Connection: close") is seen as such; on an
// error it closes both ends, which ends the opposite copy too.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}
