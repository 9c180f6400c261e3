package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/kaload/kaload/internal/h2frame"
	"github.com/kaload/kaload/pkg/field"
)

// grpcRun is what the gRPC workers of one Run share.
type grpcRun struct {
	method    string // "/pkg.Service/Method"
	req       []byte // the request message, encoded once
	md        metadata.MD
	authority string
	creds     credentials.TransportCredentials
	backend   string // metadata key of the backend name
	stream    bool   // server streaming (Config.GRPCStream)
}

// rawCodec passes the pre-encoded request through and only counts the
// answer's bytes: hammer never needs a message decoded, so it pays for no
// dynamic message per RPC.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot send %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	n, ok := v.(*int64)
	if !ok {
		return fmt.Errorf("rawCodec: cannot receive into %T", v)
	}
	*n = int64(data.Len())
	return nil
}

// prepareGRPC resolves the method (reflection uses a connection of its own,
// closed before the run starts) and encodes the request.
func (r *run) prepareGRPC(ctx context.Context) error {
	c := &r.cfg
	call := c.Call
	if call == "" {
		call = DefaultCall
	}
	service, method, err := parseCall(call)
	if err != nil {
		return field.Errorf("Call", "%w", err)
	}
	md, authority, err := grpcMetadata(c.Header)
	if err != nil {
		return field.Errorf("Header", "%w", err)
	}
	g := &grpcRun{method: "/" + service + "/" + method, md: md, authority: authority, stream: c.GRPCStream,
		backend: lowerASCII(c.BackendHeader)}
	if r.tgt.tls {
		g.creds = credentials.NewTLS(&tls.Config{ServerName: r.tgt.u.Hostname(), InsecureSkipVerify: c.Insecure, RootCAs: c.RootCAs})
	} else {
		g.creds = insecure.NewCredentials()
	}
	r.grpc = g
	var cc *grpc.ClientConn
	if len(c.ProtoFiles) == 0 && len(c.ProtosetFiles) == 0 {
		cc, err = r.newGRPCConn(nil, nil)
		if err != nil {
			return field.Errorf("URL", "%w", err)
		}
		defer cc.Close()
	}
	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if md := g.md; len(md) > 0 {
		rctx = metadata.NewOutgoingContext(rctx, md)
	}
	m, err := resolveMethod(rctx, c, cc, service, method)
	if err != nil {
		return err
	}
	if m.IsStreamingClient() {
		return field.Errorf("Call", "%s is client-streaming; kaload calls unary and server-streaming methods", call)
	}
	if m.IsStreamingServer() != c.GRPCStream {
		if c.GRPCStream {
			return field.Errorf("GRPCStream", "%s is not server-streaming", call)
		}
		return field.Errorf("Call", "%s is server-streaming: a stream is needed (GRPCStream)", call)
	}
	if g.req, err = encodeRequest(m.Input(), c.Body); err != nil {
		return field.Errorf("Body", "%w", err)
	}
	if !g.stream {
		// Unary calls go on the HTTP/2 core; server streams stay on grpc-go.
		authority := g.authority
		if authority == "" {
			authority = r.tgt.addr // what grpc-go sends for passthrough:///addr
		}
		r.h2 = &h2Req{blocks: newH2Blocks(grpcFields(g, r.tgt.tls, authority)), body: grpcFrame(g.req),
			grpc: true, backendKey: g.backend}
		if r.tgt.tls {
			r.tlsConf = &tls.Config{ServerName: r.tgt.u.Hostname(), InsecureSkipVerify: c.Insecure, RootCAs: c.RootCAs,
				NextProtos: []string{"h2"}}
		}
	}
	return nil
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// gConn is one TCP connection a slot's ClientConn dialled. A frame scanner
// on its reads sees the server's GOAWAY, which grpc-go does not report.
type gConn struct {
	net.Conn
	id     uint64
	local  string
	remote string
	reqs   uint32 // RPCs or stream messages recorded on it (the slot's worker only)

	scan    h2frame.Scanner
	goaway  atomic.Pointer[h2frame.GoAway] // the first GOAWAY received
	readErr atomic.Pointer[error]          // the read that ended it
	closed  atomic.Bool
}

func (c *gConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scan.Scan(p[:n])
	if err != nil {
		c.readErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (c *gConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// gSlot is one connection slot: a ClientConn of its own (so its connection
// is never shared) and the connections it dialled, by local address.
type gSlot struct {
	mu     sync.Mutex
	conns  map[string]*gConn
	all    []*gConn
	dialed atomic.Int64
	failed atomic.Int64
}

func (s *gSlot) lookup(local net.Addr) *gConn {
	if local == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[local.String()]
}

// newGRPCConn builds a ClientConn whose every connection goes through the
// run's dialer (and, with a slot, is tracked there).
func (r *run) newGRPCConn(slot *gSlot, _ *Stats) (*grpc.ClientConn, error) {
	g := r.grpc
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := r.dial(ctx, "tcp", addr)
		if err != nil {
			if slot != nil {
				slot.failed.Add(1)
			}
			return nil, err
		}
		if slot == nil {
			return c, nil
		}
		gc := &gConn{Conn: c, id: r.connID.Add(1), local: c.LocalAddr().String(), remote: c.RemoteAddr().String()}
		gc.scan.OnGoAway = func(ga h2frame.GoAway) { gc.goaway.CompareAndSwap(nil, &ga) }
		slot.mu.Lock()
		slot.conns[gc.local] = gc
		slot.all = append(slot.all, gc)
		slot.mu.Unlock()
		slot.dialed.Add(1)
		return gc, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(g.creds),
		grpc.WithContextDialer(dial),
		grpc.WithUserAgent("kaload"),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})),
	}
	if g.authority != "" {
		opts = append(opts, grpc.WithAuthority(g.authority))
	}
	// passthrough: exactly the address given, one connection, no resolver.
	return grpc.NewClient("passthrough:///"+r.tgt.addr, opts...)
}

