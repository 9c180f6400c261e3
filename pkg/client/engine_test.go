package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/field"
	"github.com/kaload/kaload/pkg/server"
)

// The proof: the server recycles every 5 requests, so 1000 requests
// over 10 connections need exactly 200 connections and none fails.
func TestRecyclingRealServer(t *testing.T) { bothEngines(t, testRecyclingRealServer) }

func testRecyclingRealServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h2c    bool
		reason CloseReason
	}{
		{"http1", false, CloseServer},
		{"h2c", true, CloseGoAway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, srv := startServer(t, server.Config{Hostname: "pod-a", MaxRequests: 5, H2C: tc.h2c})
			var c collector
			st, err := Run(context.Background(), Config{URL: url, Connections: 10, Requests: 1000, H2C: tc.h2c, Timeout: 10 * time.Second}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 1000)
			if st.Errors != 0 {
				t.Fatalf("%d errors, first: %q", st.Errors, firstErr(c.res))
			}
			if st.Connections != 200 {
				t.Errorf("dialled %d connections, want 200 (stats %+v)", st.Connections, st)
			}
			conns := map[uint64]uint32{}
			closes := 0
			for _, r := range c.res {
				if r.Backend != "pod-a" || r.Status != 200 {
					t.Fatalf("result %+v", r)
				}
				if r.ConnReq > conns[r.Conn] {
					conns[r.Conn] = r.ConnReq
				}
				if r.Close == tc.reason {
					closes++
					if r.ConnReq != 5 {
						t.Errorf("connection %d closed after request %d, want 5", r.Conn, r.ConnReq)
					}
				} else if r.Close != CloseNone {
					t.Errorf("unexpected close reason %v", r.Close)
				}
				if r.ServerTotal < 1 || r.ServerTotal > 1000 {
					t.Errorf("Total-Request %d", r.ServerTotal)
				}
			}
			if len(conns) != 200 || closes != 200 || st.Closes[tc.reason] != 200 {
				t.Errorf("%d connection ids, %d %v closes in results, %d in stats; want 200", len(conns), closes, tc.reason, st.Closes[tc.reason])
			}
			for id, n := range conns {
				if n != 5 {
					t.Errorf("connection %d carried %d requests, want 5", id, n)
				}
			}
			if got := srv.Stats().Requests; got != 1000 {
				t.Errorf("server counted %d requests", got)
			}
		})
	}
}

func firstErr(res []Result) string {
	for _, r := range res {
		if r.Failed() {
			return fmt.Sprintf("%+v", r)
		}
	}
	return ""
}

// Every one of -n is sent, whatever N % C.
func TestExactRequestCount(t *testing.T) { bothEngines(t, testExactRequestCount) }

func testExactRequestCount(t *testing.T) {
	for _, tc := range []struct {
		n int64
		c int
	}{{1, 10}, {7, 3}, {1003, 10}, {99, 50}} {
		t.Run(fmt.Sprintf("n%d_c%d", tc.n, tc.c), func(t *testing.T) {
			var served atomic.Int64
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				io.WriteString(w, "ok")
			}))
			defer ts.Close()
			var c collector
			st, err := Run(context.Background(), Config{URL: ts.URL, Connections: tc.c, Requests: tc.n}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, tc.n)
			if served.Load() != tc.n || st.Errors != 0 {
				t.Fatalf("server saw %d, errors %d", served.Load(), st.Errors)
			}
			if want := min(int64(tc.c), tc.n); st.Connections != want {
				t.Errorf("%d connections, want %d", st.Connections, want)
			}
			for _, r := range c.res {
				// no backend header: the remote address names the backend
				if r.Backend != ts.Listener.Addr().String() || r.Bytes != 2 || r.ServerTotal != -1 {
					t.Fatalf("result %+v", r)
				}
			}
		})
	}
}

func TestClientLimit(t *testing.T) { bothEngines(t, testClientLimit) }

func testClientLimit(t *testing.T) {
	url, _ := startServer(t, server.Config{Hostname: "x"})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 2, Requests: 30, MaxRequestsPerConn: 3}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 30)
	if st.Connections != 10 || st.Closes[CloseClientLimit] != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRequestShape(t *testing.T) { bothEngines(t, testRequestShape) }

