//go:build linux

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The event-loop engine runs plain http:// HTTP/1.1 slots on a fixed number
// of loops (GOMAXPROCS: the thread budget hammer states), each an epoll set
// of non-blocking sockets with one read buffer. A connection slot is a few
// hundred bytes of state (evSlot) instead of a goroutine with its stack and
// its net.Conn: at -c 18000 the goroutine engine held 9.7 KB per connection
// (bench/README.md). A request costs a write and a read system call, and a
// share of one epoll_wait for all the sockets that became readable
// together. Every rule of the goroutine engine (workH1) holds: one Result
// per request, the held result, silent-close retries, per-request timeouts,
// aborts, quotas and the open model.

// loopSet is a run's loops.
type loopSet struct {
	r       *run
	loops   []*evLoop
	mu      sync.Mutex // guards the loops' fds against wake after close
	shut    bool
	lookups sync.WaitGroup // name lookups under way: Run waits for them
}

// loopAddr is one address the target resolved to.
type loopAddr struct {
	sa     unix.Sockaddr
	family int
	remote string // the backend name when the server sends none
	tcp    *net.TCPAddr
}

// newLoops prepares the loops, nil when they cannot start (the goroutine
// engine then runs).
func (r *run) newLoops(_ context.Context, workers int) *loopSet {
	host, port, addrs, err := r.literalAddr()
	if err != nil {
		return nil
	}
	n := max(min(runtime.GOMAXPROCS(0), workers), 1)
	set := &loopSet{r: r}
	for i := range n {
		size := workers / n
		if i < workers%n {
			size++
		}
		l, err := newEvLoop(r, addrs, size, max(maxDialing/n, 1))
		if err != nil {
			set.close()
			return nil
		}
		if addrs == nil {
			l.host, l.port, l.set = host, port, set
		}
		set.loops = append(set.loops, l)
	}
	for i := range workers {
		quota := int64(-1)
		if r.cfg.Requests > 0 && r.cfg.Rate == 0 {
			quota = r.cfg.Requests / int64(workers)
			if int64(i) < r.cfg.Requests%int64(workers) {
				quota++
			}
		}
		l := set.loops[i%n]
		l.slots = append(l.slots, evSlot{idx: int32(len(l.slots)), fd: -1, quota: quota, prev: -1, next: -1})
	}
	return set
}

// literalAddr splits the target; addrs is its address when the host is an
// IP literal, nil for a name: each dial then looks it up again, as Go's
// dialer does (a headless service's answer changes, and its order spreads
// new connections over the pods).
func (r *run) literalAddr() (host string, port int, addrs []loopAddr, err error) {
	host, portS, err := net.SplitHostPort(r.tgt.addr)
	if err != nil {
		return "", 0, nil, err
	}
	if port, err = strconv.Atoi(portS); err != nil {
		return "", 0, nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host, port, nil, nil
	}
	if addrs = loopAddrs([]netip.Addr{ip}, port); addrs == nil {
		return "", 0, nil, errors.New("scoped address") // left to the goroutine engine's dialer
	}
	return host, port, addrs, nil
}

// loopAddrs makes the dialable addresses of ips, in their order.
func loopAddrs(ips []netip.Addr, port int) []loopAddr {
	var addrs []loopAddr
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.Zone() != "" {
			continue
		}
		ap := netip.AddrPortFrom(ip, uint16(port))
		a := loopAddr{remote: ap.String(), tcp: net.TCPAddrFromAddrPort(ap)}
		if ip.Is4() {
			a.sa, a.family = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}, unix.AF_INET
		} else {
			a.sa, a.family = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}, unix.AF_INET6
		}
		addrs = append(addrs, a)
		if len(addrs) == 255 {
			break // evSlot.addr is a byte
		}
	}
	return addrs
}

