package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/kaload/kaload/internal/h2frame"
)

// The hand-written HTTP/2 client under hammer's gRPC unary path: one
// connection per slot driven by the slot's own goroutine (no read loop, no
// writer goroutine, no channel per request), request header blocks encoded
// once per run, every request's frames in one write. grpc-go's ClientConn
// spent 18-20 µs of CPU per unary RPC here and made the server answer BDP
// pings and grpc-timeout timers; this core measured less on both sides (see
// bench/README.md, gRPC).

const (
	h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

	frData         = 0x0
	frHeaders      = 0x1
	frPriority     = 0x2
	frRSTStream    = 0x3
	frSettings     = 0x4
	frPushPromise  = 0x5
	frPing         = 0x6
	frGoAway       = 0x7
	frWindowUpdate = 0x8
	frContinuation = 0x9

	flEndStream  = 0x1
	flAck        = 0x1
	flEndHeaders = 0x4
	flPadded     = 0x8
	flPriority   = 0x20

	h2ErrNo          = 0x0
	h2ErrProtocol    = 0x1
	h2ErrFlowControl = 0x3
	h2ErrFrameSize   = 0x6
	h2ErrRefused     = 0x7
	h2ErrCancel      = 0x8
	h2ErrCompression = 0x9

	// h2MaxFrame is the largest frame payload we accept: the default
	// SETTINGS_MAX_FRAME_SIZE, which we never raise.
	h2MaxFrame = 16384
	// Receive windows: large, so that a server sends WINDOW_UPDATE-free
	// answers and we send a connection WINDOW_UPDATE only every 8 MB
	// consumed (grpc-go's client instead measures the bandwidth-delay
	// product with a PING the server must answer).
	h2StreamWindow = 4 << 20
	h2ConnWindow   = 16 << 20
	// h2MaxQueued bounds the request body bytes queued for one write: a
	// big body is not copied whole into the write buffer.
	h2MaxQueued = 256 << 10
	// h2MaxStreamsDefault bounds streams per connection until the server's
	// SETTINGS say otherwise.
	h2MaxStreamsDefault = 100
	// hpack's default table size, which the server's decoder has until its
	// SETTINGS say otherwise (RFC 7541 §4.2).
	h2DefaultTable = 4096
)

// h2Field is one request header field.
type h2Field struct{ name, value string }

// h2Blocks are a run's request header block in the three encodings a
// connection uses: the first request adds every field to the server's
// dynamic table, later ones name them by index (one byte each), and plain
// is for a server whose table is too small.
type h2Blocks struct {
	first, again, plain []byte
	indexed             bool // first and again use the dynamic table
}

// newH2Blocks encodes fields (none Huffman-coded: the server decodes them
// without a table walk). The dynamic table is used when the fields fit
// hpack's default size.
func newH2Blocks(fields []h2Field) h2Blocks {
	var b h2Blocks
	size := 0
	for _, f := range fields {
		size += len(f.name) + len(f.value) + 32
	}
	for i, f := range fields {
		b.plain = appendHpackLiteral(b.plain, 0x00, 4, f)
		if size <= h2DefaultTable {
			b.first = appendHpackLiteral(b.first, 0x40, 6, f)
			// After all n insertions field i (0-based) sits at 62+n-1-i.
			b.again = appendHpackInt(b.again, 0x80, 7, uint64(62+len(fields)-1-i))
		}
	}
	b.indexed = size <= h2DefaultTable
	return b
}

// appendHpackLiteral appends a literal field whose name is indexed when the
// static table has it. prefix and bits select the representation: 0x40/6
// with incremental indexing, 0x00/4 without.
func appendHpackLiteral(dst []byte, prefix byte, bits uint8, f h2Field) []byte {
	if i := hpackStaticName(f.name); i > 0 {
		dst = appendHpackInt(dst, prefix, bits, uint64(i))
	} else {
		dst = append(dst, prefix)
		dst = appendHpackString(dst, f.name)
	}
	return appendHpackString(dst, f.value)
}