func testRequestShape(t *testing.T) {
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %s host=%s x=%s body=%s ua=%s", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Test"), b, r.UserAgent())
		w.Header().Set("Who", "b1")
	}))
	defer ts.Close()
	for _, h2c := range []bool{false} {
		var c collector
		cfg := Config{URL: ts.URL + "/p?q=1", Requests: 1, Method: "PUT", Body: []byte("hello"), H2C: h2c,
			Header: http.Header{"X-Test": {"v"}, "Host": {"example.test"}}, BackendHeader: "who"}
		if _, err := Run(context.Background(), cfg, &c); err != nil {
			t.Fatal(err)
		}
		if want := "PUT /p?q=1 host=example.test x=v body=hello ua=kaload"; <-got != want {
			t.Errorf("server saw something else than %q", want)
		}
		if c.res[0].Backend != "b1" {
			t.Errorf("backend %q", c.res[0].Backend)
		}
	}
}

// An idle connection the server closed without saying so is redialled and
// the request retried; the run sees no error.
func TestSilentCloseRetried(t *testing.T) { bothEngines(t, testSilentCloseRetried) }

func testSilentCloseRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// one keep-alive response, then a silent close
				defer c.Close()
				br := bufio.NewReader(c)
				if readRequest(br) != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	var c collector
	st, err := Run(context.Background(), Config{URL: "http://" + ln.Addr().String(), Connections: 1, Requests: 10}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 10)
	if st.Errors != 0 {
		t.Fatalf("errors: %s", firstErr(c.res))
	}
	if st.Retries == 0 || st.Closes[CloseEOF] != st.Retries || st.Connections != 10 {
		t.Fatalf("stats %+v", st)
	}
	// the results say so too: each connection's one request ended it by eof
	eofs := 0
	for _, r := range c.res {
		if r.Close == CloseEOF {
			eofs++
		}
	}
	if int64(eofs) != st.Closes[CloseEOF] {
		t.Fatalf("%d results closed by eof, stats %d", eofs, st.Closes[CloseEOF])
	}

	// A POST that was written is not sent twice: it fails unless the write
	// itself showed the connection dead. Each connection answers once, so
	// every success took a connection of its own.
	c = collector{}
	st, err = Run(context.Background(), Config{URL: "http://" + ln.Addr().String(), Connections: 1, Requests: 10, Method: "POST"}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 10)
	if st.Errors == 0 || st.Connections != 10-st.Errors {
		t.Fatalf("POST: stats %+v", st)
	}
}

// Config.Dial replaces the dialer; the URL's host still names the request.
func TestCustomDial(t *testing.T) {
	got := make(chan string, 3)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Host }))
	defer ts.Close()
	var dialled atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled.Add(1)
		if addr != "svc.test:80" {
			return nil, fmt.Errorf("dialled %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, ts.Listener.Addr().String())
	}
	var c collector
	st, err := Run(context.Background(), Config{URL: "http://svc.test/", Requests: 3, Connections: 1, Dial: dial}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	if st.Errors != 0 || dialled.Load() != 1 || <-got != "svc.test" {
		t.Fatalf("stats %+v, dialled %d, %s", st, dialled.Load(), firstErr(c.res))
	}
}

// readRequest consumes one request head (the tests send no bodies).
func readRequest(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// Open model: a stall of the server shows in the latency of every request
// that was due during it (no coordinated omission).
func TestOpenModelLatencyFromIntendedTime(t *testing.T) {
	bothEngines(t, testOpenModelLatencyFromIntendedTime)
}

func testOpenModelLatencyFromIntendedTime(t *testing.T) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: ts.URL, Connections: 1, Requests: 20, Rate: 100}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 20)
	for _, r := range c.res {
		if want := time.Duration(r.Seq) * 10 * time.Millisecond; r.Start != want {
			t.Errorf("seq %d starts at %v, want intended %v", r.Seq, r.Start, want)
		}
		// request k was due at 10k ms but could only go after the 300 ms stall
		if r.Seq > 0 && r.Seq < 25 {
			if floor := 300*time.Millisecond - r.Start; r.Latency < floor {
				t.Errorf("seq %d latency %v hides the stall (want >= %v)", r.Seq, r.Latency, floor)
			}
		}
	}
	if st.Elapsed < 190*time.Millisecond {
		t.Errorf("20 requests at 100/s took only %v", st.Elapsed)
	}
}

// Cancelling ctx stops the run; whatever was sent is recorded.
func TestCancelStops(t *testing.T) { bothEngines(t, testCancelStops) }

