package server_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/lab"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/server"
)

// drainProto is one protocol of the switch-over tests.
type drainProto struct {
	name   string
	scheme string
	h2c    bool // cleartext HTTP/2 with prior knowledge
	tls    bool // HTTPS, HTTP/2 by ALPN
}

var drainProtos = []drainProto{
	{name: "h1", scheme: "http"},
	{name: "h2c", scheme: "http", h2c: true},
	{name: "tls-h2", scheme: "https", tls: true},
}

// backend is a kaload server whose drain the test starts (SIGTERM in
// kaload serve) and whose Serve result it checks.
type backend struct {
	*server.Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startBackend(t *testing.T, cfg server.Config) *backend {
	t.Helper()
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{Server: s, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(20 * time.Second):
			t.Error("backend did not stop")
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !s.Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("backend not ready")
		}
	}
	return b
}

// wait returns Serve's result after the drain (once).
func (b *backend) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err // the cleanup reads it again
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the drain")
		return nil
	}
}

// switchOver is a Kubernetes rollout in miniature: a Service (the lab's L4
// balancer) routes to backend "old"; the test sends "old" SIGTERM (it
// drains with a drain delay), moves the Service to "new" halfway through
// the drain delay, as the endpoints controller does a moment after the pod
// turned unready, and "old" closes its listener when its drain delay ends.
type switchOver struct {
	old, new *backend
	addr     string // the Service's address
	bal      *lab.Balancer
}

const (
	drainDelay = 800 * time.Millisecond
	moveAfter  = drainDelay / 2
)

func startSwitchOver(t *testing.T, p drainProto) *switchOver {
	t.Helper()
	cfg := server.Config{H2C: p.h2c, DrainDelay: drainDelay, ShutdownGrace: 5 * time.Second}
	if p.tls {
		cfg.TLSCertFile, cfg.TLSKeyFile, _ = server.WriteCert(t)
	}
	oldCfg, newCfg := cfg, cfg
	oldCfg.Hostname, newCfg.Hostname = "old", "new"
	so := &switchOver{old: startBackend(t, oldCfg), new: startBackend(t, newCfg)}
	so.bal = lab.NewBalancer(lab.PolicyRoundRobin, 1)
	so.bal.SetBackends(so.old.addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	so.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- so.bal.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		so.bal.Close()
		if err := <-done; err != nil {
			t.Errorf("balancer: %v", err)
		}
		so.bal.Wait()
	})
	return so
}

// drain sends "old" its SIGTERM, moves the Service to "new" after
// moveAfter and returns once "old" finished draining, with Serve's result.
func (so *switchOver) drain(t *testing.T) error {
	t.Helper()
	so.old.cancel()
	time.Sleep(moveAfter)
	so.bal.SetBackends(so.new.addr)
	return so.old.wait(t)
}