func appendHpackString(dst []byte, s string) []byte {
	dst = appendHpackInt(dst, 0, 7, uint64(len(s)))
	return append(dst, s...)
}

// appendHpackInt appends an RFC 7541 §5.1 integer with an n-bit prefix.
func appendHpackInt(dst []byte, prefix byte, n uint8, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(dst, prefix|byte(v))
	}
	dst = append(dst, prefix|byte(max))
	v -= max
	for v >= 128 {
		dst = append(dst, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(dst, byte(v))
}

// hpackStaticName is the static table index of a name (RFC 7541 Appendix
// A) for the names requests use, 0 for others.
func hpackStaticName(name string) int {
	switch name {
	case ":authority":
		return 1
	case ":method":
		return 2
	case ":path":
		return 4
	case ":scheme":
		return 6
	case "accept":
		return 19
	case "content-length":
		return 28
	case "content-type":
		return 31
	case "user-agent":
		return 58
	}
	return 0
}

// h2Stream is one request on a connection, from its first frame to its
// last, then recycled for the slot's next request.
type h2Stream struct {
	id  uint32
	res Result // Seq, Start, Delay set when claimed; the rest when it ends
	// deadline is when the request times out (Config.Timeout from its send).
	deadline time.Time
	tries    int

	body    []byte // request DATA not yet sent
	sendWin int64  // the server's window for this stream
	sent    bool   // END_STREAM sent

	// response
	headers  bool // the response's first header block arrived
	trailers bool // a second header block (or END_STREAM on the first) arrived
	status   int
	grpc     h2GRPC
	backend  string // from the response header
	backendT string // from the trailer
	total    int64
	bytes    int64 // DATA payload, or gRPC message bytes
	unacked  int64 // DATA received on the stream since its last WINDOW_UPDATE
	ended    bool  // END_STREAM received
	// err is a failure of the stream itself (RST_STREAM, timeout, protocol
	// error); errCode its gRPC code.
	err     string
	errCode uint16
	// unprocessed: refused (REFUSED_STREAM, or above a GOAWAY's last stream
	// id): the server did not act on it, so it may be sent again.
	unprocessed bool
}

// h2GRPC is a gRPC answer's status and message framing.
type h2GRPC struct {
	ctype    bool // content-type application/grpc[+...]
	status   int  // grpc-status; -1 when absent
	message  string
	encoding bool // grpc-encoding other than identity
	// message framing across DATA frames: prefix bytes still to read (of
	// 5), message bytes still to skip.
	prefixN    int
	prefix     [5]byte
	msgLeft    uint32
	compressed bool
}

// h2Conn is one HTTP/2 connection of a slot.
type h2Conn struct {
	c       net.Conn
	id      uint64
	remote  string
	reqs    uint32 // requests recorded on it
	started uint32 // streams started on it
	limit   uint32 // Config.MaxRequestsPerConn; 0 = none
	last    string // backend of its last answer (HTTP: a failed request's backend)

	grpc       bool   // follow gRPC message framing and status
	backendKey string // lower-case name of the backend header
	rb         []byte // read buffer: rb[rpos:rend] not yet parsed
	rpos, rend int
	wb         []byte // frames to write

	dec     *hpack.Decoder
	hblock  *h2Stream // stream of the header block being decoded (nil: not ours)
	hstream uint32    // stream id of a header block still expecting CONTINUATION
	hsize   int       // header list size of the block so far
	hend    bool      // that block's HEADERS had END_STREAM
	htrail  bool      // that block is a trailer
	hbad    error     // a decode error within the block

	streams  []*h2Stream // open streams, in id order
	nextID   uint32
	sendWin  int64  // the server's connection window
	initWin  int64  // the server's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame uint32 // the server's SETTINGS_MAX_FRAME_SIZE
	maxConc  uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	unacked  int64  // connection DATA consumed since our last WINDOW_UPDATE

	indexed    bool // the request block may use the dynamic table
	sentFirst  bool // the indexing block went out
	tableShrnk bool // the server shrank its table: signal size 0 first

	goaway  *h2frame.GoAway // the first GOAWAY
	lastID  uint32          // the lowest last-stream-id of GOAWAYs
	err     error           // the connection failed: no more frames
	eof     bool            // it failed by the server closing it
	aborted bool            // it failed by Config.Abort

	deadline time.Time // the read/write deadline set on c
	unwatch  func() bool
}

var errH2HeaderList = errors.New("http2: response header list larger than the client's bound")

// errH2 is a connection error we detected (the server broke the protocol).
type errH2 struct {
	code uint32
	msg  string
}

func (e *errH2) Error() string {
	return "http2: connection error: " + h2frame.CodeName(e.code) + ": " + e.msg
}

func newH2Conn(c net.Conn, id uint64, blocks *h2Blocks, grpc bool, backendKey string) *h2Conn {
	cn := &h2Conn{c: c, id: id, remote: c.RemoteAddr().String(), nextID: 1, grpc: grpc, backendKey: backendKey,
		sendWin: 65535, initWin: 65535, maxFrame: 16384, maxConc: h2MaxStreamsDefault,
		rb: make([]byte, 4096), indexed: blocks.indexed}
	cn.dec = hpack.NewDecoder(h2DefaultTable, cn.onField)
	cn.dec.SetMaxStringLength(maxH2HeaderList)
	// Preface, our SETTINGS (no push, big stream windows, the header
	// list bound) and a connection WINDOW_UPDATE to h2ConnWindow.
	cn.wb = append(cn.wb, h2Preface...)
	cn.wb = appendFrameHeader(cn.wb, 18, frSettings, 0, 0)
	cn.wb = appendSetting(cn.wb, 0x2, 0) // ENABLE_PUSH
	cn.wb = appendSetting(cn.wb, 0x4, h2StreamWindow)
	cn.wb = appendSetting(cn.wb, 0x6, maxH2HeaderList)
	cn.wb = appendFrameHeader(cn.wb, 4, frWindowUpdate, 0, 0)
	cn.wb = binary.BigEndian.AppendUint32(cn.wb, h2ConnWindow-65535)
	return cn
}

func appendFrameHeader(dst []byte, length int, typ, flags byte, stream uint32) []byte {
	return append(dst, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

func appendSetting(dst []byte, id uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(dst, id), v)
}

// usable reports whether a new stream may start on the connection.
func (cn *h2Conn) usable() bool {
	return cn.err == nil && cn.goaway == nil && cn.nextID < 1<<31-1 && (cn.limit == 0 || cn.started < cn.limit)
}

// start queues a new stream's HEADERS (and as much of its body as the
// windows allow).
func (cn *h2Conn) start(s *h2Stream, blocks *h2Blocks) {
	s.id = cn.nextID
	cn.nextID += 2
	cn.started++
	s.sendWin = cn.initWin
	s.headers, s.trailers, s.ended, s.unprocessed = false, false, false, false
	s.status, s.backend, s.backendT, s.total, s.bytes, s.unacked = 0, "", "", -1, 0, 0
	s.err, s.errCode, s.sent = "", 0, false
	s.grpc = h2GRPC{status: -1}
	block := blocks.plain
	switch {
	case cn.indexed && cn.sentFirst:
		block = blocks.again
	case cn.indexed:
		block = blocks.first
		cn.sentFirst = true
	}
	var flags byte = flEndHeaders
	if len(s.body) == 0 {
		flags |= flEndStream
		s.sent = true
	}
	if cn.tableShrnk {
		cn.tableShrnk = false
		cn.wb = appendFrameHeader(cn.wb, 1+len(block), frHeaders, flags, s.id)
		cn.wb = append(cn.wb, 0x20) // dynamic table size update: 0
	} else if len(block) <= int(cn.maxFrame) {
		cn.wb = appendFrameHeader(cn.wb, len(block), frHeaders, flags, s.id)
	} else {
		cn.wb = appendFrameHeader(cn.wb, int(cn.maxFrame), frHeaders, flags&^flEndHeaders, s.id)
		cn.wb = append(cn.wb, block[:cn.maxFrame]...)
		block = block[cn.maxFrame:]
		for len(block) > int(cn.maxFrame) {
			cn.wb = appendFrameHeader(cn.wb, int(cn.maxFrame), frContinuation, 0, s.id)
			cn.wb = append(cn.wb, block[:cn.maxFrame]...)
			block = block[cn.maxFrame:]
		}
		cn.wb = appendFrameHeader(cn.wb, len(block), frContinuation, flEndHeaders, s.id)
	}
	cn.wb = append(cn.wb, block...)
	cn.streams = append(cn.streams, s)
	cn.sendBody(s)
}

// sendBody queues what of s's body the windows allow.
func (cn *h2Conn) sendBody(s *h2Stream) {
	for !s.sent && len(cn.wb) < h2MaxQueued {
		n := min(int64(len(s.body)), s.sendWin, cn.sendWin, int64(cn.maxFrame))
		if n <= 0 && len(s.body) > 0 {
			return // wait for WINDOW_UPDATE
		}
		var flags byte
		if int(n) == len(s.body) {
			flags = flEndStream
			s.sent = true
		}
		cn.wb = appendFrameHeader(cn.wb, int(n), frData, flags, s.id)
		cn.wb = append(cn.wb, s.body[:n]...)
		s.body = s.body[n:]
		s.sendWin -= n
		cn.sendWin -= n
	}
}

// reset queues RST_STREAM for s (we gave up on it).
func (cn *h2Conn) reset(s *h2Stream, code uint32) {
	cn.wb = appendFrameHeader(cn.wb, 4, frRSTStream, 0, s.id)
	cn.wb = binary.BigEndian.AppendUint32(cn.wb, code)
}

// flush writes the queued frames.
func (cn *h2Conn) flush() error {
	if len(cn.wb) == 0 || cn.err != nil {
		return cn.err
	}
	for len(cn.wb) > 0 {
		_, err := cn.c.Write(cn.wb)
		cn.wb = cn.wb[:0]
		if err != nil {
			cn.fail(fmt.Errorf("write: %w", err))
			break
		}
		cn.moreBody() // bodies go out h2MaxQueued at a time
	}
	return cn.err
}

func (cn *h2Conn) fail(err error) {
	if cn.err == nil {
		cn.err = err
	}
}

// h2FrameHdr is a parsed frame header.
type h2FrameHdr struct {
	length uint32
	typ    byte
	flags  byte
	stream uint32
}

// nextFrame returns the next complete frame in the read buffer (ok false
// when more bytes are needed), or a connection error.
func (cn *h2Conn) nextFrame() (h h2FrameHdr, payload []byte, ok bool, err error) {
	b := cn.rb[cn.rpos:cn.rend]
	if len(b) < 9 {
		return h, nil, false, nil
	}
	h = h2FrameHdr{length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]), typ: b[3], flags: b[4],
		stream: binary.BigEndian.Uint32(b[5:9]) & 0x7fffffff}
	if h.length > h2MaxFrame {
		// An HTTP/1 server's answer reads as a huge first frame.
		return h, nil, false, &errH2{h2ErrFrameSize, fmt.Sprintf("frame too large: %d bytes, limit %d (the bytes %q do not look like HTTP/2)", h.length, h2MaxFrame, b[:min(len(b), 9)])}
	}
	if len(b) < 9+int(h.length) {
		return h, nil, false, nil
	}
	cn.rpos += 9 + int(h.length)
	return h, b[9 : 9+h.length], true, nil
}