func testCancelStops(t *testing.T) {
	url, _ := startServer(t, server.Config{Hostname: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	var c collector
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	st, err := Run(ctx, Config{URL: url, Connections: 4, Requests: 1 << 40}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests == 0 || int64(len(c.res)) != st.Requests || st.Errors != 0 {
		t.Fatalf("stats %+v, %d results", st, len(c.res))
	}
	checkResults(t, st, c.res, st.Requests)
}

func TestDurationLimit(t *testing.T) { bothEngines(t, testDurationLimit) }

func testDurationLimit(t *testing.T) {
	url, _ := startServer(t, server.Config{Hostname: "x"})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 2, Duration: 200 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests == 0 || st.Errors != 0 || st.Elapsed < 200*time.Millisecond {
		t.Fatalf("stats %+v", st)
	}
	checkResults(t, st, c.res, st.Requests)
}

// TestValidate: every problem is a *field.Error that names the Config field
// (a library user's words; cmd/kaload maps fields to flags).
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // the error's text; "" = valid
	}{
		{Config{URL: "http://h/", Requests: 1}, ""},
		{Config{URL: "https://h/", Duration: time.Second, HTTP2: true}, ""},
		{Config{Requests: 1}, "URL: required"},
		{Config{URL: "ftp://h/", Requests: 1}, `URL: scheme "ftp" is not http, https, ws, wss, grpc or grpcs`},
		{Config{URL: "http://h:99999/", Requests: 1}, `URL: bad port "99999"`},
		{Config{URL: "http://user@h/", Requests: 1}, "URL: user info in the URL is not supported; send an Authorization header"},
		{Config{URL: "http://h/"}, "Duration and Requests: one limit is required"},
		{Config{URL: "http://h/", Requests: 1, Connections: -1}, "Connections: must be between 1 and 1048576, got -1"},
		{Config{URL: "http://h/", Requests: 1, Connections: 1<<20 + 1}, "Connections: must be between 1 and 1048576, got 1048577"},
		{Config{URL: "http://h/", Requests: -1}, "Requests: must not be negative, got -1"},
		{Config{URL: "http://h/", Requests: 1, Duration: -time.Second}, "Duration: must not be negative, got -1s"},
		{Config{URL: "http://h/", Requests: 1, Rate: -1}, "Rate: must be between 0 and 1e9 requests/s, got -1"},
		{Config{URL: "http://h/", Requests: 1, Timeout: -1}, "Timeout: must not be negative, got -1ns"},
		{Config{URL: "http://h/", Requests: 1, Method: "GE T"}, `Method: "GE T" is not a valid HTTP method`},
		{Config{URL: "http://h/", Requests: 1, Header: http.Header{"A b": {"v"}}}, `Header: "A b" is not a valid header name`},
		{Config{URL: "http://h/", Requests: 1, Header: http.Header{"A": {"v\r\nX: y"}}}, "Header: value of A contains a line break or NUL"},
		{Config{URL: "http://h/", Requests: 1, HTTP2: true}, "URL and HTTP2: HTTP/2 over TLS needs an https:// URL"},
		{Config{URL: "https://h/", Requests: 1, H2C: true}, "URL and H2C: cleartext HTTP/2 needs an http:// URL"},
		{Config{URL: "http://h/", Requests: 1, HTTP2: true, H2C: true}, "URL and HTTP2: HTTP/2 over TLS needs an https:// URL\nHTTP2 and H2C: choose one"},
		{Config{URL: "http://h/", Requests: 1, MaxRequestsPerConn: -2}, "MaxRequestsPerConn: must not be negative, got -2"},
		{Config{URL: "http://h/", Requests: 1, BackendHeader: "a:b"}, `BackendHeader: "a:b" is not a valid header name`},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
			continue
		}
		leaves := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			leaves = j.Unwrap()
		}
		for _, e := range leaves {
			if _, ok := e.(*field.Error); !ok {
				t.Errorf("%+v: %q is a %T, not a *field.Error", tc.cfg, e, e)
			}
		}
	}
}

// serialSink fails when two Record calls overlap.
type serialSink struct {
	in, overlaps atomic.Int64
	n            int64
}

func (s *serialSink) Record(r *Result) {
	if s.in.Add(1) != 1 {
		s.overlaps.Add(1)
	}
	s.n++             // a data race here would also trip -race
	runtime.Gosched() // give an overlapping call its chance
	s.in.Add(-1)
}

func TestSinkCalledSerially(t *testing.T) { bothEngines(t, testSinkCalledSerially) }

