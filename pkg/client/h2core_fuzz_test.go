package client

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bytesConn is a net.Conn whose reads come from a fixed server byte stream.
type bytesConn struct {
	net.Conn
	r io.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// serverFrames renders frames a server might send, for the fuzz corpus.
func serverFrames(write func(fr *http2.Framer, block func(kv ...string) []byte)) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&hb)
	write(fr, func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	})
	return out.Bytes()
}

// FuzzH2Frames feeds a server's byte stream to the HTTP/2 core with three
// streams open (gRPC or HTTP, by the first byte's low bit): no panic, the header list bound holds, and a stream
// ends only with a status or an error.
func FuzzH2Frames(f *testing.F) {
	f.Add(serverFrames(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: block(":status", "200", "content-type", "application/grpc", "accept-request-hostname", "p")})
		fr.WriteData(1, false, []byte{0, 0, 0, 0, 2, 'h', 'i'})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: block("grpc-status", "0")})
		fr.WritePing(false, [8]byte{})
		fr.WriteRSTStream(3, http2.ErrCodeRefusedStream)
		fr.WriteWindowUpdate(0, 100)
		fr.WriteGoAway(1, http2.ErrCodeNo, []byte("max_age"))
	}))
	f.Add(serverFrames(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200")})
		fr.WriteContinuation(1, false, block("x-a", strings.Repeat("a", 100)))
		fr.WriteContinuation(1, true, block("grpc-status", "3", "grpc-message", "bad%20arg"))
		fr.WriteDataPadded(3, true, []byte{1, 2}, []byte{0, 0, 0})
		fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true})
	}))
	f.Add([]byte{0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0})
	blocks := newH2Blocks([]h2Field{{":method", "POST"}, {":path", "/a.B/C"}})
	f.Fuzz(func(t *testing.T, data []byte) {
		grpc := len(data) > 0 && data[0]&1 == 0 // HTTP mode too
		cn := newH2Conn(&bytesConn{r: bytes.NewReader(data)}, 1, &blocks, grpc, "accept-request-hostname")
		var ss [3]h2Stream
		for i := range ss {
			ss[i].body = []byte{0, 0, 0, 0, 1, 'x'}
			cn.start(&ss[i], &blocks)
		}
		for i := 0; i < 1000 && cn.err == nil; i++ {
			h, p, ok, err := cn.nextFrame()
			if err == nil && ok {
				err = cn.process(h, p)
			}
			if err != nil {
				cn.fail(err)
				break
			}
			if !ok && cn.fill() != nil {
				break
			}
		}
		if cn.hsize > maxH2HeaderList+1<<16 {
			t.Fatalf("header list of %d bytes accepted", cn.hsize)
		}
		for i := range ss {
			s := &ss[i]
			if s.ended && s.err == "" && !s.headers && !s.unprocessed {
				t.Fatalf("stream %d ended with no header and no error", s.id)
			}
			if s.bytes < 0 {
				t.Fatalf("stream %d: %d bytes", s.id, s.bytes)
			}
			if s.ended {
				grpcOutcome(s) // must not panic
			}
		}
	})
}

// FuzzGRPCStatus: grpc-status, grpc-message and content-type decoding never
// panic; a message without '%' is kept as it is, and percent-encoding
// round-trips.
func FuzzGRPCStatus(f *testing.F) {
	for _, s := range []string{"0", "14", "-1", "99999999999", "x", "no%20way", "%", "%zz", "%C3%A9", "application/grpc+proto", "application/grpcx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if n := parseGRPCStatus(v); n < -2 {
			t.Fatalf("status %d for %q", n, v)
		}
		isGRPCContentType(v)
		got := decodeGRPCMessage(v)
		if !strings.Contains(v, "%") && got != v {
			t.Fatalf("%q decoded to %q", v, got)
		}
		var enc strings.Builder
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 || c > 0x7e || c == '%' {
				enc.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
			} else {
				enc.WriteByte(c)
			}
		}
		if back := decodeGRPCMessage(enc.String()); back != v {
			t.Fatalf("%q encoded %q decoded to %q", v, enc.String(), back)
		}
	})
}