// fill reads more bytes into the buffer.
func (cn *h2Conn) fill() error {
	if cn.rpos == cn.rend {
		cn.rpos, cn.rend = 0, 0
	} else if cn.rpos > 0 && (cn.rend == len(cn.rb) || cn.rpos > len(cn.rb)/2) {
		cn.rend = copy(cn.rb, cn.rb[cn.rpos:cn.rend])
		cn.rpos = 0
	}
	if cn.rend == len(cn.rb) {
		if len(cn.rb) >= 9+h2MaxFrame+4096 {
			return &errH2{h2ErrFrameSize, "frame larger than the buffer"} // unreachable: nextFrame bounds frames
		}
		nb := make([]byte, 9+h2MaxFrame+4096)
		copy(nb, cn.rb[:cn.rend])
		cn.rb = nb
	}
	n, err := cn.c.Read(cn.rb[cn.rend:])
	cn.rend += n
	if n > 0 {
		return nil
	}
	return err
}

// process handles one frame. Streams that ended are left in cn.streams with
// ended, err or unprocessed set; the caller collects them.
func (cn *h2Conn) process(h h2FrameHdr, p []byte) error {
	if cn.hstream != 0 && h.typ != frContinuation {
		return &errH2{h2ErrProtocol, "a header block was cut by another frame"}
	}
	switch h.typ {
	case frData:
		if h.stream == 0 {
			return &errH2{h2ErrProtocol, "DATA on stream 0"}
		}
		n := int64(len(p))
		cn.unacked += n
		if cn.unacked >= h2ConnWindow/2 {
			cn.wb = appendFrameHeader(cn.wb, 4, frWindowUpdate, 0, 0)
			cn.wb = binary.BigEndian.AppendUint32(cn.wb, uint32(cn.unacked))
			cn.unacked = 0
		}
		data, err := unpad(h, p)
		if err != nil {
			return err
		}
		s := cn.stream(h.stream)
		if s == nil || s.ended {
			return nil // a stream we reset or timed out: counted for the connection only
		}
		if !s.headers {
			return cn.streamErr(s, "DATA before HEADERS", 13) // grpc-go: Internal
		}
		s.unacked += n
		if s.unacked >= h2StreamWindow/2 && h.flags&flEndStream == 0 {
			cn.wb = appendFrameHeader(cn.wb, 4, frWindowUpdate, 0, s.id)
			cn.wb = binary.BigEndian.AppendUint32(cn.wb, uint32(s.unacked))
			s.unacked = 0
		}
		if cn.grpc && s.grpc.ctype {
			s.grpc.frame(s, data)
		} else {
			s.bytes += int64(len(data))
		}
		if h.flags&flEndStream != 0 {
			s.ended = true
		}
	case frHeaders:
		if h.stream == 0 {
			return &errH2{h2ErrProtocol, "HEADERS on stream 0"}
		}
		block, err := unpad(h, p)
		if err != nil {
			return err
		}
		if h.flags&flPriority != 0 {
			if len(block) < 5 {
				return &errH2{h2ErrFrameSize, "HEADERS priority too short"}
			}
			block = block[5:]
		}
		cn.hblock = cn.stream(h.stream)
		if cn.hblock != nil && cn.hblock.ended {
			cn.hblock = nil
		}
		cn.htrail = cn.hblock != nil && cn.hblock.headers
		cn.hend = h.flags&flEndStream != 0
		cn.hsize = 0
		cn.hbad = nil
		cn.hstream = h.stream
		return cn.headerFragment(block, h.flags&flEndHeaders != 0)
	case frContinuation:
		if cn.hstream == 0 || h.stream != cn.hstream {
			return &errH2{h2ErrProtocol, "CONTINUATION out of a header block"}
		}
		return cn.headerFragment(p, h.flags&flEndHeaders != 0)
	case frRSTStream:
		if len(p) != 4 {
			return &errH2{h2ErrFrameSize, "RST_STREAM of the wrong size"}
		}
		if s := cn.stream(h.stream); s != nil && !s.ended {
			code := binary.BigEndian.Uint32(p)
			s.ended = true
			if code == h2ErrRefused {
				s.unprocessed = true
			}
			s.err = "stream terminated by RST_STREAM with error code: " + h2frame.CodeName(code)
			s.errCode = rstGRPCCode(code)
		}
	case frSettings:
		if h.stream != 0 {
			return &errH2{h2ErrProtocol, "SETTINGS on a stream"}
		}
		if h.flags&flAck != 0 {
			return nil
		}
		if len(p)%6 != 0 {
			return &errH2{h2ErrFrameSize, "SETTINGS of the wrong size"}
		}
		for ; len(p) > 0; p = p[6:] {
			id, v := binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:])
			switch id {
			case 0x1: // HEADER_TABLE_SIZE of the server's decoder
				if v < h2DefaultTable && cn.indexed {
					cn.indexed, cn.tableShrnk = false, cn.sentFirst
				}
			case 0x3:
				cn.maxConc = v
			case 0x4:
				if v > 1<<31-1 {
					return &errH2{h2ErrFlowControl, "initial window too large"}
				}
				delta := int64(v) - cn.initWin
				cn.initWin = int64(v)
				for _, s := range cn.streams {
					s.sendWin += delta
				}
			case 0x5:
				if v < 16384 || v > 1<<24-1 {
					return &errH2{h2ErrProtocol, "bad MAX_FRAME_SIZE"}
				}
				cn.maxFrame = v
			}
		}
		cn.wb = appendFrameHeader(cn.wb, 0, frSettings, flAck, 0)
		cn.moreBody()
	case frPing:
		if len(p) != 8 || h.stream != 0 {
			return &errH2{h2ErrFrameSize, "bad PING"}
		}
		if h.flags&flAck == 0 {
			cn.wb = appendFrameHeader(cn.wb, 8, frPing, flAck, 0)
			cn.wb = append(cn.wb, p...)
		}
	case frGoAway:
		if len(p) < 8 || h.stream != 0 {
			return &errH2{h2ErrFrameSize, "bad GOAWAY"}
		}
		last := binary.BigEndian.Uint32(p) & 0x7fffffff
		if cn.goaway == nil {
			debug := p[8:]
			if len(debug) > 256 {
				debug = debug[:256]
			}
			cn.goaway = &h2frame.GoAway{LastStreamID: last, Code: binary.BigEndian.Uint32(p[4:]), Debug: string(debug)}
			cn.lastID = last
		}
		cn.lastID = min(cn.lastID, last)
		for _, s := range cn.streams {
			if s.id > cn.lastID && !s.ended {
				s.ended, s.unprocessed = true, true
				s.err = fmt.Sprintf("http2: server sent GOAWAY and closed the connection; LastStreamID=%d, ErrCode=%s, debug=%q",
					cn.lastID, h2frame.CodeName(cn.goaway.Code), cn.goaway.Debug)
				s.errCode = 14 // Unavailable
			}
		}
	case frWindowUpdate:
		if len(p) != 4 {
			return &errH2{h2ErrFrameSize, "WINDOW_UPDATE of the wrong size"}
		}
		inc := int64(binary.BigEndian.Uint32(p) & 0x7fffffff)
		if h.stream == 0 {
			if inc == 0 || cn.sendWin+inc > 1<<31-1 {
				return &errH2{h2ErrFlowControl, "bad connection WINDOW_UPDATE"}
			}
			cn.sendWin += inc
		} else if s := cn.stream(h.stream); s != nil {
			s.sendWin += inc
		}
		cn.moreBody()
	case frPushPromise:
		return &errH2{h2ErrProtocol, "PUSH_PROMISE though push is disabled"}
	}
	return nil
}

