package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/kaload/kaload/pkg/field"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingListener counts accepted connections: the server-side truth about
// how many TCP connections a client opened.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type testServer struct {
	*Server
	ln     *countingListener
	addr   string
	url    string
	cancel context.CancelFunc
	done   chan error
}

// start runs a real Server on a loopback port until the test ends.
func start(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith is start with a hook that runs after New, before Serve.
func startWith(t *testing.T, cfg Config, before func(*Server)) *testServer {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "test-backend"
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(s)
	}
	cl := &countingListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, ln: cl, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, cl) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop drains the server and returns Serve's result (once).
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
		return nil
	}
}

// rawConn is one HTTP/1.1 keep-alive connection driven by hand, so the
// test sees exactly what the server put on the wire.
type rawConn struct {
	c    net.Conn
	br   *bufio.Reader
	wire bytes.Buffer // bytes read for the current response
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{c: c}
	rc.br = bufio.NewReader(io.TeeReader(c, &rc.wire))
	return rc
}

func (rc *rawConn) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	rc.wire.Reset()
	if _, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: kaload\r\n\r\n", path); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(body)
}

// closeOnWire reports whether the last response's header section holds
// exactly "Connection: close" (ReadResponse removes it from resp.Header).
func (rc *rawConn) closeOnWire() bool {
	head, _, _ := bytes.Cut(rc.wire.Bytes(), []byte("\r\n\r\n"))
	return bytes.Contains(head, []byte("\r\nConnection: close\r\n")) || bytes.HasSuffix(head, []byte("\r\nConnection: close"))
}

// expectEOF checks that the server closed the connection.
func (rc *rawConn) expectEOF(t *testing.T) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := rc.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after Connection: close: read %d bytes, err %v; want EOF", n, err)
	}
}

func TestMaxRequestsHTTP1(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		requests  int
		wantConns int64
		closeAt   []int // 1-based request numbers whose response says close
	}{
		{"issue example", 5, 12, 3, []int{5, 10}},
		{"every request", 1, 3, 3, []int{1, 2, 3}},
		{"exact multiple", 4, 8, 2, []int{4, 8}},
		{"unlimited", 0, 12, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, Config{MaxRequests: tt.max})
			var closes []int
			conn := dialRaw(t, ts.addr)
			pos := 0
			for i := 1; i <= tt.requests; i++ {
				resp, body := conn.get(t, "/")
				pos++
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
				if got := resp.Header.Get(PositionHeader); got != strconv.Itoa(pos) {
					t.Errorf("request %d: %s = %q, want %d", i, PositionHeader, got, pos)
				}
				if got := resp.Header.Get(TotalHeader); got != strconv.Itoa(i) {
					t.Errorf("request %d: %s = %q, want %d", i, TotalHeader, got, i)
				}
				if got := resp.Header.Get(DefaultBackendHeader); got != "test-backend" {
					t.Errorf("request %d: backend header %q", i, got)
				}
				want := fmt.Sprintf("backend=test-backend request=%d conn_request=%d\n", i, pos)
				if body != want {
					t.Errorf("request %d: body %q, want %q", i, body, want)
				}
				if resp.Close {
					if !conn.closeOnWire() {
						t.Errorf("request %d: no exact Connection: close header on the wire:\n%s", i, conn.wire.Bytes())
					}
					closes = append(closes, i)
					conn.expectEOF(t)
					if i < tt.requests {
						conn = dialRaw(t, ts.addr)
						pos = 0
					}
				}
			}
			if fmt.Sprint(closes) != fmt.Sprint(tt.closeAt) {
				t.Errorf("Connection: close on responses %v, want %v", closes, tt.closeAt)
			}
			if got := ts.ln.n.Load(); got != tt.wantConns {
				t.Errorf("server accepted %d connections, want %d", got, tt.wantConns)
			}
			if got, want := ts.Stats().RecycledMaxRequests, uint64(len(tt.closeAt)); got != want {
				t.Errorf("Stats().RecycledMaxRequests = %d, want %d", got, want)
			}
		})
	}
}

// observeFunc passes every observation to f as well.
type observeFunc struct {
	prometheus.Histogram
	f func(float64)
}

func (o observeFunc) Observe(v float64) { o.f(v); o.Histogram.Observe(v) }