func testSinkCalledSerially(t *testing.T) {
	url, _ := startServer(t, server.Config{Hostname: "x", H2C: true})
	for _, h2c := range []bool{false, true} {
		s := &serialSink{}
		st, err := Run(context.Background(), Config{URL: url, Connections: 8, Requests: 400, H2C: h2c}, s)
		if err != nil {
			t.Fatal(err)
		}
		if s.overlaps.Load() != 0 || s.n != 400 || st.Requests != 400 || st.Errors != 0 {
			t.Fatalf("h2c=%v: %d overlapping calls, %d recorded", h2c, s.overlaps.Load(), s.n)
		}
	}
	if _, err := Run(context.Background(), Config{URL: url, Requests: 3}, nil); err != nil {
		t.Fatalf("nil sink: %v", err)
	}
}

// Open model against a server slower than the rate allows: 200 requests are
// due in the 1 s run, two busy connection slots send only some of them, and
// every due request is either recorded or counted as unsent.
func TestOpenModelUnsent(t *testing.T) { bothEngines(t, testOpenModelUnsent) }

func testOpenModelUnsent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stall    time.Duration
		rate     float64
		duration time.Duration
		due      int64
		// unsent bounds Stats.Unsent: at least minUnsent, at most maxUnsent.
		minUnsent, maxUnsent int64
	}{
		// 2 slots of a server answering in 150 ms send about 13 of the 200
		// due: most are unsent, however fast or slow the client runs.
		{"stalled server", 150 * time.Millisecond, 200, time.Second, 200, 100, 200},
		// Every slot is free at every intended time, so only the client
		// itself can leave a request unsent: a stall of its own (CPU
		// starvation, GC) past the end of the run leaves the requests due
		// in that stall unsent, as it should (coordinated omission). A
		// quarter of the run (250 ms) is far more than a stall on an idle
		// machine and bounds what a loaded one may lose; an engine that
		// counts the sent ones unsent, or loses slots, leaves more.
		{"keeps up", 0, 40, time.Second, 40, 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(tc.stall)
			}))
			defer ts.Close()
			var c collector
			st, err := Run(context.Background(), Config{URL: ts.URL, Connections: 2, Rate: tc.rate, Duration: tc.duration}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, st.Requests)
			if st.Requests+st.Unsent != tc.due {
				t.Fatalf("sent %d + unsent %d = %d, want the %d due", st.Requests, st.Unsent, st.Requests+st.Unsent, tc.due)
			}
			if st.Unsent < tc.minUnsent || st.Unsent > tc.maxUnsent {
				t.Fatalf("unsent %d of %d due, want %d to %d", st.Unsent, tc.due, tc.minUnsent, tc.maxUnsent)
			}
			late := 0
			for _, r := range c.res {
				if r.Delay < 0 || r.Start+r.Delay > st.Elapsed {
					t.Errorf("seq %d due %v sent %v: outside the run of %v", r.Seq, r.Start, r.Start+r.Delay, st.Elapsed)
				}
				if r.Delay >= tc.stall/2 && tc.stall > 0 {
					late++
				}
			}
			if tc.stall > 0 && late == 0 {
				t.Error("no request of a stalled run waited for a free slot")
			}
		})
	}
}

// The closed model has no due time: nothing unsent, no send delay.
func TestClosedModelNoDelay(t *testing.T) { bothEngines(t, testClosedModelNoDelay) }

func testClosedModelNoDelay(t *testing.T) {
	url, _ := startServer(t, server.Config{Hostname: "x"})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 2, Requests: 50}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 50)
	if st.Unsent != 0 {
		t.Errorf("unsent %d in the closed model", st.Unsent)
	}
	for _, r := range c.res {
		if r.Delay != 0 {
			t.Fatalf("seq %d has delay %v in the closed model", r.Seq, r.Delay)
		}
	}
}

// A request claimed before the stop and due before it is sent even when
// the client, stalled, finds the stop already there when it wakes: another
// slot may have sent a later request meanwhile, and the sent requests must
// stay seqs 0..n-1 with the unsent ones after them (under a stall the
// event loop once sent seq 34 with only 34 sent: one below it was unsent).
// One due after the stop, or after an abort, is not sent.
func TestClaimDueBeforeStop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stopAt  time.Duration
		aborted bool
		sent    bool
	}{
		{"due before the stop", time.Second, false, true},
		{"due after the stop", 30 * time.Millisecond, false, false},
		{"aborted", time.Second, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// seq 5 at 100/s is due 50 ms after the start: the stop
			// (already closed, as a stall would find it) wins the wait.
			r := &run{cfg: Config{Rate: 100, Duration: 2 * time.Second}, stop: make(chan struct{}), start: time.Now()}
			r.stopAt.Store(int64(tc.stopAt))
			r.next.Store(5)
			r.aborted.Store(tc.aborted)
			close(r.stop)
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			quota := int64(-1)
			seq, intended, ok := r.claim(timer, &quota)
			if ok != tc.sent || r.sent.Load() != map[bool]int64{true: 1}[tc.sent] {
				t.Fatalf("claim: seq %d ok %v, %d sent; want sent: %v", seq, ok, r.sent.Load(), tc.sent)
			}
			if ok && (seq != 5 || intended != 50*time.Millisecond) {
				t.Errorf("claimed seq %d for %v, want 5 for 50ms", seq, intended)
			}
		})
	}
}