// workGRPC keeps one gRPC connection busy: unary calls on the HTTP/2 core
// (h2work.go), server streams through a grpc-go ClientConn of the slot's own.
func (r *run) workGRPC(st *Stats, quota int64) {
	if !r.grpc.stream {
		r.workH2Core(st, quota, r.h2)
		return
	}
	slot := &gSlot{conns: map[string]*gConn{}}
	cc, err := r.newGRPCConn(slot, st)
	if err != nil {
		return // NewClient fails only on a bad target, which Validate caught
	}
	defer func() {
		cc.Close()
		r.closeSlot(slot, st)
	}()
	r.streamGRPC(cc, slot, st, quota)
}

// fillGRPC sets what an RPC's outcome and metadata say.
func (r *run) fillGRPC(res *Result, err error, gc *gConn, hdr, trl metadata.MD, pr *peer.Peer, intern *interner) {
	if gc != nil {
		gc.reqs++
		res.Conn, res.ConnReq = gc.id, gc.reqs
	}
	switch {
	case len(hdr[r.grpc.backend]) > 0:
		res.Backend = intern.get([]byte(hdr[r.grpc.backend][0]))
	case len(trl[r.grpc.backend]) > 0:
		res.Backend = intern.get([]byte(trl[r.grpc.backend][0]))
	case gc != nil:
		res.Backend = gc.remote
	case pr.Addr != nil:
		res.Backend = pr.Addr.String()
	}
	if v := hdr[totalRequestKey]; len(v) > 0 {
		if t, perr := strconv.ParseInt(v[0], 10, 64); perr == nil && t >= 0 {
			res.ServerTotal = t
		}
	}
	if err != nil {
		s := status.Convert(err)
		res.GRPCCode = uint16(s.Code())
		res.Err = err.Error()
		if hdr != nil {
			res.Status = 200 // the server answered, with an error status
		}
		return
	}
	res.Status = 200
}

const totalRequestKey = "total-request"

// ended reports whether the connection is gone or going.
func (c *gConn) ended() bool {
	return c != nil && (c.closed.Load() || c.goaway.Load() != nil || c.readErr.Load() != nil)
}

// endReason is why c ended, as far as the client saw: GOAWAY, the server
// closing it (EOF), a transport error, or not at all.
func (c *gConn) endReason() CloseReason {
	switch {
	case c == nil:
		return CloseNone
	case c.goaway.Load() != nil:
		return CloseGoAway
	case c.readErr.Load() != nil:
		if errors.Is(*c.readErr.Load(), io.EOF) {
			return CloseEOF
		}
		if !c.closed.Load() {
			return CloseError
		}
	}
	return CloseNone
}

// closeSlot counts the slot's connections by how they ended.
func (r *run) closeSlot(slot *gSlot, st *Stats) {
	slot.mu.Lock()
	defer slot.mu.Unlock()
	st.Connections += slot.dialed.Load()
	st.DialErrors += slot.failed.Load()
	for _, c := range slot.all {
		reason := CloseNone
		if ga := c.goaway.Load(); ga != nil {
			reason = CloseGoAway
			if st.GoAways == nil {
				st.GoAways = map[string]int64{}
			}
			st.GoAways[goAwayKey(ga)]++
		} else if e := c.readErr.Load(); e != nil && !errors.Is(*e, net.ErrClosed) {
			reason = CloseEOF
			if !errors.Is(*e, io.EOF) {
				reason = CloseError
			}
		}
		st.Closes[reason]++
	}
}

