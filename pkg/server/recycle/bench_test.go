package recycle

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

var benchBody = []byte("hello\n")

// benchHandler is a typical trivial handler: one header, a short body.
func benchHandler(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = benchContentType
	w.Write(benchBody)
}

var benchContentType = []string{"text/plain; charset=utf-8"}

// benchHeaderHandler is benchHandler sending one more header, of the size
// of a position header: what any extra header costs in net/http.
func benchHeaderHandler(w http.ResponseWriter, r *http.Request) {
	w.Header()["X-Conn-Requests"] = benchPosition
	benchHandler(w, r)
}

var benchPosition = []string{"1234"}

// BenchmarkWrap is the cost of the Recycler on a handler: the same trivial
// handler bare and behind Wrap (with Install's hooks), side by side in one
// run, each served by a net/http server over real loopback keep-alive
// connections that parallel clients drive like a load generator (the
// clients allocate nothing per request, so allocs/op is the server's).
// cpu-ns/op is the process's CPU time (server and clients) per request.
// bench/recycle.sh runs it and prints each case's ratio to handler=plain.
//
//	handler=plain     the handler alone
//	handler=recycle   behind Wrap: MaxRequests and MaxConnAge set but not
//	                  reached, so every request counts and checks both
//	handler=position  the same with PositionHeader (one more header out)
//	handler=header    no Recycler; the handler sends one more header
//	                  itself: position's reference for the header's cost
func BenchmarkWrap(b *testing.B) {
	limits := Config{MaxRequests: 1 << 40, MaxConnAge: time.Hour}
	position := limits
	position.PositionHeader = "X-Conn-Requests"
	cases := []struct {
		name string
		h    http.HandlerFunc
		cfg  *Config // nil: the handler without the Recycler
	}{
		{"handler=plain", benchHandler, nil},
		{"handler=recycle", benchHandler, &limits},
		{"handler=position", benchHandler, &position},
		{"handler=header", benchHeaderHandler, nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			srv := &http.Server{Handler: c.h, ReadHeaderTimeout: 10 * time.Second}
			if c.cfg != nil {
				rc, err := New(*c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				srv.Handler = rc.Wrap(c.h)
				rc.Install(srv)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() { srv.Serve(ln); close(done) }()
			defer func() { srv.Close(); <-done }()
			addr := ln.Addr().String()
			b.SetParallelism(4) // 4 connections per CPU, each request waits for its answer
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				cl := &benchClient{addr: addr}
				defer cl.close()
				for pb.Next() {
					if err := cl.do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// CPU per request is steadier than wall time on a shared machine;
			// it includes the clients', the same in every case.
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// benchClient sends GET / over one keep-alive connection, redialling when
// the server says close; it allocates nothing per request.
type benchClient struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

var benchRequest = []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")

type benchError string

func (e benchError) Error() string { return string(e) }

func (cl *benchClient) do() error {
	if cl.c == nil {
		c, err := net.Dial("tcp", cl.addr)
		if err != nil {
			return err
		}
		cl.c, cl.br = c, bufio.NewReaderSize(c, 4096)
	}
	if _, err := cl.c.Write(benchRequest); err != nil {
		return err
	}
	length, closing := -1, false
	for first := true; ; first = false {
		line, err := cl.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return benchError("unexpected status line")
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
			n, err := strconv.Atoi(string(v)) // does not escape: no allocation
			if err != nil {
				return err
			}
			length = n
		case bytes.EqualFold(k, []byte("Connection")) && bytes.Equal(v, []byte("close")):
			closing = true
		}
	}
	if length < 0 {
		return benchError("no Content-Length")
	}
	if _, err := cl.br.Discard(length); err != nil {
		return err
	}
	if closing {
		cl.close()
	}
	return nil
}

func (cl *benchClient) close() {
	if cl.c != nil {
		cl.c.Close()
		cl.c = nil
	}
}
