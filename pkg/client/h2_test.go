package client

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/kaload/kaload/internal/hostile"
)

func TestHTTP2OverTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Accept-Request-hostname", fmt.Sprintf("%s %s %s %s", r.Proto, r.Method, r.Header.Get("X-A"), b))
		w.Header().Set("Total-Request", "7")
		io.WriteString(w, "hello")
	}))
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificate below is expected
	ts.StartTLS()
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: ts.URL, HTTP2: true, Insecure: true, Connections: 2, Requests: 20,
		Method: "POST", Body: []byte("b"), Header: http.Header{"X-A": {"1"}}, MaxRequestsPerConn: 5}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 20)
	if st.Errors != 0 {
		t.Fatalf("errors: %s", firstErr(c.res))
	}
	if st.Connections != 4 || st.Closes[CloseClientLimit] != 4 {
		t.Errorf("stats %+v", st)
	}
	for _, r := range c.res {
		if r.Backend != "HTTP/2.0 POST 1 b" || r.Bytes != 5 || r.ServerTotal != 7 {
			t.Fatalf("result %+v", r)
		}
	}

	// Without --insecure the test certificate is refused: every request fails, none hangs.
	c = collector{}
	st, _ = Run(context.Background(), Config{URL: ts.URL, HTTP2: true, Requests: 3, Timeout: 5 * time.Second}, &c)
	if st.Errors != 3 || st.DialErrors != 3 {
		t.Errorf("untrusted certificate: stats %+v", st)
	}
}

// HTTP/1.1 over TLS goes through the hand-written engine.
func TestHTTP1OverTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Request-hostname", r.Proto)
	}))
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: ts.URL, Insecure: true, Connections: 2, Requests: 10}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 10)
	if st.Errors != 0 || st.Connections != 2 || c.res[0].Backend != "HTTP/1.1" {
		t.Fatalf("stats %+v, first %+v", st, c.res[0])
	}
}

// Prior-knowledge h2c against a server that speaks only HTTP/1 fails cleanly.
func TestH2CAgainstHTTP1Server(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: ts.URL, H2C: true, Connections: 2, Requests: 4, Timeout: 2 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 4)
	if st.Errors != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// A graceful GOAWAY on a fresh connection (the server began draining as it
// arrived) refuses the first request unprocessed: it is sent again on a new
// connection, as one refused on a reused connection is, and does not fail.
func TestH2GoAwayOnFreshConnRetried(t *testing.T) {
	var conns atomic.Int64
	h2s := &http2.Server{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Request-hostname", "pod-b")
	})
	url := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if conns.Add(1) == 1 {
			hostile.GoAwayAtOnce(c)
			return
		}
		h2s.ServeConn(c, &http2.ServeConnOpts{Handler: handler})
	})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, H2C: true, Connections: 1, Requests: 3, Timeout: 5 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	if st.Errors != 0 || st.Retries != 1 {
		t.Fatalf("stats %+v; first error %s", st, firstErr(c.res))
	}
}

// Streams puts several requests in flight on each HTTP/2 connection: the
// server sees all of them at once (its handlers wait for each other), and
// each is one Result of its own.
func TestH2Streams(t *testing.T) {
	const conns, streams = 2, 5
	var inflight, most atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == conns*streams {
			once.Do(func() { close(all) })
		}
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
		w.Header().Set("Accept-Request-hostname", "pod-m")
	}))
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: ts.URL, H2C: true, Connections: conns, Streams: streams, Requests: 3 * conns * streams}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3*conns*streams)
	if st.Errors != 0 || st.Connections != conns || most.Load() != conns*streams {
		t.Fatalf("stats %+v, at most %d in flight; want %d", st, most.Load(), conns*streams)
	}
	perConn := map[uint64][]uint32{}
	for _, r := range c.res {
		if r.Backend != "pod-m" || r.Status != 200 {
			t.Fatalf("result %+v", r)
		}
		perConn[r.Conn] = append(perConn[r.Conn], r.ConnReq)
	}
	for id, pos := range perConn {
		if len(pos) != 3*streams {
			t.Errorf("connection %d carried %d requests, want %d", id, len(pos), 3*streams)
		}
	}
}
