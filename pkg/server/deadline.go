package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Coarse read deadlines. net/http moves an HTTP/1 connection's read
// deadline six times per request (whole request, cleared for the handler,
// the background read's abort and reset, idle, header); with ReadTimeout,
// ReadHeaderTimeout and IdleTimeout set, three of those arm or move a
// runtime timer, which cost kaload serve about 0.9 µs of CPU per request
// (9%) under wrk -t1 -c50 against the same server without timeouts. A
// coarseConn keeps a deadline at least coarseMin away in a field instead,
// and its listener's sweeper expires it, looking every sweepEvery: such a
// deadline fires up to sweepEvery late. Nearer deadlines, past ones (which
// interrupt a blocked Read) and clearing go to the socket as before.
// Telling far from near reads the sweeper's clock, not the system's (a
// clock read cost as much as the timer here): it lags by up to
// sweepEvery, so a deadline kept for the sweeper is at least
// coarseMin-sweepEvery away, unless the sweeper itself was held up.
const (
	coarseMin  = 2 * time.Second
	sweepEvery = 100 * time.Millisecond
)

// epoch is the origin of the monotonic nanosecond counts kept in
// coarseConn; a deadline without a monotonic reading (time.Unix) compares
// by wall clock, which only matters for deadlines in the past.
var epoch = time.Now()

func sinceEpoch(t time.Time) int64 {
	d := int64(t.Sub(epoch))
	if d == 0 {
		d = 1 // 0 means no deadline
	}
	return d
}

// monoNow is the monotonic time since epoch: time.Since reads one clock where
// time.Now reads two.
func monoNow() int64 { return int64(time.Since(epoch)) }

// coarseListener wraps the accepted connections in coarseConns and runs the
// sweeper until stop.
type coarseListener struct {
	net.Listener
	mu      sync.Mutex
	conns   map[*coarseConn]struct{}
	stopped bool         // after stop every deadline goes to the socket
	clock   atomic.Int64 // monoNow at the last sweep
	quit    chan struct{}
	done    chan struct{}
}

func newCoarseListener(ln net.Listener) *coarseListener {
	l := &coarseListener{Listener: ln, conns: make(map[*coarseConn]struct{}),
		quit: make(chan struct{}), done: make(chan struct{})}
	l.clock.Store(monoNow())
	go l.sweep()
	return l
}

func (l *coarseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &coarseConn{Conn: c, l: l}
	l.mu.Lock()
	if l.stopped {
		cc.exact.Store(true)
	} else {
		l.conns[cc] = struct{}{}
	}
	l.mu.Unlock()
	return cc, nil
}

// sweep expires the coarse deadlines that passed.
func (l *coarseListener) sweep() {
	defer close(l.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
		}
		now := monoNow()
		l.clock.Store(now)
		l.mu.Lock()
		for c := range l.conns {
			if d := c.want.Load(); d != 0 && d <= now && !c.onSocket.Load() {
				c.expire(d)
			}
		}
		l.mu.Unlock()
	}
}

// stop ends the sweeper; the connections still open get their coarse
// deadlines on the socket and keep every later one exact.
func (l *coarseListener) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	close(l.quit)
	for c := range l.conns {
		c.exact.Store(true)
		if d := c.want.Load(); d != 0 {
			c.SetReadDeadline(epoch.Add(time.Duration(d)))
		}
	}
	clear(l.conns)
	l.mu.Unlock()
	<-l.done
}

func (l *coarseListener) forget(c *coarseConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// coarseConn is an accepted connection whose far read deadlines the
// listener's sweeper keeps (see coarseMin).
type coarseConn struct {
	net.Conn
	l      *coarseListener
	want   atomic.Int64 // the read deadline asked for, ns since epoch; 0 = none
	exact  atomic.Bool  // the sweeper stopped: every deadline goes to the socket
	closed atomic.Bool
	// onSocket mirrors sock != 0 for the lock-free paths.
	onSocket atomic.Bool
	mu       sync.Mutex   // serialises setting the socket's deadline and sock
	sock     atomic.Int64 // the read deadline on the socket; 0 = none
}

// SetReadDeadline keeps a deadline at least coarseMin away for the sweeper
// and sets any other on the socket.
func (c *coarseConn) SetReadDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = sinceEpoch(t)
	}
	if d != 0 && (c.exact.Load() || d-c.l.clock.Load() < int64(coarseMin)) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.want.Store(d)
		c.sock.Store(d)
		c.onSocket.Store(true)
		return c.Conn.SetReadDeadline(t)
	}
	c.want.Store(d)
	if !c.onSocket.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A concurrent call may have set a near deadline since: it stays.
	if w := c.want.Load(); c.sock.Load() != 0 && (w == 0 || w == d) {
		c.sock.Store(0)
		c.onSocket.Store(false)
		return c.Conn.SetReadDeadline(time.Time{})
	}
	return nil
}

func (c *coarseConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// expire puts the passed coarse deadline d on the socket, unless it moved.
func (c *coarseConn) expire(d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.want.Load() == d && c.sock.Load() != d {
		c.sock.Store(d)
		c.onSocket.Store(true)
		c.Conn.SetReadDeadline(epoch.Add(time.Duration(d)))
	}
}

// Read retries a timeout of a deadline that was moved meanwhile (the
// socket's is stale), so that callers see only timeouts of the deadline
// they asked for.
func (c *coarseConn) Read(p []byte) (int, error) {
	for range 3 {
		n, err := c.Conn.Read(p)
		if err == nil || n > 0 {
			return n, err
		}
		// The deadline on the socket is the one asked for (net/http's
		// abort of its background read, every request): nothing to check.
		if d := c.sock.Load(); d != 0 && c.want.Load() == d {
			return n, err
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || !c.stale() {
			return n, err
		}
	}
	return c.Conn.Read(p)
}

// stale reports whether the socket's passed deadline is not the one asked
// for, which is still ahead or none, and then fixes the socket.
func (c *coarseConn) stale() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.want.Load()
	if w != 0 && w <= monoNow() {
		if c.sock.Load() != w {
			c.sock.Store(w)
			c.onSocket.Store(true)
			c.Conn.SetReadDeadline(epoch.Add(time.Duration(w)))
		}
		return false // it passed: a real timeout
	}
	if w == c.sock.Load() {
		return false
	}
	if w == 0 || w-monoNow() >= int64(coarseMin) && !c.exact.Load() {
		c.sock.Store(0)
		c.onSocket.Store(false)
		c.Conn.SetReadDeadline(time.Time{})
	} else {
		c.sock.Store(w)
		c.onSocket.Store(true)
		c.Conn.SetReadDeadline(epoch.Add(time.Duration(w)))
	}
	return true
}

func (c *coarseConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.forget(c)
	}
	return c.Conn.Close()
}

// CloseWrite keeps net/http's half-close (it sends FIN before closing).
func (c *coarseConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
