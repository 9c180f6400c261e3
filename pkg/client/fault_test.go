package client

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/kaload/kaload/internal/hostile"
	"github.com/kaload/kaload/pkg/server"
)

// rawServer serves every accepted connection with handle until the test ends.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hostile.Serve(ln, handle))
	return "http://" + ln.Addr().String() + "/"
}

// Faulty backends: the run goes on, every request is accounted for, and no
// request outlives its timeout by much.
func TestFaults(t *testing.T) { bothEngines(t, testFaults) }

func testFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name      string
		handle    func(c net.Conn)
		allFail   bool
		errSubstr string
	}{
		{"garbage", func(c net.Conn) {
			br := bufio.NewReader(c)
			for readRequest(br) == nil {
				io.WriteString(c, "HELLO THERE\r\n\r\n")
			}
		}, true, "malformed status line"},
		{"reset", func(c net.Conn) {
			readRequest(bufio.NewReader(c))
			c.(*net.TCPConn).SetLinger(0) // close with RST
		}, true, ""},
		{"silent", func(c net.Conn) {
			io.Copy(io.Discard, c) // reads, never answers
		}, true, "timeout"},
		{"stalled body", func(c net.Conn) {
			readRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			io.Copy(io.Discard, c)
		}, true, "timeout"},
		{"every third answer malformed", func(c net.Conn) {
			br := bufio.NewReader(c)
			for i := 1; readRequest(br) == nil; i++ {
				if i%3 == 0 {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}, false, "malformed Content-Length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, tc.handle)
			var c collector
			began := time.Now()
			st, err := Run(context.Background(), Config{URL: url, Connections: 3, Requests: 12, Timeout: timeout}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 12)
			if tc.allFail && st.Errors != 12 || !tc.allFail && (st.Errors == 0 || st.Errors == 12) {
				t.Fatalf("%d errors of 12", st.Errors)
			}
			for _, r := range c.res {
				if r.Failed() && (!strings.Contains(r.Err, tc.errSubstr) || r.Close != CloseError) {
					t.Errorf("error result %+v, want error containing %q and close reason error", r, tc.errSubstr)
				}
				if r.Latency > 2*timeout+time.Second { // a timed-out request may also have redialled once
					t.Errorf("request %d took %v with a %v timeout", r.Seq, r.Latency, timeout)
				}
			}
			// 12 requests over 3 slots: 4 rounds of at most one timeout each
			if el := time.Since(began); el > 4*timeout+5*time.Second {
				t.Errorf("run took %v", el)
			}
		})
	}
}

// A backend that stops mid-run: later requests fail to connect, yet every one
// is sent and recorded.
func TestBackendStopsMidRun(t *testing.T) { bothEngines(t, testBackendStopsMidRun) }

func testBackendStopsMidRun(t *testing.T) {
	var (
		n    atomic.Int64
		once sync.Once
	)
	// The handler learns of ts through an atomic: the event-loop engine's
	// raw syscalls give the race detector no edge from this goroutine to
	// the server's.
	var tsp atomic.Pointer[httptest.Server]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 50 {
			once.Do(func() {
				go func() {
					ts := tsp.Load()
					ts.Listener.Close()
					ts.CloseClientConnections()
				}()
			})
		}
		io.WriteString(w, "ok")
	}))
	tsp.Store(ts)
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: ts.URL, Connections: 4, Requests: 400, Timeout: time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 400)
	if st.Errors == 0 || st.Errors == 400 || st.DialErrors == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// tinyBalancer forwards each new connection to the next backend in turn, as
