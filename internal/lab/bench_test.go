package lab

import (
	"io"
	"net"
	"testing"
	"time"
)

// echoBackend copies every byte back until the test ends.
func echoBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// BenchmarkRoundTrip compares a 64-byte ping-pong on one connection
// directly to the backend and through the balancer: the proxy's cost per
// request, which the lab adds to every latency it reports.
func BenchmarkRoundTrip(b *testing.B) {
	backend := echoBackend(b)
	bal := NewBalancer(PolicyRandom, 1)
	bal.SetBackends(backend)
	service := startBalancer(b, bal)

	for _, tc := range []struct{ name, addr string }{{"direct", backend}, {"balancer", service}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.DialTimeout("tcp", tc.addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, buf := make([]byte, 64), make([]byte, 64)
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnect measures opening a connection through the balancer (a
// backend choice and a dial), the cost every recycled connection pays.
func BenchmarkConnect(b *testing.B) {
	backend := echoBackend(b)
	bal := NewBalancer(PolicyRandom, 1)
	bal.SetBackends(backend)
	service := startBalancer(b, bal)
	for _, tc := range []struct{ name, addr string }{{"direct", backend}, {"balancer", service}} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 1)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c, err := net.DialTimeout("tcp", tc.addr, 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				c.Write(buf)
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

func BenchmarkAutoscalerDecide(b *testing.B) {
	a, err := NewAutoscaler(HPASpec{MinReplicas: 1, MaxReplicas: 100, Target: 100, ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.Decide(t0.Add(time.Duration(i)*15*time.Second), 10, float64(50+i%200))
	}
}
