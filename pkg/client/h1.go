package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits that keep a hostile or broken server from making the engine hang or grow.
const (
	maxHeaderLines   = 128
	maxInformational = 8 // 1xx responses skipped before the real one
)

// Parse errors are package values so the hot path never formats anything.
var (
	errStatusLine     = errors.New("malformed status line")
	errHeaderLine     = errors.New("malformed header line")
	errLineTooLong    = errors.New("response line too long")
	errTooManyHeaders = errors.New("too many response header lines")
	errContentLength  = errors.New("malformed Content-Length")
	errBothLengths    = errors.New("both Content-Length and Transfer-Encoding")
	errTransferEnc    = errors.New("unsupported Transfer-Encoding")
	errChunk          = errors.New("malformed chunked body")
	errSwitching      = errors.New("unexpected 101 Switching Protocols")
	errTooMany1xx     = errors.New("too many 1xx responses")
)

// response is what the parser extracts from one HTTP/1.x response.
type response struct {
	status      int
	close       bool  // the server will close the connection after this response
	bytes       int64 // body bytes
	backend     string
	serverTotal int64
	started     bool // at least one byte of the response arrived
	head        bool // the final response's header block was read whole
}

// h1Parser reads responses strictly. It keeps no per-response state besides its
// interner, so one parser serves one worker for the whole run.
type h1Parser struct {
	backendKey []byte // lower-case header name
	intern     interner
}

func newH1Parser(backendHeader string) *h1Parser {
	return &h1Parser{backendKey: bytes.ToLower([]byte(backendHeader)), intern: newInterner()}
}

var (
	keyContentLength = []byte("content-length")
	keyTransferEnc   = []byte("transfer-encoding")
	keyConnection    = []byte("connection")
	keyTotalRequest  = []byte("total-request")
)

// read parses one response from br and discards its body. head says the request
// was HEAD (no body whatever the headers say).
func (p *h1Parser) read(br *connReader, head bool, r *response) error {
	*r = response{serverTotal: -1}
	for n := 0; ; n++ {
		if n > maxInformational {
			return errTooMany1xx
		}
		if err := p.readHead(br, r); err != nil {
			return err
		}
		if r.status >= 200 {
			break
		}
		if r.status == 101 {
			return errSwitching
		}
		// 1xx: a final response follows on the same connection.
	}
	return p.readBody(br, head, r)
}

// readHead reads the status line and headers. Header values are used before the
// next ReadSlice, which invalidates them.
func (p *h1Parser) readHead(br *connReader, r *response) error {
	line, err := readLine(br)
	if len(line) > 0 || err == nil {
		r.started = true
	}
	if err != nil {
		return err
	}
	var h headState
	if err := h.status(line, r); err != nil {
		return err
	}
	for i := 0; ; i++ {
		if i == maxHeaderLines {
			return errTooManyHeaders
		}
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if err := p.header(line, r, &h); err != nil {
			return err
		}
	}
	return h.end(r)
}

// headState is what a response head's lines tell about its framing before
// the head ends. Both parsers (h1Parser pulls, h1Push is pushed) keep the
// rules here: the same line gives the same answer.
type headState struct {
	chunked, keepAlive, http10 bool
}

// status parses "HTTP/1.x SSS[ reason]" into r.status and starts a head.
func (h *headState) status(line []byte, r *response) error {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return errStatusLine
	}
	st := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errStatusLine
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 {
		return errStatusLine
	}
	*h = headState{http10: line[7] == '0'}
	r.status = st
	r.bytes = -1 // unknown until Content-Length or chunked says otherwise
	return nil
}

// header applies one non-empty header line to r and h.
func (p *h1Parser) header(line []byte, r *response, h *headState) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || line[0] == ' ' || line[0] == '\t' || line[colon-1] == ' ' || line[colon-1] == '\t' {
		return errHeaderLine
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	switch {
	case asciiEqualFold(name, keyContentLength):
		n, ok := parseUint(value)
		if !ok || (r.bytes >= 0 && r.bytes != n) {
			return errContentLength
		}
		r.bytes = n
	case asciiEqualFold(name, keyTransferEnc):
		if !asciiEqualFold(value, []byte("chunked")) || h.chunked {
			return errTransferEnc
		}
		h.chunked = true
	case asciiEqualFold(name, keyConnection):
		forEachToken(value, func(tok []byte) {
			if asciiEqualFold(tok, []byte("close")) {
				r.close = true
			} else if asciiEqualFold(tok, []byte("keep-alive")) {
				h.keepAlive = true
			}
		})
	case asciiEqualFold(name, p.backendKey):
		r.backend = p.intern.get(value)
	case asciiEqualFold(name, keyTotalRequest):
		if n, ok := parseUint(value); ok {
			r.serverTotal = n
		}
	}
	return nil
}

