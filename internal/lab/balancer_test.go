package lab

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineBackend answers every line it reads with its own name, on any number
// of connections, until the test ends.
func lineBackend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "drain\n" {
						// Read to EOF, then answer: proves half-close reaches us.
						n, _ := io.Copy(io.Discard, r)
						io.WriteString(c, name+" drained "+itoa(n)+"\n")
						return
					}
					if _, err := io.WriteString(c, name+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// startBalancer serves b on a loopback port until the test ends.
func startBalancer(t testing.TB, b *Balancer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		b.Wait()
	})
	return ln.Addr().String()
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

// ask sends one line and returns the backend's answer ("" on EOF/error).
func (c *lineConn) ask(t *testing.T, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return ""
	}
	s, err := c.r.ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(s, "\n")
}

func TestBalancerChoosesPerConnection(t *testing.T) {
	tests := []struct {
		policy Policy
		// want[i] is the backend index connection i must reach; -1: any.
		want []int
	}{
		{PolicyRoundRobin, []int{0, 1, 2, 0, 1, 2}},
		{PolicyRandom, []int{-1, -1, -1, -1, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			names := []string{"pod-1", "pod-2", "pod-3"}
			var addrs []string
			for _, n := range names {
				addrs = append(addrs, lineBackend(t, n))
			}
			b := NewBalancer(tt.policy, 1)
			b.SetBackends(addrs...)
			addr := startBalancer(t, b)
			for i, w := range tt.want {
				c := dialLine(t, addr)
				first := c.ask(t, "hello")
				if first == "" {
					t.Fatalf("conn %d: no answer", i)
				}
				if w >= 0 && first != names[w] {
					t.Errorf("conn %d went to %s, want %s", i, first, names[w])
				}
				// Every request on one connection reaches the same pod.
				for j := 0; j < 20; j++ {
					if got := c.ask(t, "again"); got != first {
						t.Fatalf("conn %d request %d went to %q, want %q (choice must be per connection)", i, j, got, first)
					}
				}
			}
			var total int64
			for _, n := range b.Picks() {
				total += n
			}
			if total != int64(len(tt.want)) {
				t.Errorf("picks = %d, want one per connection (%d)", total, len(tt.want))
			}
		})
	}
}

func TestBalancerBackendChangesOnlyAffectNewConnections(t *testing.T) {
	a, bAddr := lineBackend(t, "old"), lineBackend(t, "new")
	b := NewBalancer(PolicyRoundRobin, 1)
	b.SetBackends(a)
	addr := startBalancer(t, b)

	live := dialLine(t, addr)
	if got := live.ask(t, "x"); got != "old" {
		t.Fatalf("first conn reached %q, want old", got)
	}

	// Scale up: add a pod. The live connection stays where it is.
	b.Add(bAddr)
	b.Add(bAddr) // duplicates are ignored
	if got := b.Backends(); len(got) != 2 {
		t.Fatalf("backends = %v, want 2", got)
	}
	for i := 0; i < 10; i++ {
		if got := live.ask(t, "x"); got != "old" {
			t.Fatalf("live conn moved to %q after Add", got)
		}
	}

	// Remove the old pod: only new connections avoid it.
	b.Remove(a)
	for i := 0; i < 3; i++ {
		if got := dialLine(t, addr).ask(t, "x"); got != "new" {
			t.Fatalf("new conn %d after Remove reached %q, want new", i, got)
		}
	}
	if got := live.ask(t, "x"); got != "old" {
		t.Fatalf("live conn to a removed backend broke or moved: %q", got)
	}
	if n := b.ActiveConns(); n < 1 {
		t.Errorf("ActiveConns = %d, want >= 1", n)
	}

	// A Service without endpoints rejects new connections.
	b.SetBackends()
	if got := dialLine(t, addr).ask(t, "x"); got != "" {
		t.Fatalf("conn with no backends got %q, want it closed", got)
	}
	if got := live.ask(t, "x"); got != "old" {
		t.Fatalf("live conn broke after SetBackends(): %q", got)
	}
}

func TestBalancerRandomSpreadsConnections(t *testing.T) {
	const backends, conns = 4, 800
	b := NewBalancer(PolicyRandom, 42)
	var addrs []string
	for i := 0; i < backends; i++ {
		addrs = append(addrs, "10.0.0."+itoa(int64(i+1))+":80")
	}
	b.SetBackends(addrs...)
	seq := make([]string, conns)
	for i := range seq {
		seq[i] = b.pick()
	}
	// Expected 200 each, sd ~12.2: 5 sd is a bound a fair picker never leaves.
	for a, n := range b.Picks() {
		if n < 140 || n > 260 {
			t.Errorf("%s got %d of %d connections, want 200±60", a, n, conns)
		}
	}
	// The same seed replays the same choices.
	again := NewBalancer(PolicyRandom, 42)
	again.SetBackends(addrs...)
	for i := range seq {
		if got := again.pick(); got != seq[i] {
			t.Fatalf("pick %d with the same seed = %s, want %s", i, got, seq[i])
		}
	}
	other := NewBalancer(PolicyRandom, 43)
	other.SetBackends(addrs...)
	same := 0
	for i := range seq {
		if other.pick() == seq[i] {
			same++
		}
	}
	if same == conns {
		t.Error("a different seed replayed the same choices")
	}
}

func TestBalancerHalfClose(t *testing.T) {
	b := NewBalancer(PolicyRandom, 1)
	b.SetBackends(lineBackend(t, "pod-1"))
	c := dialLine(t, startBalancer(t, b))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "drain\n12345")
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "pod-1 drained 5\n" {
		t.Fatalf("after half-close got %q, want the backend's answer then EOF", got)
	}
}

func TestBalancerCloseEndsEverything(t *testing.T) {
	b := NewBalancer(PolicyRoundRobin, 1)
	b.SetBackends(lineBackend(t, "pod-1"), lineBackend(t, "pod-2"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()

	var live []*lineConn
	for i := 0; i < 5; i++ {
		c := dialLine(t, ln.Addr().String())
		if c.ask(t, "x") == "" {
			t.Fatal("no answer before close")
		}
		live = append(live, c)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	b.Wait()
	for i, c := range live {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.r.ReadString('\n'); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("conn %d still open after the balancer closed (err %v)", i, err)
		}
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts after close")
	}
	if n := b.ActiveConns(); n != 0 {
		t.Errorf("ActiveConns = %d after close", n)
	}
	// Serving a closed balancer returns at once.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := b.Serve(context.Background(), ln2); err != nil {
		t.Errorf("Serve on a closed balancer = %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"random": PolicyRandom, "roundrobin": PolicyRoundRobin, "rr": PolicyRoundRobin} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePolicy("ipvs"); err == nil || !strings.Contains(err.Error(), "ipvs") {
		t.Errorf("ParsePolicy(ipvs) error = %v, want it named", err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"random", "roundrobin", "rr", "", "RANDOM", "ipvs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			if p != "" {
				t.Errorf("ParsePolicy(%q) returned %q with an error", s, p)
			}
			return
		}
		if p != PolicyRandom && p != PolicyRoundRobin {
			t.Errorf("ParsePolicy(%q) = %q", s, p)
		}
	})
}
