package client

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// maxH2HeaderList bounds a response's header list (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE).
// The Transport's default, 10 MB, let a server flooding CONTINUATION frames
// hold about 16 MB per connection (534 MB at -c 32); past this bound the
// Transport ends the connection instead. 256 KiB is far more than any real
// response header needs (Go's server accepts 1 MB of request header,
// nginx 32 KB by default).
const maxH2HeaderList = 256 << 10

// h2Conn is one HTTP/2 connection slot's current connection. One ClientConn
// per slot (never a pool) keeps connections countable and pinned, like the
// long-lived clients kaload imitates.
type h2Conn struct {
	cc     *http2.ClientConn
	raw    *watchedConn
	id     uint64
	reqs   uint32
	remote string
	last   string
}

// watchedConn tells when the ClientConn's read loop saw the connection end, so
// closing a slot can wait for that goroutine instead of leaking it past Run.
type watchedConn struct {
	net.Conn
	reading atomic.Bool // a Read is blocked in the read loop
	once    sync.Once
	done    chan struct{} // closed when a Read failed: the read loop is ending
}

func (w *watchedConn) Read(p []byte) (int, error) {
	w.reading.Store(true)
	n, err := w.Conn.Read(p)
	w.reading.Store(false)
	if err != nil {
		w.once.Do(func() { close(w.done) })
	}
	return n, err
}

func (r *run) workH2(st *Stats, quota int64) {
	tr := &http2.Transport{AllowHTTP: true, DisableCompression: true, TLSClientConfig: r.tlsConf,
		MaxHeaderListSize: maxH2HeaderList}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	intern := newInterner()
	body := bytes.NewReader(r.cfg.Body)
	base, err := http.NewRequest(r.cfg.Method, r.cfg.URL, nil)
	if err != nil {
		return // Validate already parsed the URL; unreachable in practice
	}
	base.Header = r.cfg.Header.Clone()
	if base.Header == nil {
		base.Header = http.Header{}
	}
	if h := base.Header.Get("Host"); h != "" {
		base.Host = h
		base.Header.Del("Host")
	}
	if base.Header.Get("User-Agent") == "" {
		base.Header.Set("User-Agent", "kaload")
	}
	var (
		cn      h2Conn
		res     Result
		pending held // last result on cn, held until we know whether cn ended after it
	)
	flush := func(reason CloseReason) { pending.flush(r, st, reason) }
	closeConn := func(reason CloseReason) {
		if cn.cc == nil {
			return
		}
		wasReading := cn.raw.reading.Load()
		cn.cc.Close()
		if wasReading { // the blocked read fails now and the read loop returns
			select {
			case <-cn.raw.done:
			case <-time.After(time.Second):
			}
		}
		cn.cc = nil
		cn.last = ""
		st.Closes[reason]++
	}
	goingAway := func() bool {
		s := cn.cc.State()
		return s.Closed || s.Closing || !cn.cc.CanTakeNewRequest()
	}
	defer func() {
		if pending.ok && cn.cc != nil && goingAway() {
			flush(CloseGoAway)
			closeConn(CloseGoAway)
		}
		flush(CloseNone)
		closeConn(CloseNone)
	}()

	for {
		seq, intended, ok := r.claim(timer, &quota)
		if !ok {
			return
		}
		deadline := time.Now().Add(r.cfg.Timeout)
		ctx, cancel := context.WithDeadline(r.abort, deadline)
		res = Result{Seq: uint64(seq), Start: intended, Delay: r.sendDelay(intended), ServerTotal: -1}
		var resp *http.Response
		for attempt := 0; ; attempt++ {
			if cn.cc != nil && goingAway() {
				// GOAWAY arrived since the last response: that one was the
				// connection's last.
				flush(CloseGoAway)
				closeConn(CloseGoAway)
			}
			if cn.cc == nil {
				if err = r.openH2(tr, &cn, deadline, st); err != nil {
					break
				}
			}
			cn.reqs++
			req := base.WithContext(ctx)
			if len(r.cfg.Body) > 0 {
				body.Reset(r.cfg.Body)
				req.Body = io.NopCloser(body)
				req.ContentLength = int64(len(r.cfg.Body))
			}
			resp, err = cn.cc.RoundTrip(req)
			if err != nil && attempt == 0 && goingAway() && unsentH2(err) {
				// The server's GOAWAY raced our request, which it did not
				// process: the previous one, if any, was the connection's
				// last. A fresh connection may get one too (the server
				// began draining as it arrived): sending again is as safe.
				flush(CloseGoAway)
				closeConn(CloseGoAway)
				st.Retries++
				continue
			}
			break
		}
		flush(CloseNone)
		if err == nil {
			res.Status = resp.StatusCode
			n, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.Bytes = n
			err = rerr
			if v := resp.Header.Get(r.cfg.BackendHeader); v != "" {
				cn.last = intern.get([]byte(v))
			} else {
				cn.last = cn.remote
			}
			if v := resp.Header.Get(totalRequestHeader); v != "" {
				if t, perr := strconv.ParseInt(v, 10, 64); perr == nil && t >= 0 {
					res.ServerTotal = t
				}
			}
		}
		cancel()
		res.Latency = time.Since(r.start) - intended
		if cn.cc != nil {
			res.Conn = cn.id
			res.ConnReq = cn.reqs
		}
		res.Backend = cn.last
		switch {
		case err != nil:
			res.Err = err.Error()
			if cn.cc != nil {
				res.Close = CloseError
				closeConn(CloseError)
			}
			r.record(&res, st)
		case r.cfg.MaxRequestsPerConn > 0 && cn.reqs >= uint32(r.cfg.MaxRequestsPerConn):
			res.Close = CloseClientLimit
			closeConn(CloseClientLimit)
			r.record(&res, st)
		default:
			pending.hold(&res)
		}
	}
}

func (r *run) openH2(tr *http2.Transport, cn *h2Conn, deadline time.Time, st *Stats) error {
	c, err := r.dialConn(deadline)
	if err != nil {
		st.DialErrors++
		return err
	}
	c.SetDeadline(time.Time{})
	w := &watchedConn{Conn: c, done: make(chan struct{})}
	cc, err := tr.NewClientConn(w)
	if err != nil {
		c.Close()
		st.DialErrors++
		return err
	}
	st.Connections++
	*cn = h2Conn{cc: cc, raw: w, id: r.connID.Add(1), remote: c.RemoteAddr().String()}
	return nil
}

// unsentH2 reports whether err says the request never reached the server's
// handler: refused by a GOAWAY or rejected by a ClientConn already closing.
// The http2 package does not export these errors.
func unsentH2(err error) bool {
	s := err.Error()
	return strings.Contains(s, "graceful shutdown GOAWAY") || strings.Contains(s, "client conn not usable") ||
		strings.Contains(s, "REFUSED_STREAM")
}