// goAwayKey names a GOAWAY as its code and debug text ("NO_ERROR max_age").
func goAwayKey(ga *h2frame.GoAway) string {
	k := h2frame.CodeName(ga.Code)
	if ga.Debug != "" {
		k += " " + ga.Debug
	}
	return k
}

// recordStream emits a stream's life as a KindSocket record, so that the
// report shows how long each backend held streams: Start is when it
// opened, Latency how long it lasted, ConnReq its messages, Close how its
// connection ended (CloseNone: open when the run ended, or ended cleanly).
// A stream that failed before its first message carries the error.
func (r *run) recordStream(opened time.Duration, gc *gConn, hdr metadata.MD, pr *peer.Peer, msgs uint32, err error, runEnded bool, intern *interner) {
	res := Result{Kind: KindSocket, Start: opened, Latency: time.Since(r.start) - opened, ServerTotal: -1}
	var failed error
	if msgs == 0 && err != nil && err != io.EOF && !runEnded {
		failed = err
	}
	if msgs == 0 && failed == nil {
		return // opened as the run ended, or an empty stream: nothing was held
	}
	r.fillGRPC(&res, failed, gc, hdr, nil, pr, intern)
	if gc != nil {
		gc.reqs-- // fillGRPC counted the record as a message
	}
	res.ConnReq, res.ServerTotal = msgs, -1
	if !runEnded && err != nil && err != io.EOF && gc.ended() {
		res.Close = gc.endReason()
	}
	r.sinkMu.Lock()
	r.sink.Record(&res)
	r.sinkMu.Unlock()
}

// streamGRPC keeps one server-streaming RPC open on the slot's connection
// and records every message: its latency is the time since the previous
// message (or since the stream opened). A stream the server ends is
// reopened (on a new connection when the old one went away); one that ends
// with an error status (a connection closed after its GOAWAY grace, say) is
// also recorded as a failed RPC with that status.
func (r *run) streamGRPC(cc *grpc.ClientConn, slot *gSlot, st *Stats, quota int64) {
	g := r.grpc
	intern := newInterner()
	desc := &grpc.StreamDesc{ServerStreams: true}
	ctx, cancel := context.WithCancel(r.abort)
	watched := make(chan struct{})
	go func() { // the run's stop ends the open stream
		defer close(watched)
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		cancel()
		<-watched
	}()
	if len(g.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, g.md)
	}
	for !r.stopped.Load() && quota != 0 {
		opened := time.Since(r.start)
		var pr peer.Peer
		s, err := cc.NewStream(ctx, desc, g.method, grpc.Peer(&pr))
		if err == nil {
			if err = s.SendMsg(&g.req); err == nil {
				err = s.CloseSend()
			}
		}
		var hdr metadata.MD
		var gc *gConn
		prev := opened
		var msgs uint32
		for err == nil {
			var n int64
			if err = s.RecvMsg(&n); err != nil {
				break
			}
			if hdr == nil {
				hdr, _ = s.Header()
			}
			if gc == nil {
				if p, ok := peer.FromContext(s.Context()); ok {
					gc = slot.lookup(p.LocalAddr)
				}
			}
			seq, _, ok := r.claim(nil, &quota)
			if !ok {
				break
			}
			now := time.Since(r.start)
			res := Result{Seq: uint64(seq), Start: prev, Latency: now - prev, ServerTotal: -1, Bytes: n}
			r.fillGRPC(&res, nil, gc, hdr, nil, &pr, &intern)
			// The header's server count is the stream's, not the message's.
			res.ServerTotal = -1
			r.record(&res, st)
			msgs++
			prev = now
		}
		if gc == nil {
			gc = slot.lookup(pr.LocalAddr)
		}
		runEnded := r.stopped.Load() || quota == 0
		r.recordStream(opened, gc, hdr, &pr, msgs, err, runEnded, &intern)
		if runEnded || err == io.EOF {
			continue // ended by the run, or cleanly by the server
		}
		seq, _, ok := r.claim(nil, &quota)
		if !ok {
			return
		}
		now := time.Since(r.start)
		res := Result{Seq: uint64(seq), Start: prev, Latency: now - prev, ServerTotal: -1}
		r.fillGRPC(&res, err, gc, hdr, nil, &pr, &intern)
		if gc.ended() {
			res.Close = gc.endReason()
		}
		r.record(&res, st)
		// Give a failing server a moment instead of spinning.
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-r.stop:
			t.Stop()
		}
	}
}