// kube-proxy's per-connection choice does.
func tinyBalancer(t *testing.T, backends ...string) string {
	t.Helper()
	var next atomic.Int64
	return rawServer(t, func(c net.Conn) {
		addr := backends[int(next.Add(1)-1)%len(backends)]
		b, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer b.Close()
		done := make(chan struct{})
		go func() {
			io.Copy(b, c)
			b.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		io.Copy(c, b)
		c.Close() // also ends the copy above
		<-done
	})
}

func TestBalancerRecycling(t *testing.T) { bothEngines(t, testBalancerRecycling) }

func testBalancerRecycling(t *testing.T) {
	for _, tc := range []struct {
		name        string
		serverMax   int
		clientMax   int
		wantBackend int
	}{
		{"keep-alive pins one backend", 0, 0, 1},
		{"server recycling reaches both", 5, 0, 2},
		{"client recycling reaches both", 0, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []string
			for _, name := range []string{"pod-a", "pod-b"} {
				u, _ := startServer(t, server.Config{Hostname: name, MaxRequests: tc.serverMax})
				addrs = append(addrs, strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/"))
			}
			url := tinyBalancer(t, addrs...)
			var c collector
			st, err := Run(context.Background(), Config{URL: url, Connections: 1, Requests: 40, MaxRequestsPerConn: tc.clientMax}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 40)
			if st.Errors != 0 {
				t.Fatalf("errors: %s", firstErr(c.res))
			}
			perBackend := map[string]int{}
			perConn := map[uint64]string{}
			for _, r := range c.res {
				perBackend[r.Backend]++
				if b, ok := perConn[r.Conn]; ok && b != r.Backend {
					t.Errorf("connection %d answered by %s and %s", r.Conn, b, r.Backend)
				}
				perConn[r.Conn] = r.Backend
			}
			if len(perBackend) != tc.wantBackend {
				t.Fatalf("backends %v, want %d of them", perBackend, tc.wantBackend)
			}
			if tc.wantBackend == 2 && (perBackend["pod-a"] != 20 || perBackend["pod-b"] != 20) {
				t.Errorf("alternating connections of 5 requests should split 20/20: %v", perBackend)
			}
		})
	}
}

// Ctrl-C while every connection waits on a silent server: Run returns once
// the requests in flight time out, records them, and starts no new ones.
func TestCancelWithRequestsInFlight(t *testing.T) { bothEngines(t, testCancelWithRequestsInFlight) }

func testCancelWithRequestsInFlight(t *testing.T) {
	url := rawServer(t, hostile.Silent)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	var c collector
	st, err := Run(ctx, Config{URL: url, Connections: 3, Duration: time.Hour, Timeout: 400 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	for _, r := range c.res {
		if !strings.Contains(r.Err, "timeout") {
			t.Errorf("in-flight request ended with %+v, want a timeout", r)
		}
	}
}

// Open model with a duration: requests due at or after the limit are not sent.
func TestOpenModelDuration(t *testing.T) { bothEngines(t, testOpenModelDuration) }

func testOpenModelDuration(t *testing.T) {
	url, _ := startServer(t, server.Config{Hostname: "x"})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 2, Rate: 50, Duration: 300 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	// due at 0, 20, ..., 280 ms; a slot still busy when the limit strikes
	// drops what it had not started, so a loaded machine may send fewer
	if st.Requests < 5 || st.Requests > 15 || st.Errors != 0 {
		t.Fatalf("stats %+v %s", st, firstErr(c.res))
	}
	checkResults(t, st, c.res, st.Requests)
	for _, r := range c.res {
		if r.Start != time.Duration(r.Seq)*20*time.Millisecond || r.Start >= 300*time.Millisecond {
			t.Errorf("seq %d intended at %v", r.Seq, r.Start)
		}
	}
}

// After a backend goes away, failed dials carry no backend name: an error
// is attributed only to a backend that was on its connection.
func TestDialErrorHasNoBackend(t *testing.T) { bothEngines(t, testDialErrorHasNoBackend) }

func testDialErrorHasNoBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		ln.Close() // no further connections
		br := bufio.NewReader(c)
		readRequest(br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nAccept-Request-hostname: pod-a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	}()
	defer ln.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: "http://" + addr, Connections: 1, Requests: 3, Timeout: 2 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	for _, r := range c.res {
		if (r.Seq == 0) != (r.Backend == "pod-a") || (r.Seq > 0 && (r.Conn != 0 || r.Status != 0 || !r.Failed())) {
			t.Errorf("result %+v", r)
		}
	}
}

// A response cut by a reset after its header named the backend is that
// backend's failure, not "no backend answered": over HTTP/1 (the engine's
// parser) and HTTP/2 (a handler that aborts mid-body, RST_STREAM).
func TestCutBodyKeepsBackend(t *testing.T) { bothEngines(t, testCutBodyKeepsBackend) }

func testCutBodyKeepsBackend(t *testing.T) {
	h1 := rawServer(t, func(c net.Conn) {
		readRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nAccept-Request-hostname: pod-cut\r\nContent-Length: 100\r\n\r\npartial")
		time.Sleep(20 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0) // close with RST
	})
	h2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Request-hostname", "pod-cut")
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond)
		panic(http.ErrAbortHandler) // resets the stream
	}))
	h2.Config.Protocols = new(http.Protocols)
	h2.Config.Protocols.SetUnencryptedHTTP2(true)
	h2.Config.ErrorLog = log.New(io.Discard, "", 0)
	h2.Start()
	defer h2.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"http1", Config{URL: h1}},
		{"h2c", Config{URL: h2.URL, H2C: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c collector
			tc.cfg.Connections, tc.cfg.Requests, tc.cfg.Timeout = 2, 4, 5*time.Second
			st, err := Run(context.Background(), tc.cfg, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 4)
			for _, r := range c.res {
				if !r.Failed() || r.Err == "" || r.Backend != "pod-cut" || r.Status != 200 {
					t.Errorf("result %+v, want a failed request of pod-cut", r)
				}
			}
		})
	}
}

