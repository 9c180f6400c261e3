package client

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/hostile"
)

// floodH2 is a hostile h2c server (hostile.FloodContinuation, at most
// 256 MB or 5 s per connection); sent counts the header bytes the client
// accepted.
func floodH2(t *testing.T, sent *atomic.Int64) string {
	return rawServer(t, func(c net.Conn) {
		c.(*net.TCPConn).SetWriteBuffer(32 << 10) // what the client accepted, not what the kernel buffered
		c.SetDeadline(time.Now().Add(5 * time.Second))
		hostile.FloodContinuation(c, 256<<20, sent)
	})
}

// A CONTINUATION flood fails the request and ends the connection once the
// header list passes the client's bound. With the Transport's default the
// client took 10 MB of header fields per connection before giving up.
func TestH2ContinuationFlood(t *testing.T) {
	var sent atomic.Int64
	url := floodH2(t, &sent)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(32 << 10)
		}
		return c, err
	}
	var c collector
	began := time.Now()
	st, err := Run(context.Background(), Config{URL: url, H2C: true, Connections: 1, Requests: 1, Timeout: 10 * time.Second, Dial: dial}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 1)
	if r := c.res[0]; r.Err == "" || strings.Contains(r.Err, "timeout") || strings.Contains(r.Err, "deadline") {
		t.Errorf("result %+v, want a protocol error", r)
	}
	// The bound plus what two 32 KB socket buffers and one frame hold.
	if n := sent.Load(); n > maxH2HeaderList+1<<20 {
		t.Errorf("the client accepted %d KB of header fields, bound %d KB", n>>10, maxH2HeaderList>>10)
	}
	t.Logf("header bytes accepted before the client gave up: %d KB in %v", sent.Load()>>10, time.Since(began).Round(time.Millisecond))
}
