package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/kaload/kaload/pkg/server/recycle"
)

var helloBody = []byte("hello\n")

// hello is a typical handler: it sets a header, which makes net/http
// snapshot the header map (allocations the wrapper then shares).
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = textPlain
	w.Write(helloBody)
}

// bare touches no header, so net/http skips the header snapshot.
func bare(w http.ResponseWriter, r *http.Request) { w.Write(helloBody) }

// BenchmarkHandler compares, side by side in one run, a plain net/http
// handler with the same handler behind the Recycler, and the whole kaload
// Server, each over a real loopback keep-alive connection driven by an
// allocation-free client, so allocs/op is what the server side allocates.
// Run with -benchmem and compare ns/op and allocs/op between sub-benchmarks.
func BenchmarkHandler(b *testing.B) {
	wrap := func(cfg recycle.Config) func(*testing.B) (string, func()) {
		return func(b *testing.B) (string, func()) {
			rc, err := recycle.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			srv := benchHTTPServer(rc.Wrap(http.HandlerFunc(hello)))
			rc.Install(srv)
			return serveBench(b, srv)
		}
	}
	cases := []struct {
		name  string
		start func(*testing.B) (string, func())
	}{
		{"bare", func(b *testing.B) (string, func()) {
			return serveBench(b, benchHTTPServer(http.HandlerFunc(bare)))
		}},
		{"plain", func(b *testing.B) (string, func()) {
			return serveBench(b, benchHTTPServer(http.HandlerFunc(hello)))
		}},
		{"recycler", wrap(recycle.Config{PositionHeader: PositionHeader})},
		{"recycler-max1000", wrap(recycle.Config{MaxRequests: 1000, PositionHeader: PositionHeader})},
		{"server", func(b *testing.B) (string, func()) {
			s, err := New(Config{Hostname: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Serve(ctx, ln); close(done) }()
			return ln.Addr().String(), func() { cancel(); <-done }
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			addr, stop := c.start(b)
			defer stop()
			cl := &benchClient{addr: addr}
			defer cl.close()
			cl.do(b) // dial and warm up outside the timer
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				cl.do(b)
			}
		})
	}
}

func benchHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

func serveBench(b *testing.B, srv *http.Server) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return ln.Addr().String(), func() { srv.Close(); <-done }
}

// benchClient sends GET / over one keep-alive connection, redialling when
// the server says close; it allocates nothing per request.
type benchClient struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

var benchRequest = []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")

func (cl *benchClient) do(b *testing.B) {
	if cl.c == nil {
		c, err := net.Dial("tcp", cl.addr)
		if err != nil {
			b.Fatal(err)
		}
		cl.c, cl.br = c, bufio.NewReaderSize(c, 4096)
	}
	if _, err := cl.c.Write(benchRequest); err != nil {
		b.Fatal(err)
	}
	length, closing := -1, false
	for first := true; ; first = false {
		line, err := cl.br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				b.Fatalf("status line %q", line)
			}
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(": "))
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.Atoi(string(v)) // string(v) does not escape: no allocation
			if err != nil {
				b.Fatal(err)
			}
			length = n
		case bytes.EqualFold(k, []byte("Connection")) && bytes.Equal(v, []byte("close")):
			closing = true
		}
	}
	if length < 0 {
		b.Fatal("no Content-Length")
	}
	if _, err := cl.br.Discard(length); err != nil {
		b.Fatal(err)
	}
	if closing {
		cl.close()
	}
}

func (cl *benchClient) close() {
	if cl.c != nil {
		cl.c.Close()
		cl.c = nil
	}
}

// BenchmarkWrapDirect isolates the wrapper's own cost: ServeHTTP in process
// with a reused ResponseWriter, no network and no net/http server.
func BenchmarkWrapDirect(b *testing.B) {
	rc, err := recycle.New(recycle.Config{PositionHeader: PositionHeader})
	if err != nil {
		b.Fatal(err)
	}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	ctx := rc.ConnContext(context.Background(), server)
	defer rc.ConnState(server, http.StateClosed)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://bench/", nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"plain", http.HandlerFunc(hello)},
		{"recycler", rc.Wrap(http.HandlerFunc(hello))},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for i := range b.N {
				if i%1000 == 0 {
					// A fresh count, as under --max-requests 1000.
					req = req.WithContext(rc.ConnContext(context.Background(), server))
				}
				clear(w.h)
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