// run runs the loops until every slot ended and returns their Stats.
func (s *loopSet) run() []Stats {
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.loop()
		}()
	}
	wg.Wait()
	s.lookups.Wait() // each ends by its request's deadline or the abort
	s.close()
	stats := make([]Stats, len(s.loops))
	for i, l := range s.loops {
		stats[i] = l.st
	}
	return stats
}

// wake makes every loop look at the run's stop and abort flags.
func (s *loopSet) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for _, l := range s.loops {
		unix.Write(l.evfd, one) // eventfd: only EAGAIN at 2^64-1 wakes, harmless
	}
}

// wake1 wakes one loop (a lookup answered).
func (s *loopSet) wake1(l *evLoop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shut {
		unix.Write(l.evfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

func (s *loopSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return
	}
	s.shut = true
	for _, l := range s.loops {
		l.file.Close() // epfd
		unix.Close(l.evfd)
	}
}

// Slot states.
const (
	stIdle     = iota // no request: between two, or in the ready queue
	stPark            // open model: claimed, waiting for its intended time
	stDialWait        // waiting for one of the loop's dial slots
	stResolve         // looking the host up
	stConnect         // connecting
	stWrite           // writing the request
	stRead            // reading the response
	stDone            // the slot ended
)

// evSlot is one connection slot: its socket, its request in flight and
// the parser's state. No buffer: bytes are parsed in the loop's.
type evSlot struct {
	idx        int32
	prev, next int32 // in the loop's fly or park list; -1 at the ends
	fd         int32 // -1: no socket
	gen        uint32
	state      uint8
	list       uint8 // listNone, listFly, listPark
	addr       uint8 // index in addrs being dialled or connected
	retried    bool  // this request was sent again after a silent close
	rdPending  bool  // the socket became readable while no answer was due
	reqs       uint32
	wrote      int
	quota      int64
	seq        int64
	intended   time.Duration
	began      time.Duration // the deadline is began + Timeout
	id         uint64
	addrs      []loopAddr // of the dial: the loop's, or a lookup's
	last       string     // last backend seen on this connection
	extra      []byte     // bytes the server sent past a response; nil almost always
	ps         h1Push
	resp       response
	held       held
}

const (
	listNone = iota
	listFly
	listPark
)

// slotList is a FIFO threaded through the slots.
type slotList struct{ head, tail int32 }

// lookupDone is the answer of a slot's lookup; token is the slot's gen
// when the lookup began.
type lookupDone struct {
	idx   int32
	token uint32
	addrs []loopAddr
	err   error
}

type dialWait struct {
	idx int32
	seq int64
}

// evLoop is one loop: an epoll set, its slots and a share of the run.
type evLoop struct {
	r     *run
	addrs []loopAddr // the target's, when it is an IP literal
	// host (a name) is looked up for every dial on a goroutine of set's,
	// which leaves its answer in looked and wakes the loop.
	host    string
	port    int
	set     *loopSet
	lookMu  sync.Mutex
	looked  []lookupDone
	lookBuf []lookupDone
	epfd    int
	evfd    int
	// The loop sleeps in Go's own poller, which watches epfd: a goroutine
	// parked there costs the runtime nothing, while one blocked in
	// epoll_wait holds a thread in a system call that sysmon keeps taking
	// its P from (a futex and a handoff per sleep, sysmon polling every
	// 20 µs).
	file    *os.File
	rc      syscall.RawConn
	pollFn  func(fd uintptr) bool // l.poll, bound once
	polled  int                   // events the last poll returned
	armed   time.Duration         // the poller's deadline as an offset; valid when isArmed
	isArmed bool
	buf     []byte
	events  []unix.EpollEvent
	slots   []evSlot
	p       *h1Parser
	st      Stats
	timeout time.Duration
	rate    bool
	head    bool
	// fly holds the requests in flight in the order they were sent: with
	// one Timeout for all, deadlines come in the same order, so the head
	// is the next to expire. park holds the open model's claimed requests
	// by intended time.
	fly, park  slotList
	ready      []int32 // slots to give their next request at the top of the loop
	spare      []int32 // ready's other buffer
	dialq      []dialWait
	dialHead   int
	dialing    int
	maxDial    int
	inDialNext bool
	active     int
	res        Result // the result being recorded
}

func newEvLoop(r *run, addrs []loopAddr, size, maxDial int) (*evLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	// Each loop its own sockaddrs: Connect writes into them.
	own := make([]loopAddr, len(addrs))
	for i, a := range addrs {
		own[i] = a
		switch sa := a.sa.(type) {
		case *unix.SockaddrInet4:
			c := *sa
			own[i].sa = &c
		case *unix.SockaddrInet6:
			c := *sa
			own[i].sa = &c
		}
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	rc, err := file.SyscallConn()
	if err == nil {
		err = file.SetReadDeadline(time.Time{}) // ErrNoDeadline: Go's poller does not watch it
	}
	if err != nil {
		file.Close()
		unix.Close(evfd)
		return nil, err
	}
	l := &evLoop{
		r: r, addrs: own, epfd: epfd, evfd: evfd, file: file, rc: rc,
		buf:     make([]byte, connBufSize),
		events:  make([]unix.EpollEvent, 256),
		slots:   make([]evSlot, 0, size),
		p:       newH1Parser(r.cfg.BackendHeader),
		timeout: r.cfg.Timeout,
		rate:    r.cfg.Rate > 0,
		head:    r.head,
		fly:     slotList{-1, -1},
		park:    slotList{-1, -1},
		maxDial: maxDial,
	}
	l.pollFn = l.poll
	return l, nil
}

// poll is the RawConn.Read callback: take what epfd has ready; false
// (nothing) parks the goroutine until the poller sees epfd readable.
func (l *evLoop) poll(fd uintptr) bool {
	n, err := rawPoll(int(fd), l.events)
	if err != nil {
		n = 0 // EINTR: poll again
	}
	l.polled = n
	return n > 0
}

// wait returns the sockets' events, sleeping until one comes, the next
// deadline or intended time, or a wake.
func (l *evLoop) wait() int {
	if len(l.ready) > 0 {
		l.poll(uintptr(l.epfd))
		return l.polled
	}
	at, ok := l.nextTimer()
	now := l.now()
	if ok {
		if !l.isArmed || at < l.armed || l.armed <= now {
			l.file.SetReadDeadline(l.r.start.Add(at))
			l.armed, l.isArmed = at, true
		}
	} else if l.isArmed && l.armed <= now {
		l.file.SetReadDeadline(time.Time{})
		l.isArmed = false
	}
	l.polled = 0
	if err := l.rc.Read(l.pollFn); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// Cannot happen with a valid epoll fd; end the run's requests
		// rather than spin.
		l.r.stopped.Store(true)
		l.expireAll(fmt.Errorf("epoll: %w", err))
		return 0
	}
	return l.polled
}

func (l *evLoop) now() time.Duration { return time.Since(l.r.start) }

func (l *evLoop) loop() {
	l.active = len(l.slots)
	for i := range l.slots {
		l.ready = append(l.ready, int32(i))
	}
	for l.active > 0 {
		n := l.wait()
		for _, ev := range l.events[:n] {
			if ev.Fd < 0 {
				l.woken()
				continue
			}
			s := &l.slots[ev.Fd]
			if uint32(ev.Pad) != s.gen || s.fd < 0 {
				continue // a socket closed since
			}
			l.event(s, ev.Events)
		}
		l.timers()
		if len(l.ready) > 0 {
			// Those queued meanwhile wait: the loop polls first.
			batch := l.ready
			l.ready = l.spare[:0]
			now := l.now()
			for _, i := range batch {
				l.next(&l.slots[i], now)
			}
			l.spare = batch[:0]
		}
	}
}

// nextTimer is when the loop must look at its timers next: the first
// deadline or intended time.
func (l *evLoop) nextTimer() (at time.Duration, ok bool) {
	if l.fly.head >= 0 {
		at, ok = l.slots[l.fly.head].began+l.timeout, true
	}
	if l.park.head >= 0 {
		if t := l.slots[l.park.head].intended; !ok || t < at {
			at, ok = t, true
		}
	}
	return at, ok
}

// woken: the run stopped or was aborted.
func (l *evLoop) woken() {
	var b [8]byte
	unix.Read(l.evfd, b[:])
	if l.set != nil {
		l.lookMu.Lock()
		done := l.looked
		l.looked = l.lookBuf[:0]
		l.lookMu.Unlock()
		for i := range done {
			l.looked1(&done[i])
			done[i] = lookupDone{}
		}
		l.lookBuf = done[:0]
	}
	if l.r.aborted.Load() {
		l.expireAll(errAborted)
	}
	if l.r.stopped.Load() {
		now := l.now()
		for l.park.head >= 0 {
			s := &l.slots[l.park.head]
			l.unlink(s)
			if l.r.dueBeforeStop(s.intended) {
				l.r.sent.Add(1)
				l.send(s, now)
				continue
			}
			l.finish(s) // claimed, not due before the stop: not counted
		}
	}
}

// expireAll ends every request in flight with err.
func (l *evLoop) expireAll(err error) {
	for l.fly.head >= 0 {
		l.expire(&l.slots[l.fly.head], err)
	}
}

// timers expires requests past their deadline and sends parked ones that
// are due.
func (l *evLoop) timers() {
	if l.fly.head < 0 && l.park.head < 0 {
		return
	}
	now := l.now()
	for l.fly.head >= 0 {
		s := &l.slots[l.fly.head]
		if s.began+l.timeout > now {
			break
		}
		l.expire(s, os.ErrDeadlineExceeded)
	}
	for l.park.head >= 0 {
		s := &l.slots[l.park.head]
		if s.intended > now {
			break
		}
		l.unlink(s)
		if l.r.stopped.Load() && !l.r.dueBeforeStop(s.intended) {
			l.finish(s)
			continue
		}
		l.r.sent.Add(1)
		l.send(s, now)
	}
}

// next gives a slot its next request, or ends it.
func (l *evLoop) next(s *evSlot, now time.Duration) {
	seq, ok := l.r.take(&s.quota)
	if !ok {
		l.finish(s)
		return
	}
	s.seq = seq
	if !l.rate {
		s.intended = now
		l.send(s, now)
		return
	}
	s.intended = l.r.intended(seq)
	if s.intended > now {
		s.state = stPark
		l.push(&l.park, s, listPark)
		return
	}
	l.r.sent.Add(1)
	l.send(s, now)
}

func (l *evLoop) send(s *evSlot, now time.Duration) {
	s.began = now
	s.retried = false
	s.ps.start(l.head, &s.resp) // a failed dial must not show the last response
	l.push(&l.fly, s, listFly)
	if s.fd < 0 {
		l.dial(s)
		return
	}
	l.request(s)
}

func (l *evLoop) finish(s *evSlot) {
	s.held.flush(l.r, &l.st, CloseNone)
	l.closeConn(s, CloseNone)
	s.state = stDone
	l.active--
}

// --- dialling

func (l *evLoop) dial(s *evSlot) {
	if l.dialing >= l.maxDial {
		s.state = stDialWait
		l.dialq = append(l.dialq, dialWait{s.idx, s.seq})
		return
	}
	l.dialing++
	l.startDial(s)
}

// startDial dials s, its dial slot taken.
func (l *evLoop) startDial(s *evSlot) {
	s.addr = 0
	if l.set == nil {
		s.addrs = l.addrs
		l.connect(s)
		return
	}
	s.addrs = nil
	s.state = stResolve
	s.gen++ // the token of this lookup
	l.set.lookups.Add(1)
	go l.lookup(s.idx, s.gen, l.r.start.Add(s.began+l.timeout))
}

// lookup runs on its own goroutine: the resolver blocks.
func (l *evLoop) lookup(idx int32, token uint32, deadline time.Time) {
	defer l.set.lookups.Done()
	ctx, cancel := context.WithDeadline(l.r.abort, deadline)
	defer cancel()
	d := lookupDone{idx: idx, token: token}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", l.host)
	if err == nil {
		if d.addrs = loopAddrs(ips, l.port); d.addrs == nil {
			err = &net.DNSError{Err: "no suitable address", Name: l.host}
		}
	}
	d.err = err
	l.lookMu.Lock()
	l.looked = append(l.looked, d)
	l.lookMu.Unlock()
	l.set.wake1(l)
}

// looked1 goes on with a slot's dial once its lookup answered.
func (l *evLoop) looked1(d *lookupDone) {
	s := &l.slots[d.idx]
	if s.state != stResolve || s.gen != d.token {
		return // the request ended meanwhile
	}
	if d.err != nil {
		l.dialFailed(s, l.dialError(nil, d.err))
		return
	}
	s.addrs = d.addrs
	l.connect(s)
}

// dialNext starts queued dials while dial slots are free.
func (l *evLoop) dialNext() {
	if l.inDialNext {
		return // the outer call goes on
	}
	l.inDialNext = true
	for l.dialing < l.maxDial && l.dialHead < len(l.dialq) {
		w := l.dialq[l.dialHead]
		l.dialHead++
		s := &l.slots[w.idx]
		if s.state != stDialWait || s.seq != w.seq {
			continue // it timed out or was aborted meanwhile
		}
		l.dialing++
		l.startDial(s)
	}
	if l.dialHead == len(l.dialq) {
		l.dialq, l.dialHead = l.dialq[:0], 0
		if cap(l.dialq) > 1024 {
			l.dialq = nil // the start's burst is over
		}
	}
	l.inDialNext = false
}

func (l *evLoop) connect(s *evSlot) {
	a := &s.addrs[s.addr]
	fd, err := unix.Socket(a.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.dialFailed(s, l.dialError(a, os.NewSyscallError("socket", err)))
		return
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's dialer
	s.gen++
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: s.idx, Pad: int32(s.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		l.dialFailed(s, l.dialError(a, os.NewSyscallError("epoll_ctl", err)))
		return
	}
	s.fd = int32(fd)
	s.state = stConnect
	switch err := unix.Connect(fd, a.sa); err {
	case nil:
		l.connected(s)
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		// EPOLLOUT says when
	default:
		l.connectFailed(s, err)
	}
}

// connecting checks a connecting socket after an event: the poller may
// wake it early, so success is a peer name, as Go's dialer checks.
func (l *evLoop) connecting(s *evSlot) {
	n, err := unix.GetsockoptInt(int(s.fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil {
		err = unix.Errno(n)
	}
	switch err {
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
	case unix.EISCONN:
		l.connected(s)
	case unix.Errno(0):
		if _, err := unix.Getpeername(int(s.fd)); err == nil {
			l.connected(s)
		}
	default:
		l.connectFailed(s, err)
	}
}

func (l *evLoop) connectFailed(s *evSlot, err error) {
	unix.Close(int(s.fd))
	s.fd = -1
	if int(s.addr)+1 < len(s.addrs) {
		s.addr++ // the next address, as Go's dialer falls back
		l.connect(s)
		return
	}
	l.dialFailed(s, l.dialError(&s.addrs[s.addr], os.NewSyscallError("connect", err)))
}

// dialError is Go's dialer's error for a; a nil a (no address yet) names none.
func (l *evLoop) dialError(a *loopAddr, err error) error {
	op := &net.OpError{Op: "dial", Net: "tcp", Err: err}
	if a != nil {
		op.Addr = a.tcp
	}
	return fmt.Errorf("dial %s: %w", l.r.tgt.addr, op)
}

// dialFailed ends a request whose dial failed (its socket, if any, closed).
func (l *evLoop) dialFailed(s *evSlot, err error) {
	l.dialing--
	l.st.DialErrors++
	l.dialNext()
	l.done(s, err)
}

func (l *evLoop) connected(s *evSlot) {
	l.dialing--
	l.st.Connections++
	s.id = l.r.connID.Add(1)
	s.reqs = 0
	s.last = ""
	l.dialNext()
	l.request(s)
}

// --- the round trip

// request sends the slot's request on its open connection.
func (l *evLoop) request(s *evSlot) {
	s.reqs++
	s.ps.start(l.head, &s.resp)
	s.wrote = 0
	s.state = stWrite
	l.write(s)
}

func (l *evLoop) write(s *evSlot) {
	req := l.r.req
	for s.wrote < len(req) {
		n, err := rawWrite(int(s.fd), req[s.wrote:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return // EPOLLOUT goes on
		case err != nil:
			l.failed(s, l.opError(s, "write", os.NewSyscallError("write", err)))
			return
		}
		s.wrote += n
	}
	s.state = stRead
	if s.extra != nil {
		// A server that sent more than it was asked: those bytes answer
		// this request, as they would in a buffered reader.
		data := s.extra
		s.extra = nil
		gen, seq := s.gen, s.seq
		l.input(s, data)
		if s.gen != gen || s.seq != seq || s.state != stRead {
			return
		}
	}
	if s.rdPending {
		s.rdPending = false
		l.read(s, true) // whatever came, an end included
	}
}

// event handles an epoll event of s's socket.
func (l *evLoop) event(s *evSlot, events uint32) {
	switch s.state {
	case stConnect:
		l.connecting(s)
	case stWrite:
		if events&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
			s.rdPending = true // read once the request is out
		}
		l.write(s)
	case stRead:
		l.read(s, events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	default:
		// Between requests: bytes or an end the next request will find.
		s.rdPending = true
	}
}

// read reads what s's socket holds. A read shorter than the buffer took
// all the bytes there were: the next edge brings more. Not the end: a FIN
// that came with the last bytes brings no edge of its own, so when the
// event says the peer hung up (hup), read on until EAGAIN or the end.
func (l *evLoop) read(s *evSlot, hup bool) {
	for {
		n, err := rawRead(int(s.fd), l.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			l.failed(s, s.ps.end(&s.resp, l.opError(s, "read", os.NewSyscallError("read", err))))
			return
		case n == 0:
			if err := s.ps.end(&s.resp, io.EOF); err != nil {
				l.failed(s, err)
			} else {
				l.done(s, nil) // a body delimited by the close
			}
			return
		}
		gen := s.gen
		l.input(s, l.buf[:n])
		if s.gen != gen || s.fd < 0 || n < len(l.buf) && !hup {
			return
		}
		if s.state != stRead {
			s.rdPending = true
			return
		}
	}
}

// input parses bytes that arrived for s's response.
func (l *evLoop) input(s *evSlot, data []byte) {
	n, done, err := s.ps.feed(l.p, &s.resp, data)
	if err != nil {
		l.failed(s, err)
		return
	}
	if !done {
		return
	}
	if rest := data[n:]; len(rest) > 0 {
		s.extra = append([]byte(nil), rest...)
	}
	l.done(s, nil)
}

// failed ends the round trip with err, or sends the request again when
// the connection turned out closed before any answer (workH1's rule).
func (l *evLoop) failed(s *evSlot, err error) {
	if !s.retried && s.reqs > 1 && !s.resp.started && isSilentClose(err) && (l.r.idempotent || isWriteError(err)) {
		s.held.flush(l.r, &l.st, CloseEOF)
		l.closeConn(s, CloseEOF)
		l.st.Retries++
		s.retried = true
		s.ps.start(l.head, &s.resp)
		l.dial(s)
		return
	}
	l.done(s, err)
}

// expire ends a request in flight with err: its deadline passed
// (os.ErrDeadlineExceeded) or the run was aborted.
func (l *evLoop) expire(s *evSlot, err error) {
	switch s.state {
	case stDialWait:
		l.st.DialErrors++
		l.done(s, l.dialError(nil, err))
	case stResolve:
		l.dialFailed(s, l.dialError(nil, err)) // its answer will find the slot gone on
	case stConnect:
		a := &s.addrs[s.addr]
		unix.Close(int(s.fd))
		s.fd = -1
		l.dialFailed(s, l.dialError(a, err))
	case stWrite:
		l.failed(s, l.opError(s, "write", err))
	case stRead:
		l.failed(s, s.ps.end(&s.resp, l.opError(s, "read", err)))
	default:
		l.unlink(s) // not in flight: cannot happen
	}
}

// done records the request's result, as workH1 does after its round trip,
// and queues the slot's next request.
func (l *evLoop) done(s *evSlot, err error) {
	now := l.now()
	l.unlink(s)
	s.held.flush(l.r, &l.st, CloseNone) // the previous request's connection carried on
	res := &l.res
	*res = Result{Seq: uint64(s.seq), Start: s.intended, Latency: now - s.intended, ServerTotal: -1}
	if l.rate {
		res.Delay = max(s.began-s.intended, 0)
	}
	open := s.fd >= 0
	if open {
		res.Conn = s.id
		res.ConnReq = s.reqs
	}
	if reason := l.r.h1Outcome(res, &s.resp, err, open, &s.last, s.addrs[s.addr].remote, s.reqs); reason != CloseNone {
		l.closeConn(s, reason)
	}
	if err == nil && s.fd >= 0 {
		s.held.hold(res)
	} else {
		l.r.record(res, &l.st)
	}
	s.state = stIdle
	if s.fd < 0 {
		// A dial that fails at once must not recurse into the next one:
		// the slot goes on after the loop has polled.
		l.ready = append(l.ready, s.idx)
		return
	}
	l.next(s, now) // keep-alive: the next request goes out now
}

func (l *evLoop) closeConn(s *evSlot, reason CloseReason) {
	if s.fd < 0 {
		return
	}
	unix.Close(int(s.fd)) // also leaves the epoll set
	s.fd = -1
	s.last = "" // a failed dial must not inherit the old backend
	s.extra = nil
	s.rdPending = false
	l.st.Closes[reason]++
}

// opError is the error net.Conn would return for op on s's socket.
func (l *evLoop) opError(s *evSlot, op string, err error) error {
	var local net.Addr
	if sa, e := unix.Getsockname(int(s.fd)); e == nil {
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			local = &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
		case *unix.SockaddrInet6:
			local = &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
		}
	}
	return &net.OpError{Op: op, Net: "tcp", Source: local, Addr: s.addrs[s.addr].tcp, Err: err}
}

// --- lists

func (l *evLoop) push(list *slotList, s *evSlot, which uint8) {
	s.list = which
	s.prev, s.next = list.tail, -1
	if list.tail >= 0 {
		l.slots[list.tail].next = s.idx
	} else {
		list.head = s.idx
	}
	list.tail = s.idx
}

func (l *evLoop) unlink(s *evSlot) {
	var list *slotList
	switch s.list {
	case listFly:
		list = &l.fly
	case listPark:
		list = &l.park
	default:
		return
	}
	if s.prev >= 0 {
		l.slots[s.prev].next = s.next
	} else {
		list.head = s.next
	}
	if s.next >= 0 {
		l.slots[s.next].prev = s.prev
	} else {
		list.tail = s.prev
	}
	s.prev, s.next, s.list = -1, -1, listNone
}