// Closing Abort ends the requests in flight at once, over HTTP/1 and
// HTTP/2, and records each as interrupted; cancelling ctx alone would
// let them run to their 10 s timeout.
func TestAbortEndsRequestsInFlight(t *testing.T) { bothEngines(t, testAbortEndsRequestsInFlight) }

func testAbortEndsRequestsInFlight(t *testing.T) {
	silent := rawServer(t, hostile.Silent)
	h2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	h2.Config.Protocols = new(http.Protocols)
	h2.Config.Protocols.SetUnencryptedHTTP2(true)
	h2.Start()
	defer h2.Close()
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for { // reads every message, answers none
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer ws.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, stuckHealth{})
	reflection.Register(gs)
	go gs.Serve(ln)
	defer gs.Stop()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"http1", Config{URL: silent}},
		{"h2c", Config{URL: h2.URL, H2C: true}},
		{"websocket", Config{URL: "ws" + strings.TrimPrefix(ws.URL, "http")}},
		{"grpc", Config{URL: "grpc://" + ln.Addr().String(), Call: "grpc.health.v1.Health/Check"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			abort := make(chan struct{})
			go func() {
				time.Sleep(200 * time.Millisecond)
				cancel() // the first Ctrl-C: no new requests
				time.Sleep(200 * time.Millisecond)
				close(abort) // the second: end the ones in flight
			}()
			tc.cfg.Connections, tc.cfg.Duration, tc.cfg.Timeout, tc.cfg.Abort = 3, time.Hour, 10*time.Second, abort
			var c collector
			began := time.Now()
			st, err := Run(ctx, tc.cfg, &c)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(began); el > 5*time.Second {
				t.Errorf("Run returned after %v; the abort came at 400ms", el)
			}
			reqs := slices.DeleteFunc(slices.Clone(c.res), func(r Result) bool { return r.Kind == KindSocket })
			checkResults(t, st, reqs, 3)
			for _, r := range reqs {
				if r.Err != ErrInterrupted || r.Latency > 5*time.Second {
					t.Errorf("result %+v, want %q", r, ErrInterrupted)
				}
			}
		})
	}
	// An abort alone also stops the run.
	abort := make(chan struct{})
	close(abort)
	st, err := Run(context.Background(), Config{URL: silent, Connections: 2, Duration: time.Hour, Timeout: 10 * time.Second, Abort: abort}, nil)
	if err != nil || st.Requests > 2 {
		t.Errorf("pre-closed abort: %+v %v", st, err)
	}
}

// stuckHealth answers no health check: each waits for the client to give up.
type stuckHealth struct {
	healthpb.UnimplementedHealthServer
}

func (stuckHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