// end finishes a head at its empty line.
func (h *headState) end(r *response) error {
	if h.chunked {
		if r.bytes >= 0 {
			return errBothLengths // a smuggling vector: refuse rather than guess
		}
		r.bytes = -2
	}
	if h.http10 && !h.keepAlive {
		r.close = true
	}
	r.head = r.status >= 200
	return nil
}

// noBody reports whether a final response carries no body whatever its
// headers say.
func noBody(head bool, status int) bool {
	return head || status == 204 || status == 304
}

// readBody discards the body framed as readHead found; r.bytes is -1 for
// "until close" and -2 for chunked on entry, the byte count on return.
func (p *h1Parser) readBody(br *connReader, head bool, r *response) error {
	if noBody(head, r.status) {
		r.bytes = 0
		return nil
	}
	switch r.bytes {
	case -1: // delimited by the connection's end
		r.close = true
		n, err := br.discardAll()
		r.bytes = n
		return err
	case -2:
		return p.readChunked(br, r)
	}
	n, err := br.Discard(int(r.bytes))
	if err != nil {
		r.bytes = int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func (p *h1Parser) readChunked(br *connReader, r *response) error {
	r.bytes = 0
	for {
		line, err := readLine(br)
		if err != nil {
			return noEOF(err)
		}
		size, err := chunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			break
		}
		n, err := br.Discard(int(size))
		r.bytes += int64(n)
		if err != nil {
			return noEOF(err)
		}
		line, err = readLine(br)
		if err != nil {
			return noEOF(err)
		}
		if len(line) != 0 {
			return errChunk
		}
	}
	// trailers, up to the empty line
	for i := 0; ; i++ {
		if i == maxHeaderLines {
			return errTooManyHeaders
		}
		line, err := readLine(br)
		if err != nil {
			return noEOF(err)
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// chunkSize parses a chunk-size line.
func chunkSize(line []byte) (int64, error) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions are ignored
	}
	size, ok := parseHex(trimOWS(line))
	if !ok {
		return 0, errChunk
	}
	return size, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine returns one line without its CRLF (a bare LF is accepted, as most
// clients do). The slice is valid until the next read from br.
func readLine(br *connReader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, errLineTooLong
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return line, err
	}
	return cleanLine(line[:len(line)-1])
}

// cleanLine drops the CR before a line's LF and refuses a CR or NUL inside.
func cleanLine(line []byte) ([]byte, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
		return nil, errHeaderLine
	}
	return line, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseUint parses a non-empty decimal without sign, up to 18 digits.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseHex parses a chunk size, up to 15 hex digits (far past any sane chunk).
func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

// asciiEqualFold compares b with lower, which must already be lower-case.
func asciiEqualFold(b, lower []byte) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		tok := v
		if i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

// interner turns header values into strings without allocating for values it
// has seen: a run meets few distinct backends, and each connection usually
// repeats the previous one.
type interner struct {
	last  string
	m     map[string]string
	bytes int // of the strings in m
}

// A server controls the backend header: one that sends ever new values must
// not grow each connection's table (4096 names of 8 KB were 750 MB at -c 8).
// Past these bounds values are allocated per response and collected.
const (
	maxInterned     = 4096
	maxInternedSize = 64 << 10
)

func newInterner() interner { return interner{m: make(map[string]string)} }

func (in *interner) get(b []byte) string {
	if string(b) == in.last { // no allocation: the compiler compares in place
		return in.last
	}
	if s, ok := in.m[string(b)]; ok {
		in.last = s
		return s
	}
	s := string(b)
	if len(in.m) < maxInterned && in.bytes+len(s) <= maxInternedSize {
		in.m[s] = s
		in.bytes += len(s)
	}
	in.last = s
	return s
}

// String is for debugging output of a response.
func (r *response) String() string {
	return fmt.Sprintf("status=%d close=%v bytes=%d backend=%q total=%d", r.status, r.close, r.bytes, r.backend, r.serverTotal)
}