// TestDrainSwitchOverEngine: kaload's own engine keeps 8 connections busy
// through the Service while the old backend drains and the new one takes
// over. Not one request may fail on any protocol, and the old backend must
// have answered requests on connections that arrived during its drain delay
// (HTTP/2 used to reset them: issue 16).
func TestDrainSwitchOverEngine(t *testing.T) {
	for _, p := range drainProtos {
		t.Run(p.name, func(t *testing.T) {
			so := startSwitchOver(t, p)
			var (
				mu       sync.Mutex
				perBack  = map[string]int{}
				failures []string
			)
			sink := client.SinkFunc(func(r *client.Result) {
				mu.Lock()
				defer mu.Unlock()
				if r.Failed() {
					if len(failures) < 5 {
						failures = append(failures, fmt.Sprintf("status %d: %s", r.Status, r.Err))
					}
					return
				}
				perBack[r.Backend]++
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			statsc := make(chan client.Stats, 1)
			go func() {
				st, err := client.Run(ctx, client.Config{
					URL:         p.scheme + "://" + so.addr + "/",
					Connections: 8,
					Duration:    2*drainDelay + time.Second,
					Timeout:     5 * time.Second,
					H2C:         p.h2c,
					HTTP2:       p.tls,
					Insecure:    true,
				}, sink)
				if err != nil {
					t.Error(err)
				}
				statsc <- st
			}()
			// Let the load run on "old" alone first.
			waitUntil(t, "requests on old", func() bool { return so.old.Stats().Requests >= 200 })
			before := so.old.Stats().Requests
			if err := so.drain(t); err != nil {
				t.Errorf("old backend's drain: %v", err)
			}
			st := <-statsc
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d requests, %d errors, %d connections; old %d (%d during its drain), new %d",
				st.Requests, st.Errors, st.Connections, perBack["old"], so.old.Stats().Requests-before, perBack["new"])
			if st.Errors != 0 {
				t.Errorf("%d of %d requests failed across the drain, e.g. %v", st.Errors, st.Requests, failures)
			}
			if perBack["new"] == 0 {
				t.Error("no request reached the new backend")
			}
			if during := so.old.Stats().Requests - before; during == 0 {
				t.Error("the old backend answered nothing during its drain delay")
			}
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// peerRun is what one invocation of a peer client reports.
type peerRun struct {
	sent, answered int
	detail         string // the peer's own words when something failed
}

// peer is a client nobody here wrote, run again and again across a drain.
type peer struct {
	name string
	run  func(ctx context.Context, bin string, p drainProto, url string, reuse bool) peerRun
}

// h2loadLine is h2load's summary line.
var h2loadLine = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed`)

var peers = []peer{
	{
		// h2load (nghttp2). Over HTTP/1.1 it reconnects after "Connection:
		// close"; over HTTP/2 it does not reconnect after GOAWAY and counts
		// the requests it then never started as failed, so there what must
		// hold is that every request it started was answered.
		name: "h2load",
		run: func(ctx context.Context, bin string, p drainProto, url string, _ bool) peerRun {
			args := []string{"-n", "20", "-c", "2", "-m", "1", "-T", "5", url}
			if p.name == "h1" {
				args = append([]string{"--h1"}, args...)
			}
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			m := h2loadLine.FindSubmatch(out)
			if m == nil {
				return peerRun{detail: fmt.Sprintf("h2load %v: %v\n%s", args, err, out)}
			}
			started, _ := strconv.Atoi(string(m[2]))
			succeeded, _ := strconv.Atoi(string(m[4]))
			failed, _ := strconv.Atoi(string(m[5]))
			r := peerRun{sent: started, answered: succeeded}
			if p.name == "h1" && failed != 0 || started != succeeded {
				r.detail = string(m[0])
			}
			if p.name == "h1" {
				r.sent = 20 // every one is due: h2load reconnects
			}
			return r
		},
	},
	{
		// curl fetches 10 URLs in one process, reusing its connection and
		// dialling again after "Connection: close" or GOAWAY (one URL per
		// process where this curl cannot reuse an h2c connection at all).
		name: "curl",
		run: func(ctx context.Context, bin string, p drainProto, url string, reuse bool) peerRun {
			args := []string{"-s", "-o", "/dev/null", "-w", "%{http_code}\n", "--max-time", "10"}
			switch p.name {
			case "h1":
				args = append(args, "--http1.1")
			case "h2c":
				args = append(args, "--http2-prior-knowledge")
			default:
				args = append(args, "--http2", "-k")
			}
			n := 10
			if !reuse {
				n = 1
			}
			for range n {
				args = append(args, url)
			}
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			r := peerRun{sent: n}
			for _, code := range strings.Fields(string(out)) {
				if code == "200" {
					r.answered++
				}
			}
			if err != nil || r.answered != n {
				r.detail = fmt.Sprintf("curl: %v, status codes %q", err, strings.Fields(string(out)))
			}
			return r
		},
	},
}

// TestDrainSwitchOverPeers: the switch-over of TestDrainSwitchOverEngine
// with h2load and curl as the clients, run in a loop across the drain.
func TestDrainSwitchOverPeers(t *testing.T) {
	for _, pr := range peers {
		bin, err := exec.LookPath(pr.name)
		if err != nil {
			t.Run(pr.name, func(t *testing.T) { t.Skipf("%s not installed", pr.name) })
			continue
		}
		for _, p := range drainProtos {
			t.Run(pr.name+"/"+p.name, func(t *testing.T) {
				if pr.name == "curl" && p.name != "h1" && !curlHasHTTP2(bin) {
					t.Skip("curl built without HTTP/2")
				}
				reuse := pr.name != "curl" || p.name != "h2c" || server.CurlReusesH2C(t, bin)
				so := startSwitchOver(t, p)
				url := p.scheme + "://" + so.addr + "/"
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var (
					mu             sync.Mutex
					sent, answered int
					runs           int
					failures       []string
				)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for range 2 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							r := pr.run(ctx, bin, p, url, reuse)
							mu.Lock()
							runs++
							sent += r.sent
							answered += r.answered
							if r.detail != "" && len(failures) < 5 {
								failures = append(failures, r.detail)
							}
							mu.Unlock()
						}
					})
				}
				waitUntil(t, "requests on old", func() bool { return so.old.Stats().Requests >= 40 })
				before := so.old.Stats().Requests
				if err := so.drain(t); err != nil {
					t.Errorf("old backend's drain: %v", err)
				}
				time.Sleep(300 * time.Millisecond) // a few runs against the new backend
				close(stop)
				wg.Wait()
				during := so.old.Stats().Requests - before
				t.Logf("%d runs: %d requests sent, %d answered; old answered %d during its drain, new %d",
					runs, sent, answered, during, so.new.Stats().Requests)
				for _, f := range failures {
					t.Errorf("failed across the drain: %s", f)
				}
				if during == 0 {
					t.Error("the old backend answered nothing during its drain delay")
				}
				if so.new.Stats().Requests == 0 {
					t.Error("no request reached the new backend")
				}
			})
		}
	}
}

func curlHasHTTP2(bin string) bool {
	out, err := exec.Command(bin, "--version").Output()
	return err == nil && strings.Contains(string(out), "HTTP2")
}