// TestMaxRequestsH2C drives the server with Go's own HTTP/2 client over
// cleartext: GOAWAY makes it reconnect, and no request fails.
func TestMaxRequestsH2C(t *testing.T) {
	// Record how many requests each connection carried when it closed.
	var mu sync.Mutex
	var perConn []uint64
	ts := startWith(t, Config{MaxRequests: 5, H2C: true}, func(s *Server) {
		s.perConn = observeFunc{s.perConn, func(n float64) {
			mu.Lock()
			perConn = append(perConn, uint64(n))
			mu.Unlock()
		}}
	})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var positions []string
	for i := 1; i <= 12; i++ {
		resp, err := client.Get(ts.url + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("request %d: protocol %s, want HTTP/2", i, resp.Proto)
		}
		positions = append(positions, resp.Header.Get(PositionHeader))
	}
	if got, want := strings.Join(positions, ","), "1,2,3,4,5,1,2,3,4,5,1,2"; got != want {
		t.Errorf("positions %s, want %s", got, want)
	}
	if got := ts.Stats().RecycledMaxRequests; got != 2 {
		t.Errorf("RecycledMaxRequests = %d, want 2", got)
	}
	// Exactly three connections carried the requests: 5, 5 and 2. Go's
	// client may race a spare dial against GOAWAY; such a connection
	// carries nothing and is reported, not counted.
	tr.CloseIdleConnections()
	waitFor(t, "connections to close", func() bool { return ts.Stats().ActiveConns == 0 })
	mu.Lock()
	defer mu.Unlock()
	var used []uint64
	for _, n := range perConn {
		if n > 0 {
			used = append(used, n)
		}
	}
	slices.Sort(used)
	if fmt.Sprint(used) != "[2 5 5]" {
		t.Errorf("requests per connection %v, want [2 5 5]", used)
	}
	if spare := ts.ln.n.Load() - int64(len(used)); spare != 0 {
		t.Logf("client opened %d spare connection(s) that carried no request", spare)
	}
}

// TestJitterPerConnection checks on the wire that each connection draws its
// own limit within the bounds, reproducibly from the seed.
func TestJitterPerConnection(t *testing.T) {
	limits := func() []int {
		ts := start(t, Config{MaxRequests: 10, MaxRequestsJitter: 0.5, Rand: rand.New(rand.NewPCG(42, 42))})
		var out []int
		for range 8 {
			conn := dialRaw(t, ts.addr)
			for i := 1; i <= 16; i++ {
				resp, _ := conn.get(t, "/")
				if resp.Close {
					out = append(out, i)
					break
				}
			}
		}
		return out
	}
	a, b := limits(), limits()
	if len(a) != 8 {
		t.Fatalf("only %d of 8 connections were recycled within 16 requests: %v", len(a), a)
	}
	distinct := map[int]bool{}
	for _, n := range a {
		if n < 5 || n > 15 {
			t.Errorf("connection limit %d outside [5, 15]", n)
		}
		distinct[n] = true
	}
	if len(distinct) < 2 {
		t.Errorf("all connections drew the same limit: %v", a)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed drew different limits: %v vs %v", a, b)
	}
}

func TestMaxConnAge(t *testing.T) {
	ts := start(t, Config{MaxConnAge: 300 * time.Millisecond})
	conn := dialRaw(t, ts.addr)
	resp, _ := conn.get(t, "/")
	if resp.Close {
		t.Fatal("first response closed a young connection")
	}
	time.Sleep(400 * time.Millisecond)
	// Expired but idle: the server must not have closed it.
	resp, _ = conn.get(t, "/")
	if !resp.Close {
		t.Fatal("response on an expired connection did not say Connection: close")
	}
	conn.expectEOF(t)
	if s := ts.Stats(); s.RecycledMaxAge != 1 || s.RecycledMaxRequests != 0 {
		t.Errorf("stats %+v, want one max_age recycle", s)
	}
}

func TestMaxConnAgeGrace(t *testing.T) {
	ts := start(t, Config{MaxConnAge: 100 * time.Millisecond, MaxConnAgeGrace: 100 * time.Millisecond})
	conn := dialRaw(t, ts.addr)
	if resp, _ := conn.get(t, "/"); resp.Close {
		t.Fatal("first response closed a young connection")
	}
	// Idle past age+grace: the server closes it on its own.
	conn.expectEOF(t)
	if s := ts.Stats(); s.RecycledIdleExpired != 1 {
		t.Errorf("RecycledIdleExpired = %d, want 1", s.RecycledIdleExpired)
	}
	waitFor(t, "active connections to drop to 0", func() bool { return ts.Stats().ActiveConns == 0 })
}