// moreBody queues body bytes that a window update made room for.
func (cn *h2Conn) moreBody() {
	for _, s := range cn.streams {
		if !s.sent && !s.ended {
			cn.sendBody(s)
		}
	}
}

func (cn *h2Conn) stream(id uint32) *h2Stream {
	for _, s := range cn.streams {
		if s.id == id {
			return s
		}
	}
	return nil
}

// streamErr ends s with a protocol error and resets it.
func (cn *h2Conn) streamErr(s *h2Stream, msg string, code uint16) error {
	s.ended = true
	s.err, s.errCode = "http2: "+msg, code
	cn.reset(s, h2ErrProtocol)
	return nil
}

func unpad(h h2FrameHdr, p []byte) ([]byte, error) {
	if h.flags&flPadded == 0 {
		return p, nil
	}
	if len(p) < 1 || int(p[0]) >= len(p) {
		return nil, &errH2{h2ErrProtocol, "padding longer than the frame"}
	}
	return p[1 : len(p)-int(p[0])], nil
}

// headerFragment decodes part of a header block; at its end the fields
// apply to the stream.
func (cn *h2Conn) headerFragment(p []byte, end bool) error {
	if _, err := cn.dec.Write(p); err != nil {
		return &errH2{h2ErrCompression, err.Error()}
	}
	if cn.hsize > maxH2HeaderList {
		return errH2HeaderList
	}
	if !end {
		return nil
	}
	if err := cn.dec.Close(); err != nil {
		return &errH2{h2ErrCompression, err.Error()}
	}
	cn.hstream = 0
	s := cn.hblock
	cn.hblock = nil
	if s == nil {
		return nil
	}
	if cn.hbad != nil {
		return cn.streamErr(s, cn.hbad.Error(), 13)
	}
	if !s.headers {
		s.headers = true
		if s.status == 0 {
			return cn.streamErr(s, "response without :status", 13)
		}
		if s.status >= 100 && s.status < 200 && !cn.hend {
			s.headers = false // informational: the real header block follows
			s.status = 0
			return nil
		}
	} else {
		s.trailers = true
	}
	if cn.hend {
		s.ended = true
		if !s.trailers {
			s.trailers = true // trailers-only
		}
	} else if s.trailers {
		return cn.streamErr(s, "trailer without END_STREAM", 13)
	}
	return nil
}

