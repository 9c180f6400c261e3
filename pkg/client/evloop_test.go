//go:build linux

package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/hostile"
	"github.com/kaload/kaload/pkg/server"
)

// The event-loop engine holds connections without a goroutine each: while
// 200 requests wait on a silent server, the process runs about one
// goroutine per server connection (the test's server) and a few more; the
// goroutine engine adds one per slot.
func TestLoopsHoldNoGoroutinePerConnection(t *testing.T) {
	const conns = 200
	var accepted atomic.Int64
	url := rawServer(t, func(c net.Conn) {
		accepted.Add(1)
		hostile.Silent(c)
	})
	for _, tc := range []struct {
		loops bool
		max   int // goroutines at most while every request waits
	}{{true, conns + conns/4}, {false, 1 << 30}} {
		func() {
			defer func(old bool) { eventLoops = old }(eventLoops)
			eventLoops = tc.loops
			accepted.Store(0)
			before := runtime.NumGoroutine()
			defer func() {
				// the server's goroutines of this run end before the next
				for i := 0; runtime.NumGoroutine() > before && i < 300; i++ {
					time.Sleep(10 * time.Millisecond)
				}
			}()
			ctx, cancel := context.WithCancel(context.Background())
			abort := make(chan struct{})
			done := make(chan Stats, 1)
			go func() {
				st, _ := Run(ctx, Config{URL: url, Connections: conns, Duration: time.Hour, Timeout: time.Minute, Abort: abort}, nil)
				done <- st
			}()
			for i := 0; accepted.Load() < conns && i < 1000; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			during := runtime.NumGoroutine() - before
			t.Logf("loops=%v: %d goroutines while %d requests waited", tc.loops, during, conns)
			cancel()
			close(abort)
			st := <-done
			if st.Requests != conns || st.Connections != conns {
				t.Fatalf("loops=%v: stats %+v", tc.loops, st)
			}
			if during > tc.max {
				t.Errorf("loops=%v: %d goroutines while %d requests waited, want at most %d", tc.loops, during, conns, tc.max)
			}
			if !tc.loops && during < conns+conns/2 {
				t.Errorf("goroutine engine: %d goroutines for %d slots: the check counts nothing", during, conns)
			}
		}()
	}
}

// Requests expire in the order they were sent while others complete in
// between (the in-flight FIFO loses members from its middle): every
// unanswered request fails with a timeout no earlier than its own
// deadline, every answered one succeeds.
func TestLoopDeadlines(t *testing.T) { bothEngines(t, testLoopDeadlines) }

