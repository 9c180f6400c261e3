package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
)

// cannedServer answers every request with the same bytes and allocates
// nothing per request, so -benchmem shows the engine's own allocations.
func cannedServer(b *testing.B) string {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nAccept-Request-hostname: pod-a\r\nTotal-Request: 12345\r\n\r\nok")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 1024)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if bytes.Equal(line, []byte("\r\n")) {
						if _, err := c.Write(resp); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

type discard struct{ n int64 }

func (d *discard) Record(r *Result) { d.n += r.Bytes }

// BenchmarkEngine: one op is one request through the HTTP/1.1 engine.
// Run setup is amortised over b.N, so allocs/op reads as 0 when the hot
// path allocates nothing.
func BenchmarkEngine(b *testing.B) {
	for _, bc := range []struct {
		c      int
		engine string
	}{{1, "evloop"}, {1, "rawio"}, {1, "netconn"}, {50, "evloop"}, {50, "rawio"}, {50, "netconn"}} {
		c := bc.c
		b.Run(fmt.Sprintf("c%d/%s", c, bc.engine), func(b *testing.B) {
			defer func(raw, loops bool) { rawIO, eventLoops = raw, loops }(rawIO, eventLoops)
			rawIO = bc.engine == "rawio"
			eventLoops = bc.engine == "evloop"
			url := cannedServer(b)
			var d discard
			b.ReportAllocs()
			b.ResetTimer()
			st, err := Run(context.Background(), Config{URL: url, Connections: c, Requests: int64(b.N)}, &d)
			b.StopTimer()
			if err != nil || st.Errors != 0 || st.Requests != int64(b.N) {
				b.Fatalf("stats %+v, err %v", st, err)
			}
			b.ReportMetric(float64(st.Requests)/st.Elapsed.Seconds(), "req/s")
		})
	}
}