// onField is the hpack decoder's callback for every field of a block.
func (cn *h2Conn) onField(f hpack.HeaderField) {
	cn.hsize += len(f.Name) + len(f.Value) + 32
	if cn.hsize > maxH2HeaderList {
		cn.dec.SetEmitEnabled(false)
		return
	}
	s := cn.hblock
	if s == nil {
		return
	}
	if cn.htrail {
		switch f.Name {
		case "grpc-status":
			s.grpc.status = parseGRPCStatus(f.Value)
		case "grpc-message":
			s.grpc.message = decodeGRPCMessage(f.Value)
		}
		if f.Name == cn.backendKey {
			s.backendT = f.Value
		}
		return
	}
	switch f.Name {
	case ":status":
		n, err := strconv.Atoi(f.Value)
		if err != nil || n < 100 || n > 999 {
			cn.hbad = fmt.Errorf("malformed :status %q", f.Value)
			return
		}
		s.status = n
	case "content-type":
		s.grpc.ctype = isGRPCContentType(f.Value)
	case "grpc-status":
		s.grpc.status = parseGRPCStatus(f.Value)
	case "grpc-message":
		s.grpc.message = decodeGRPCMessage(f.Value)
	case "grpc-encoding":
		s.grpc.encoding = f.Value != "identity"
	case "total-request":
		if t, err := strconv.ParseInt(f.Value, 10, 64); err == nil && t >= 0 {
			s.total = t
		}
	}
	if f.Name == cn.backendKey {
		s.backend = f.Value
	}
}

// frame follows gRPC's length-prefixed messages through a DATA payload,
// counting the messages' bytes.
func (g *h2GRPC) frame(s *h2Stream, p []byte) {
	for len(p) > 0 {
		if g.msgLeft > 0 {
			n := min(uint32(len(p)), g.msgLeft)
			g.msgLeft -= n
			s.bytes += int64(n)
			p = p[n:]
			continue
		}
		n := copy(g.prefix[g.prefixN:], p)
		g.prefixN += n
		p = p[n:]
		if g.prefixN == 5 {
			g.prefixN = 0
			if g.prefix[0] != 0 {
				g.compressed = true
			}
			g.msgLeft = binary.BigEndian.Uint32(g.prefix[1:])
		}
	}
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
