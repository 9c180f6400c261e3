package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// holdServerEnv makes the test binary a server that answers the first request
// of every connection and holds the next one until its stdin closes; it
// prints the listen address, then one line per held request. Out of process,
// its memory does not count in the engine's.
const holdServerEnv = "KALOAD_TEST_HOLD_SERVER"

func holdServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	release := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(release) }()
	held := make(chan struct{}, 1024)
	go func() {
		for range held {
			fmt.Println("held")
		}
	}()
	ok := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nAccept-Request-hostname: pod-a\r\n\r\nok")
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 512)
			for n := 0; ; {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if !bytes.Equal(line, []byte("\r\n")) {
					continue
				}
				if n++; n > 1 {
					held <- struct{}{}
					<-release
				}
				if _, err := c.Write(ok); err != nil {
					return
				}
			}
		}()
	}
}

// BenchmarkConnMemory reports what the HTTP/1.1 engines hold per keep-alive
// connection while its request waits for the answer (the state of almost
// every connection at -c 18000): Go heap and goroutine stack bytes per
// connection, after one request on each has been answered and recorded.
//
//	go test -run XXX -bench ConnMemory -benchtime 1x ./pkg/client
func BenchmarkConnMemory(b *testing.B) {
	for _, conns := range []int{1000, 4000} {
		for _, engine := range []string{"evloop", "goroutines"} {
			b.Run(fmt.Sprintf("h1/%s/c%d", engine, conns), func(b *testing.B) {
				defer func(old bool) { eventLoops = old }(eventLoops)
				eventLoops = engine == "evloop"
				for range b.N {
					heap, stack := connMemory(b, conns)
					b.ReportMetric(heap, "heapB/conn")
					b.ReportMetric(stack, "stackB/conn")
					b.ReportMetric(heap+stack, "B/conn")
				}
			})
		}
	}
}

func connMemory(b *testing.B, conns int) (heap, stack float64) {
	b.StopTimer()
	srv := exec.Command(os.Args[0], "-test.run=^$")
	srv.Env = append(os.Environ(), holdServerEnv+"=1")
	stdin, err := srv.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := srv.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		srv.Process.Kill() // it serves until killed
		srv.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		b.Fatal("hold server printed nothing")
	}
	addr := strings.TrimSpace(lines.Text())

	var recorded atomic.Int64
	runtime.GC()
	var before, during runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	var st Stats
	go func() {
		var err error
		st, err = Run(context.Background(), Config{URL: "http://" + addr + "/", Connections: conns, Requests: 2 * int64(conns)},
			SinkFunc(func(r *Result) { recorded.Add(1) }))
		done <- err
	}()
	for range conns {
		if !lines.Scan() {
			b.Fatalf("hold server stopped: %v", lines.Err())
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&during)
	heap = float64(int64(during.HeapAlloc)-int64(before.HeapAlloc)) / float64(conns)
	stack = float64(int64(during.StackInuse)-int64(before.StackInuse)) / float64(conns)
	stdin.Close() // answer the held requests
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if st.Errors != 0 || st.Requests != 2*int64(conns) || recorded.Load() != st.Requests {
		b.Fatalf("stats %+v, %d recorded", st, recorded.Load())
	}
	return heap, stack
}
