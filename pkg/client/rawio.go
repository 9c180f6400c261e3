package client

import (
	"io"
	"net"
	"syscall"
)

// rawStream is the reader under a connection's bufio.Reader. For plain TCP it
// sends the request and waits for the answer in one RawConn.Read: the poller
// is armed before the write, so the first read syscall happens when the
// response is there. net.Conn's Write then Read would try a read at once, get
// EAGAIN, park and read again: a third syscall per request, about a fifth of
// the engine's CPU against a fast server. Anything unusual (a short or failed
// write, TLS, a dialer's own conn type) takes the ordinary path.
type rawStream struct {
	c  net.Conn
	rc syscall.RawConn // nil: ordinary path only

	pending []byte // request to write before the next read
	// per RawConn.Read call
	req    []byte
	p      []byte
	n      int
	err    error
	wrote  int
	sent   bool
	readFn func(fd uintptr) bool // s.rawRead, bound once: no allocation per call
	bufp   *[]byte               // readPooled: the pool's buffer, once taken
}

// rawIO enables the fast path; benchmarks turn it off to compare.
var rawIO = true

func newRawStream(c net.Conn) *rawStream {
	s := &rawStream{c: c}
	if sc, ok := c.(syscall.Conn); ok && rawIO {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
		}
	}
	s.readFn = s.rawRead
	return s
}

// send writes req, or arms the fast path to write it inside the next Read.
// Callers must use the fast path only when nothing is buffered above this
// reader, so that the next bufio fill is sure to come here.
func (s *rawStream) send(req []byte, fast bool) error {
	if fast && s.rc != nil {
		s.pending = req
		return nil
	}
	_, err := s.c.Write(req)
	return err
}

// readPooled is Read into a buffer of connBufs taken only when the answer can
// be read (or an ordinary read must wait with it): a connection waiting for
// its answer holds none. bp is nil when no buffer was taken.
func (s *rawStream) readPooled() (bp *[]byte, n int, err error) {
	s.bufp = nil
	n, err = s.Read(nil)
	bp, s.bufp = s.bufp, nil
	return bp, n, err
}

// buffer is p, or for readPooled (p nil) a buffer of the pool.
func (s *rawStream) buffer(p []byte) []byte {
	if p != nil {
		return p
	}
	if s.bufp == nil {
		s.bufp = connBufs.Get().(*[]byte)
	}
	return *s.bufp
}

func (s *rawStream) Read(p []byte) (int, error) {
	if s.pending == nil {
		return s.c.Read(s.buffer(p))
	}
	req := s.pending
	s.pending = nil
	s.req, s.p, s.n, s.err, s.wrote, s.sent = req, p, 0, nil, 0, false
	if err := s.rc.Read(s.readFn); err != nil {
		return 0, err // deadline or closed connection
	}
	if !s.sent { // the raw write was short or failed: finish it the ordinary way
		if s.err != nil && s.err != syscall.EAGAIN {
			return 0, &net.OpError{Op: "write", Net: "tcp", Err: s.err}
		}
		if _, err := s.c.Write(req[s.wrote:]); err != nil {
			return 0, err
		}
		return s.c.Read(s.buffer(p))
	}
	if s.err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: s.err}
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	return s.n, nil
}

// rawRead is the RawConn.Read callback: write the pending request on the first
// call, then read once readable. Returning false waits for readability.
func (s *rawStream) rawRead(fd uintptr) bool {
	if !s.sent {
		for {
			n, err := syscall.Write(int(fd), s.req)
			if err == syscall.EINTR {
				continue
			}
			if n > 0 {
				s.wrote = n
			}
			if err != nil || s.wrote < len(s.req) {
				s.err = err
				return true // give up the fast path for this request
			}
			break
		}
		s.sent = true
		return false // wait until the answer can be read
	}
	if s.p == nil {
		s.p = s.buffer(nil)
	}
	for {
		n, err := syscall.Read(int(fd), s.p)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return false
		}
		if n < 0 {
			n = 0
		}
		s.n, s.err = n, err
		return true
	}
}