func testLoopDeadlines(t *testing.T) {
	const timeout = 250 * time.Millisecond
	var n atomic.Int64
	url := rawServer(t, func(c net.Conn) {
		if n.Add(1)%2 == 0 {
			hostile.Silent(c)
			return
		}
		br := bufio.NewReader(c)
		for readRequest(br) == nil {
			time.Sleep(time.Duration(n.Load()%7) * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	var c collector
	// A count, not a duration: no claimed request is dropped at the stop.
	st, err := Run(context.Background(), Config{URL: url, Connections: 6, Rate: 200, Requests: 120, Timeout: timeout}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 120)
	var failed, ok int
	for _, r := range c.res {
		if r.Failed() {
			failed++
			if !strings.Contains(r.Err, "timeout") || r.Latency < timeout || r.Latency > timeout+3*time.Second {
				t.Errorf("seq %d: %q after %v, want a timeout after %v", r.Seq, r.Err, r.Latency, timeout)
			}
		} else {
			ok++
		}
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("%d failed, %d answered: want both", failed, ok)
	}
}

// A server that writes its answers a few bytes at a time: heads, chunk
// lines and bodies straddle reads at every point, and several answers
// follow each other on one connection.
func TestLoopPartialHeads(t *testing.T) { bothEngines(t, testLoopPartialHeads) }

func testLoopPartialHeads(t *testing.T) {
	resp := []string{
		"HTTP/1.1 200 OK\r\nAccept-Request-hostname: pod-slow\r\nTotal-Request: 7\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nAccept-Request-hostname: pod-slow\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: 1\r\n\r\n",
	}
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; readRequest(br) == nil; i++ {
			r := resp[i%2]
			for len(r) > 0 {
				k := min(len(r), 1+i%4)
				if _, err := io.WriteString(c, r[:k]); err != nil {
					return
				}
				r = r[k:]
				time.Sleep(100 * time.Microsecond)
			}
		}
	})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 2, Requests: 12, Timeout: 10 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 12)
	if st.Errors != 0 || st.Connections != 2 {
		t.Fatalf("stats %+v: %s", st, firstErr(c.res))
	}
	for _, r := range c.res {
		first := r.ConnReq%2 == 1
		if r.Backend != "pod-slow" || first && (r.Status != 200 || r.Bytes != 5 || r.ServerTotal != 7) ||
			!first && (r.Status != 201 || r.Bytes != 7 || r.ServerTotal != -1) {
			t.Errorf("result %+v", r)
		}
	}
}

// A name is looked up for every dial, as Go's dialer does, and its
// addresses tried in turn: "localhost" against servers on 127.0.0.1 only
// works whichever family comes first, a server closing every second
// connection's request makes 15 dials for 30 requests, and an abort ends
// requests whose connections wait on a silent server.
func TestLoopResolvesNames(t *testing.T) {
	defer func(old bool) { eventLoops = old }(eventLoops)
	eventLoops = true
	url, _ := startServer(t, server.Config{Hostname: "pod-a", MaxRequests: 2})
	url = strings.Replace(url, "127.0.0.1", "localhost", 1)
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 3, Requests: 30, Timeout: 5 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 30)
	if st.Errors != 0 || st.Connections != 15 || st.Closes[CloseServer] != 15 {
		t.Fatalf("stats %+v: %s", st, firstErr(c.res))
	}
	for _, r := range c.res {
		if r.Backend != "pod-a" || r.Status != 200 {
			t.Fatalf("result %+v", r)
		}
	}

	silent := strings.Replace(rawServer(t, hostile.Silent), "127.0.0.1", "localhost", 1)
	abort := make(chan struct{})
	time.AfterFunc(200*time.Millisecond, func() { close(abort) })
	c = collector{}
	st, err = Run(context.Background(), Config{URL: silent, Connections: 4, Duration: time.Hour, Timeout: time.Minute, Abort: abort}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 4)
	for _, r := range c.res {
		if r.Err != ErrInterrupted || r.Latency > 5*time.Second {
			t.Errorf("result %+v, want %q", r, ErrInterrupted)
		}
	}
}

// A refused dial reads as the goroutine engine's does: the report's hints
// match on it.
func TestLoopDialErrorText(t *testing.T) { bothEngines(t, testLoopDialErrorText) }

func testLoopDialErrorText(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: "http://" + addr + "/", Connections: 2, Requests: 4, Timeout: 2 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 4)
	want := "dial " + addr + ": dial tcp " + addr + ": connect: connection refused"
	for _, r := range c.res {
		if r.Err != want || r.Conn != 0 || r.Close != CloseNone || r.Backend != "" {
			t.Errorf("result %+v, want error %q", r, want)
		}
	}
	if st.DialErrors != 4 || st.Connections != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The two engines make the same Results and Stats of the same scripted
