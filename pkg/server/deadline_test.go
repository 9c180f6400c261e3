package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// coarsePair accepts one loopback connection through a coarseListener and
// returns the server side (a *coarseConn) and the client side.
func coarsePair(t *testing.T) (*coarseListener, *coarseConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newCoarseListener(ln)
	t.Cleanup(func() { l.Close(); l.stop() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c.(*coarseConn), client
}

// slack bounds how late a deadline may fire on a loaded machine (-race,
// other processes); the lower bound is exact.
const slack = 2 * time.Second

// readTimesOut reads until the deadline and checks when it fired.
func readTimesOut(t *testing.T, c net.Conn, at time.Time, late time.Duration) {
	t.Helper()
	_, err := c.Read(make([]byte, 1))
	now := time.Now()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if now.Before(at) {
		t.Fatalf("deadline fired %v early", at.Sub(now))
	}
	if now.After(at.Add(late)) {
		t.Fatalf("deadline fired %v late, want at most %v", now.Sub(at), late)
	}
}

// TestCoarseDeadlines: a coarseConn's read deadlines behave as the
// socket's: a far one (kept by the sweeper) fires no earlier and at most
// sweepEvery late, a near one at its time, a past one interrupts a blocked
// Read, and moving or clearing a deadline, even one already on the socket,
// never fails a Read that the deadline asked for allows.
func TestCoarseDeadlines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn)
	}{
		{"far deadline fires by the sweeper", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			at := time.Now().Add(coarseMin + 300*time.Millisecond)
			c.SetReadDeadline(at)
			if c.onSocket.Load() {
				t.Fatal("a far deadline went to the socket")
			}
			readTimesOut(t, c, at, sweepEvery+slack)
			// It stays passed: the next Read fails at once, as on a socket.
			readTimesOut(t, c, at, slack)
		}},
		{"near deadline goes to the socket", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			at := time.Now().Add(300 * time.Millisecond)
			c.SetReadDeadline(at)
			if !c.onSocket.Load() {
				t.Fatal("a near deadline was kept for the sweeper")
			}
			readTimesOut(t, c, at, slack)
		}},
		{"past deadline interrupts a blocked read, zero clears it", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			c.SetReadDeadline(time.Now().Add(time.Hour))
			errc := make(chan error, 1)
			go func() { _, err := c.Read(make([]byte, 1)); errc <- err }()
			time.Sleep(50 * time.Millisecond)
			c.SetReadDeadline(time.Unix(1, 0)) // net/http's aLongTimeAgo
			select {
			case err := <-errc:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("interrupted read: %v", err)
				}
			case <-time.After(slack):
				t.Fatal("a past deadline did not interrupt the read")
			}
			c.SetReadDeadline(time.Time{})
			client.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatalf("read after clearing: %v", err)
			}
		}},
		{"far deadline moved later lets a blocked read wait", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			c.SetReadDeadline(time.Now().Add(coarseMin + 100*time.Millisecond))
			c.SetReadDeadline(time.Now().Add(time.Hour))
			time.AfterFunc(coarseMin+500*time.Millisecond, func() { client.Write([]byte("x")) })
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatalf("read: %v", err)
			}
		}},
		{"near deadline moved far while a read blocks", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			errc := make(chan error, 1)
			go func() { _, err := io.ReadFull(c, make([]byte, 1)); errc <- err }()
			time.Sleep(20 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(time.Hour))
			time.Sleep(500 * time.Millisecond)
			client.Write([]byte("x"))
			if err := <-errc; err != nil {
				t.Fatalf("read: %v", err)
			}
		}},
		{"stale deadline on the socket is retried", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			// A far deadline asked for while the socket still holds an
			// older, passed one (two goroutines setting at once).
			c.SetReadDeadline(time.Now().Add(time.Hour))
			c.mu.Lock()
			c.Conn.SetReadDeadline(time.Unix(1, 0))
			c.sock.Store(sinceEpoch(time.Unix(1, 0)))
			c.onSocket.Store(true)
			c.mu.Unlock()
			time.AfterFunc(100*time.Millisecond, func() { client.Write([]byte("x")) })
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatalf("read: %v", err)
			}
			if c.onSocket.Load() {
				t.Error("the stale deadline stayed on the socket")
			}
		}},
		{"stop puts far deadlines on the socket", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			at := time.Now().Add(coarseMin + 200*time.Millisecond)
			c.SetReadDeadline(at)
			l.stop()
			if !c.onSocket.Load() {
				t.Fatal("after stop the far deadline is not on the socket")
			}
			readTimesOut(t, c, at, slack)
			// Later deadlines are exact.
			c.SetReadDeadline(time.Now().Add(time.Hour))
			if !c.onSocket.Load() {
				t.Fatal("after stop a far deadline was kept for the sweeper")
			}
		}},
		{"close forgets, CloseWrite half-closes", func(t *testing.T, l *coarseListener, c *coarseConn, client net.Conn) {
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			client.SetReadDeadline(time.Now().Add(slack))
			if _, err := client.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("client read after CloseWrite: %v, want EOF", err)
			}
			c.Close()
			c.Close()
			l.mu.Lock()
			n := len(l.conns)
			l.mu.Unlock()
			if n != 0 {
				t.Errorf("%d connections tracked after Close", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, c, client := coarsePair(t)
			tt.run(t, l, c, client)
		})
	}
}