// TestMaxConnAgeGraceBusy: a request that started before expiry and is still
// running at age+grace finishes, and the connection closes once idle.
func TestMaxConnAgeGraceBusy(t *testing.T) {
	ts := start(t, Config{MaxConnAge: 100 * time.Millisecond, MaxConnAgeGrace: 50 * time.Millisecond, Delay: 400 * time.Millisecond})
	conn := dialRaw(t, ts.addr)
	resp, body := conn.get(t, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "backend=") {
		t.Fatalf("in-flight request failed: %d %q", resp.StatusCode, body)
	}
	conn.expectEOF(t)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGracefulShutdown: requests in flight when the server is told to stop
// all complete, each telling its client to reconnect, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	for _, h2c := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2c=%v", h2c), func(t *testing.T) {
			ts := start(t, Config{Delay: 300 * time.Millisecond, H2C: h2c})
			tr := &http.Transport{MaxConnsPerHost: 0}
			if h2c {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				tr.Protocols = &p
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			// A keep-alive connection that is idle when the drain starts.
			idle := dialRaw(t, ts.addr)
			idle.get(t, "/")

			const n = 20
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					resp, err := client.Get(ts.url + "/")
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					switch {
					case err != nil:
						errs <- err
					case resp.StatusCode != 200 || !strings.HasPrefix(string(b), "backend="):
						errs <- fmt.Errorf("status %d body %q", resp.StatusCode, b)
					case !h2c && !resp.Close:
						errs <- errors.New("response during drain did not say Connection: close")
					}
				})
			}
			waitFor(t, "all requests in flight", func() bool { return ts.rc.Stats().Requests == n+1 })
			if !ts.Ready() {
				t.Fatal("not ready while serving")
			}
			stopped := make(chan error, 1)
			go func() { stopped <- ts.stop(t) }()
			waitFor(t, "readiness to drop", func() bool { return !ts.Ready() })
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("in-flight request lost: %v", err)
			}
			if err := <-stopped; err != nil {
				t.Errorf("Serve after drain: %v", err)
			}
			if got := ts.Stats().Requests; got != n+1 {
				t.Errorf("served %d requests, want %d", got, n+1)
			}
			idle.expectEOF(t)
			// HTTP/1: each request had its own connection, plus the idle one,
			// and all were open when the drain began. h2c: Go's client may
			// dial spare connections and close them early, so at least the
			// idle one and the one carrying the streams.
			s := ts.Stats()
			if !h2c && s.RecycledShutdown != n+1 || h2c && (s.RecycledShutdown < 2 || s.RecycledShutdown > s.TotalConns) {
				t.Errorf("RecycledShutdown = %d of %d connections", s.RecycledShutdown, s.TotalConns)
			}
		})
	}
}

func TestShutdownGraceExceeded(t *testing.T) {
	ts := start(t, Config{Delay: 3 * time.Second, ShutdownGrace: 100 * time.Millisecond})
	conn := dialRaw(t, ts.addr)
	fmt.Fprintf(conn.c, "GET / HTTP/1.1\r\nHost: kaload\r\n\r\n")
	waitFor(t, "request in flight", func() bool { return ts.rc.Stats().Requests == 1 })
	err := ts.stop(t)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Serve = %v, want a deadline error", err)
	}
}