// servers (one slot, so the order is fixed): status, backend, connection
// and its request count, close reason, bytes, Total-Request, the error's
// cause, retries and closes. Timings and the error's address part differ.
func TestEnginesAgree(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nAccept-Request-hostname: pod-a\r\nTotal-Request: 3\r\nContent-Length: 2\r\n\r\nok"
	// script answers the i-th request (0-based) of the k-th connection
	// (0-based); "" closes the connection silently, "RST" resets it.
	for _, tc := range []struct {
		name   string
		cfg    Config
		script func(k, i int) string
	}{
		{"keep-alive and server close", Config{}, func(k, i int) string {
			if i == 2 {
				return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye"
			}
			return ok
		}},
		{"silent close after two", Config{}, func(k, i int) string {
			if i == 2 {
				return ""
			}
			return ok
		}},
		{"silent close after two, POST", Config{Method: "POST"}, func(k, i int) string {
			if i == 2 {
				return ""
			}
			return ok
		}},
		{"reset before the first answer", Config{}, func(k, i int) string {
			if k%2 == 0 {
				return "RST"
			}
			return ok
		}},
		{"malformed third", Config{}, func(k, i int) string {
			if i == 2 {
				return "HTTP/1.1 2x0 OK\r\n\r\n"
			}
			return ok
		}},
		{"cut body after the backend", Config{}, func(k, i int) string {
			if i == 1 {
				return "HTTP/1.1 200 OK\r\nAccept-Request-hostname: pod-cut\r\nContent-Length: 100\r\n\r\npartial|RST"
			}
			return ok
		}},
		{"body until close", Config{}, func(k, i int) string {
			return "HTTP/1.1 200 OK\r\nAccept-Request-hostname: pod-b\r\n\r\nuntil the end|CLOSE"
		}},
		{"chunked after 1xx", Config{}, func(k, i int) string {
			return "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
		}},
		{"HEAD", Config{Method: "HEAD"}, func(k, i int) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
		}},
		{"client limit", Config{MaxRequestsPerConn: 3}, func(k, i int) string { return ok }},
		{"two answers per request", Config{}, func(k, i int) string { return ok + ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int64
			url := rawServer(t, func(c net.Conn) {
				k := int(conns.Add(1) - 1)
				br := bufio.NewReader(c)
				for i := 0; readRequest(br) == nil; i++ {
					ans := tc.script(k, i)
					var end string
					if j := strings.LastIndexByte(ans, '|'); j >= 0 {
						ans, end = ans[:j], ans[j+1:]
					}
					if ans == "RST" || ans == "" {
						end, ans = ans, ""
					}
					io.WriteString(c, ans)
					switch end {
					case "RST":
						time.Sleep(5 * time.Millisecond)
						c.(*net.TCPConn).SetLinger(0)
						return
					case "CLOSE", "":
						if end == "CLOSE" || ans == "" {
							return
						}
					}
				}
			})
			run := func(loops bool) (Stats, []Result) {
				defer func(old bool) { eventLoops = old }(eventLoops)
				eventLoops = loops
				conns.Store(0)
				cfg := tc.cfg
				cfg.URL, cfg.Connections, cfg.Requests, cfg.Timeout = url, 1, 12, 5*time.Second
				var c collector
				st, err := Run(context.Background(), cfg, &c)
				if err != nil {
					t.Fatal(err)
				}
				checkResults(t, st, c.res, 12)
				slices.SortFunc(c.res, func(a, b Result) int { return int(a.Seq) - int(b.Seq) })
				return st, c.res
			}
			gs, gres := run(false)
			ls, lres := run(true)
			gs.Elapsed, ls.Elapsed = 0, 0
			if gs.Requests != ls.Requests || gs.Errors != ls.Errors || gs.Connections != ls.Connections ||
				gs.DialErrors != ls.DialErrors || gs.Closes != ls.Closes || gs.Retries != ls.Retries {
				t.Errorf("stats differ:\ngoroutines %+v\nevloop     %+v", gs, ls)
			}
			for i := range gres {
				g, l := gres[i], lres[i]
				if cause(g.Err) != cause(l.Err) {
					t.Errorf("seq %d: error %q on goroutines, %q on evloop", i, g.Err, l.Err)
				}
				g.Start, g.Delay, g.Latency, g.Err = 0, 0, 0, ""
				l.Start, l.Delay, l.Latency, l.Err = 0, 0, 0, ""
				if g != l {
					t.Errorf("seq %d:\ngoroutines %+v\nevloop     %+v", i, g, l)
				}
			}
		})
	}
}

// cause is an error text's last part: "read tcp A->B: read: connection
// reset by peer" and "read tcp: connection reset by peer" agree.
func cause(err string) string {
	if i := strings.LastIndex(err, ": "); i >= 0 {
		return err[i+2:]
	}
	return err
}