// An event loop may see stopped before the stopper closes stop: it decides
// as claim does once the stop time is set. An engine failure sets stopped
// with no stop time: nothing claimed goes out.
func TestDueBeforeStopWithoutTheClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stopAt   time.Duration // 0: not set
		intended time.Duration
		want     bool
	}{
		{"due before the stop", time.Second, 50 * time.Millisecond, true},
		{"due at the stop", time.Second, time.Second, false},
		{"due after the stop", time.Second, 2 * time.Second, false},
		{"engine failure, no stop time", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{stop: make(chan struct{})} // stop not closed yet
			r.stopAt.Store(int64(tc.stopAt))
			r.stopped.Store(true)
			if got := r.dueBeforeStop(tc.intended); got != tc.want {
				t.Errorf("dueBeforeStop(%v) with the stop at %v: %v, want %v", tc.intended, tc.stopAt, got, tc.want)
			}
		})
	}
}

// due counts the requests whose intended time seq/rate lies before the end,
// computed by hand for each case.
func TestDue(t *testing.T) {
	for _, tc := range []struct {
		rate     float64
		duration time.Duration
		stopAt   time.Duration
		requests int64
		want     int64
	}{
		{200, 12 * time.Second, 12*time.Second + time.Millisecond, 0, 2400}, // the lab's default scenario
		{30000, 2 * time.Second, 2 * time.Second, 0, 60000},
		{7.5, time.Second, time.Second, 0, 8},             // 0, 0.133, ..., 0.933
		{100, 0, 250 * time.Millisecond, 0, 25},           // cancelled at 250 ms: 0..240 ms
		{100, 0, 250*time.Millisecond + 1, 0, 26},         // 250 ms itself was due
		{100, time.Second, 300 * time.Millisecond, 0, 30}, // cancelled before the limit
		{100, time.Second, 2 * time.Second, 40, 40},       // -n caps it
		{3, time.Second, time.Second, 0, 3},               // 0, 0.333, 0.667
		{1e9, time.Millisecond, time.Millisecond, 0, 1e6},
		{100, time.Second, 0, 0, 0},
	} {
		r := &run{cfg: Config{Rate: tc.rate, Duration: tc.duration, Requests: tc.requests}}
		r.stopAt.Store(int64(tc.stopAt))
		if got := r.due(); got != tc.want {
			t.Errorf("rate %v duration %v stopped at %v -n %d: due %d, want %d", tc.rate, tc.duration, tc.stopAt, tc.requests, got, tc.want)
		}
	}
}

// A URL without a scheme gets the http:// one suggested; what cannot be a
// plain HOST[:PORT] gets none.
func TestSuggestURL(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"127.0.0.1:9100", "http://127.0.0.1:9100/"},
		{"localhost:9100/", "http://localhost:9100/"},
		{"localhost:9100", "http://localhost:9100/"},
		{"svc.ns.svc:8080/path?q=1", "http://svc.ns.svc:8080/path?q=1"},
		{"[::1]:80", "http://[::1]:80/"},
		{"web", "http://web/"},
		{"http://x:1/", ""},
		{"http//x:1", ""},
		{"x:99999", ""},
		{"x:abc", ""},
		{"user@x:1", ""},
		{"", ""},
	} {
		if got := suggestURL(tc.raw); got != tc.want {
			t.Errorf("suggestURL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
		if tc.want == "" {
			continue
		}
		cfg := Config{URL: tc.raw, Requests: 1}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "did you mean \""+tc.want+"\"?") {
			t.Errorf("Validate(%q) = %v; want the suggestion %s", tc.raw, err, tc.want)
		}
	}
}

// A suggested URL is one the engine accepts.
func FuzzSuggestURL(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9100", "localhost:9100/", "web", "[::1]:80/x", "http//x", "a:b:c", "x/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s := suggestURL(raw)
		if s == "" {
			return
		}
		if _, err := parseTarget(s, false, false); err != nil {
			t.Fatalf("suggestURL(%q) = %q, which the engine refuses: %v", raw, s, err)
		}
	})
}