func TestReadyz(t *testing.T) {
	s, err := New(Config{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, mustRequest(t, "GET", "/readyz"))
	if rec.code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before Serve: %d, want 503", rec.code)
	}
	ts := start(t, Config{})
	for _, path := range []string{"/readyz", "/healthz"} {
		resp, body := dialRaw(t, ts.addr).get(t, path)
		if resp.StatusCode != 200 || body != "ok\n" {
			t.Errorf("%s while serving: %d %q", path, resp.StatusCode, body)
		}
	}
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(c int) {
	if r.code == 0 {
		r.code = c
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(200)
	return r.body.Write(b)
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://kaload"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMetrics checks that /metrics counts exactly what the test sent.
func TestMetrics(t *testing.T) {
	ts := start(t, Config{MaxRequests: 3})
	sent := 0
	for range 3 { // 3 connections x 3 requests, each ended by max_requests
		conn := dialRaw(t, ts.addr)
		for range 3 {
			conn.get(t, "/")
			sent++
		}
		conn.expectEOF(t)
	}
	conn := dialRaw(t, ts.addr)
	conn.get(t, "/")
	sent++
	waitFor(t, "closed connections to be counted", func() bool { return ts.Stats().ActiveConns == 1 })
	resp, body := conn.get(t, "/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("metric %s missing", name)
		}
	metrics:
		for _, m := range f.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("metric %s%v missing", name, labels)
		return 0
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"kaload_requests_total", nil, float64(sent)},
		{"kaload_http_requests_total", nil, float64(sent + 1)}, // + this scrape
		{"kaload_connections_total", nil, 4},
		{"kaload_connections_active", nil, 1},
		{"kaload_connections_recycled_total", []string{"reason", "max_requests"}, 3},
		{"kaload_connections_recycled_total", []string{"reason", "max_age"}, 0},
		{"kaload_connections_recycled_total", []string{"reason", "shutdown"}, 0},
		{"kaload_requests_per_connection", nil, 3}, // closed connections observed
	}
	for _, c := range checks {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sum := fams["kaload_requests_per_connection"].Metric[0].Histogram.GetSampleSum(); sum != 9 {
		t.Errorf("requests_per_connection sum = %v, want 9", sum)
	}
	// The standard collectors an operator watching a pod needs: at least
	// the goroutines this test knows of (the accept loop and this
	// connection's), and on Linux the process's open files (the listener
	// and both ends of this connection) and a resident set.
	if got := value("go_goroutines"); got < 2 {
		t.Errorf("go_goroutines = %v, want at least 2", got)
	}
	if runtime.GOOS == "linux" {
		if got := value("process_open_fds"); got < 3 {
			t.Errorf("process_open_fds = %v, want at least 3", got)
		}
		if got := value("process_resident_memory_bytes"); got < 1<<20 {
			t.Errorf("process_resident_memory_bytes = %v, want at least 1 MiB", got)
		}
	}
}

func TestResponseSize(t *testing.T) {
	ts := start(t, Config{})
	line := "backend=test-backend request=1 conn_request=1\n"
	for _, size := range []int{1, 10, len(line) - 1, len(line), len(line) + 1, len(line) + 2, 1000, 70000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			rec := &recorder{header: http.Header{}}
			writeBody(rec, []byte(line), size)
			if got := rec.body.Len(); got != size {
				t.Fatalf("body is %d bytes, want %d", got, size)
			}
			if size > len(line) && !strings.HasSuffix(rec.body.String(), "\n") {
				t.Errorf("padded body does not end with a newline")
			}
		})
	}
	// And through the real server with Content-Length.
	s2 := start(t, Config{ResponseSize: 5000})
	resp, body := dialRaw(t, s2.addr).get(t, "/")
	if len(body) != 5000 || resp.ContentLength != 5000 {
		t.Errorf("body %d bytes, Content-Length %d, want 5000", len(body), resp.ContentLength)
	}
	if !strings.HasPrefix(body, "backend=test-backend request=1 conn_request=1 ...") {
		t.Errorf("body starts %q", body[:60])
	}
	_ = ts
}

// TestCapacityQueues checks that requests beyond Capacity wait their turn:
// 10 concurrent requests at 20/s cannot all finish before 9 intervals pass.
func TestCapacityQueues(t *testing.T) {
	ts := start(t, Config{Capacity: 20})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	begin := time.Now()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			resp, err := client.Get(ts.url + "/")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if took := time.Since(begin); took < 450*time.Millisecond {
		t.Errorf("10 requests at capacity 20/s took %v; the queue admits one per 50ms, so at least 450ms", took)
	}
}

