// Package h2frame follows the HTTP/2 frames in one direction of a
// connection's byte stream to see GOAWAY frames go by, without buffering or
// changing the bytes. grpc-go tells neither a server nor a client when a
// GOAWAY was sent or received; kaload needs both (to order a per-connection
// drain before the RPC's answer, and to name why a connection ended). The
// HTTP/2 server also counts the streams a client opens and resets with it
// (rapid reset).
package h2frame

import "encoding/binary"

const (
	headerLen   = 9
	typeGoAway  = 0x7
	maxDebugLen = 256 // debug data kept per GOAWAY; the rest is skipped
)

// Header is a frame's 9-byte header.
type Header struct {
	Length   uint32
	Type     byte
	Flags    byte
	StreamID uint32
}

// GoAway is one GOAWAY frame seen on the stream.
type GoAway struct {
	LastStreamID uint32
	Code         uint32 // HTTP/2 error code; 0 is NO_ERROR
	Debug        string // the debug data, cut to 256 bytes
}

// CodeName returns the RFC 9113 name of an HTTP/2 error code.
func CodeName(code uint32) string {
	names := [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
		"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
		"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}
	if int(code) < len(names) {
		return names[code]
	}
	return "UNKNOWN_ERROR"
}

// Scanner follows frames. Feed it every byte of one direction, in order,
// after any connection preface; it calls OnFrame with each frame's header as
// soon as the header is complete, and OnGoAway for each GOAWAY frame.
// It is not safe for concurrent use (one direction has one reader or writer).
type Scanner struct {
	OnFrame  func(Header)
	OnGoAway func(GoAway)

	hdr     [headerLen]byte
	nh      int    // header bytes collected
	left    uint32 // payload bytes of the current frame still to come
	goaway  bool   // the current frame is a GOAWAY
	payload []byte // the GOAWAY payload kept so far
	broken  bool   // a frame header made no sense: stop following
}

// Scan follows p, the next bytes of the stream.
func (s *Scanner) Scan(p []byte) {
	for len(p) > 0 && !s.broken {
		if s.left == 0 && s.nh < headerLen {
			n := copy(s.hdr[s.nh:], p)
			s.nh += n
			p = p[n:]
			if s.nh < headerLen {
				return
			}
			length := uint32(s.hdr[0])<<16 | uint32(s.hdr[1])<<8 | uint32(s.hdr[2])
			if s.OnFrame != nil {
				s.OnFrame(Header{Length: length, Type: s.hdr[3], Flags: s.hdr[4],
					StreamID: binary.BigEndian.Uint32(s.hdr[5:9]) & 0x7fffffff})
			}
			s.goaway = s.hdr[3] == typeGoAway
			s.payload = s.payload[:0]
			s.left = length
			if s.goaway && length < 8 {
				s.broken = true // a malformed GOAWAY: the peer ends the connection anyway
				return
			}
			if length == 0 {
				s.nh = 0
			}
			continue
		}
		n := min(uint32(len(p)), s.left)
		if s.goaway && len(s.payload) < 8+maxDebugLen {
			keep := min(int(n), 8+maxDebugLen-len(s.payload))
			s.payload = append(s.payload, p[:keep]...)
		}
		s.left -= n
		p = p[n:]
		if s.left == 0 {
			s.nh = 0
			if s.goaway {
				s.goaway = false
				if s.OnGoAway != nil {
					s.OnGoAway(GoAway{
						LastStreamID: binary.BigEndian.Uint32(s.payload[0:4]) & 0x7fffffff,
						Code:         binary.BigEndian.Uint32(s.payload[4:8]),
						Debug:        string(s.payload[8:]),
					})
				}
			}
		}
	}
}