// TestNewValidates: every problem with Config is a *field.Error naming the
// Config field (cmd/kaload maps fields to flags), including the recycler's.
func TestNewValidates(t *testing.T) {
	tests := []struct {
		cfg    Config
		fields string // the *field.Error's fields
		want   string // the error's text
	}{
		{Config{MaxRequests: -1}, "MaxRequests", "MaxRequests: must not be negative, got -1"},
		{Config{MaxRequestsJitter: 1.5}, "MaxRequestsJitter", "MaxRequestsJitter: must be within 0..1, got 1.5"},
		{Config{MaxConnAge: -time.Second}, "MaxConnAge", "MaxConnAge: must not be negative, got -1s"},
		{Config{MaxConnAgeJitter: -0.1}, "MaxConnAgeJitter", "MaxConnAgeJitter: must be within 0..1, got -0.1"},
		{Config{MaxConnAgeGrace: -1}, "MaxConnAgeGrace", "MaxConnAgeGrace: must not be negative, got -1ns"},
		{Config{CPU: -1}, "CPU", "CPU: must not be negative, got -1ns"},
		{Config{Delay: -1}, "Delay", "Delay: must not be negative, got -1ns"},
		{Config{ResponseSize: -1}, "ResponseSize", "ResponseSize: must be within 0..1073741824, got -1"},
		{Config{Capacity: -1}, "Capacity", "Capacity: must be within 0..1e9 requests/s, got -1"},
		{Config{ShutdownGrace: -1}, "ShutdownGrace", "ShutdownGrace: must not be negative, got -1ns"},
		{Config{DrainDelay: -1}, "DrainDelay", "DrainDelay: must not be negative, got -1ns"},
		{Config{WebSocketCloseGrace: -1}, "WebSocketCloseGrace", "WebSocketCloseGrace: must not be negative, got -1ns"},
		{Config{StreamInterval: -1}, "StreamInterval", "StreamInterval: must not be negative, got -1ns"},
		{Config{TLSCertFile: "x.pem"}, "TLSCertFile TLSKeyFile", "TLSCertFile and TLSKeyFile: must be set together"},
		{Config{TLSCertFile: "/nonexistent/c.pem", TLSKeyFile: "/nonexistent/k.pem"}, "TLSCertFile", "TLSCertFile: open /nonexistent/c.pem: no such file or directory"},
		{Config{BackendHeader: "bad header"}, "BackendHeader", `BackendHeader: "bad header" is not a valid header name`},
	}
	for _, tt := range tests {
		t.Run(tt.fields, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
			}
			var fe *field.Error
			if !errors.As(err, &fe) || strings.Join(fe.Fields, " ") != tt.fields {
				t.Errorf("New(%+v): field error %v, want fields %s", tt.cfg, fe, tt.fields)
			}
		})
	}
	_, err := New(Config{MaxRequests: -1, CPU: -1})
	if want := "CPU: must not be negative, got -1ns\nMaxRequests: must not be negative, got -1"; err == nil || err.Error() != want {
		t.Errorf("two bad fields: %v, want %q", err, want)
	}
}

func TestServeTwice(t *testing.T) {
	ts := start(t, Config{})
	waitFor(t, "the first Serve to start", ts.Ready)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ts.Serve(context.Background(), ln); err == nil {
		t.Error("second Serve succeeded")
	}
}

// TestDrainDelay: after ctx ends, the server still accepts connections for
// DrainDelay, answers /readyz 503 and closes every connection after its
// response, then exits cleanly.
func TestDrainDelay(t *testing.T) {
	ts := start(t, Config{DrainDelay: 2 * time.Second})
	waitFor(t, "serving", ts.Ready)
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop(t) }()
	waitFor(t, "readiness to drop", func() bool { return !ts.Ready() })
	conn := dialRaw(t, ts.addr)
	resp, body := conn.get(t, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Errorf("/readyz while draining: %d %q close=%v, want 503 and close", resp.StatusCode, body, resp.Close)
	}
	resp, body = dialRaw(t, ts.addr).get(t, "/")
	if resp.StatusCode != http.StatusOK || !resp.Close || !strings.HasPrefix(body, "backend=") {
		t.Errorf("load request while draining: %d %q close=%v, want 200 and close", resp.StatusCode, body, resp.Close)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// Past the shared table, HTTP/1 number headers live in a slot of the
// connection's state that its next request rewrites: the values on the wire
// must still be right, request after request, on interleaved connections.
func TestLargeNumberHeadersHTTP1(t *testing.T) {
	ts := startWith(t, Config{}, func(s *Server) { s.requests.Store(9997) })
	a, b := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	want := uint64(9997)
	for i := range 8 {
		c := a
		if i%3 == 2 {
			c = b
		}
		want++
		resp, body := c.get(t, "/")
		if got := resp.Header.Get(TotalHeader); got != strconv.FormatUint(want, 10) {
			t.Fatalf("request %d: %s %q, want %d", i, TotalHeader, got, want)
		}
		if !strings.Contains(body, "request="+strconv.FormatUint(want, 10)+" ") {
			t.Fatalf("request %d: body %q does not match the header", i, body)
		}
	}
}
