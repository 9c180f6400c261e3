package client

import (
	"bytes"
	"io"
)

// h1Push parses one HTTP/1.x response from bytes pushed to it as they
// arrive, for the event-loop engine: it holds no read buffer, only the
// part of a line that straddles two reads (part, nil otherwise). The rules
// are h1Parser's: the same line functions (headState, header, chunkSize,
// cleanLine), the same limits and the same errors, and the response fields
// it fills match h1Parser.read's for the same bytes however they are split
// (FuzzPushMatchesPull).
type h1Push struct {
	part   []byte // an unfinished line; nil while none straddles reads
	remain int64  // bytes left of a Content-Length body or of a chunk
	phase  uint8
	info   uint8 // 1xx heads seen
	lines  uint8 // header or trailer lines of the current block
	head   bool  // the request was HEAD
	h      headState
}

const (
	phStatus     = iota // status line
	phHeader            // header lines
	phBody              // Content-Length body: remain bytes
	phUntilClose        // body delimited by the connection's end
	phChunkSize         // chunk-size line
	phChunkData         // remain bytes of a chunk
	phChunkEnd          // the empty line after a chunk's data
	phTrailer           // trailer lines
)

// start readies s for the answer to a new request.
func (s *h1Push) start(head bool, r *response) {
	*s = h1Push{head: head}
	*r = response{serverTotal: -1}
}

// feed parses data. n is how much of it this response took: once done, the
// rest belongs to whatever follows it on the connection. An error ends the
// response (and the connection).
func (s *h1Push) feed(p *h1Parser, r *response, data []byte) (n int, done bool, err error) {
	for {
		switch s.phase {
		case phBody:
			k := min(int64(len(data)-n), s.remain)
			s.remain -= k
			n += int(k)
			return n, s.remain == 0, nil
		case phUntilClose:
			r.bytes += int64(len(data) - n)
			return len(data), false, nil
		case phChunkData:
			k := min(int64(len(data)-n), s.remain)
			s.remain -= k
			r.bytes += k
			n += int(k)
			if s.remain > 0 {
				return n, false, nil
			}
			s.phase = phChunkEnd
		}
		if n == len(data) {
			return n, false, nil
		}
		line, used, ok, err := s.line(data[n:])
		n += used
		if err != nil || !ok {
			return n, false, err
		}
		if done, err := s.onLine(p, r, line); done || err != nil {
			if done {
				s.part = nil
			}
			return n, done, err
		}
	}
}

// line takes the next line from data (without its CR LF) and how many bytes
// of data it used; ok is false when data ended first (then it all went to
// s.part). A line of connBufSize bytes or more without its LF is
// errLineTooLong, as h1Parser's buffer of that size says.
func (s *h1Push) line(data []byte) (line []byte, used int, ok bool, err error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if len(s.part)+len(data) >= connBufSize {
			return nil, len(data), false, errLineTooLong
		}
		s.part = append(s.part, data...)
		return nil, len(data), false, nil
	}
	if len(s.part)+i >= connBufSize {
		return nil, i + 1, false, errLineTooLong
	}
	line = data[:i]
	if len(s.part) > 0 {
		line = append(s.part, line...)
		s.part = line[:0] // line stays valid until the next append
	}
	line, err = cleanLine(line)
	return line, i + 1, err == nil, err
}

// onLine applies one complete line; done says the response ended with it.
func (s *h1Push) onLine(p *h1Parser, r *response, line []byte) (done bool, err error) {
	switch s.phase {
	case phStatus:
		r.started = true
		if err := s.h.status(line, r); err != nil {
			return false, err
		}
		s.phase, s.lines = phHeader, 0
	case phHeader:
		if len(line) > 0 {
			if err := p.header(line, r, &s.h); err != nil {
				return false, err
			}
			if s.lines++; s.lines == maxHeaderLines {
				return false, errTooManyHeaders
			}
			return false, nil
		}
		if err := s.h.end(r); err != nil {
			return false, err
		}
		if r.status < 200 {
			if r.status == 101 {
				return false, errSwitching
			}
			if s.info++; s.info > maxInformational {
				return false, errTooMany1xx
			}
			s.phase = phStatus // 1xx: a final response follows
			return false, nil
		}
		s.part = nil // only chunk lines are left to straddle reads
		return s.body(r), nil
	case phChunkSize:
		size, err := chunkSize(line)
		if err != nil {
			return false, err
		}
		if size == 0 {
			s.phase, s.lines = phTrailer, 0
		} else {
			s.phase, s.remain = phChunkData, size
		}
	case phChunkEnd:
		if len(line) != 0 {
			return false, errChunk
		}
		s.phase = phChunkSize
	case phTrailer:
		if len(line) == 0 {
			return true, nil
		}
		if s.lines++; s.lines == maxHeaderLines {
			return false, errTooManyHeaders
		}
	}
	return false, nil
}

// body starts the final response's body; true when it has none.
func (s *h1Push) body(r *response) bool {
	if noBody(s.head, r.status) {
		r.bytes = 0
		return true
	}
	switch r.bytes {
	case -1:
		r.close = true
		r.bytes = 0
		s.phase = phUntilClose
	case -2:
		r.bytes = 0
		s.phase = phChunkSize
	case 0:
		return true
	default:
		s.phase, s.remain = phBody, r.bytes
	}
	return false
}

// end is the connection's end (io.EOF) or a read error in the middle of the
// response: the error the response ends with, nil when the end completes it
// (a body delimited by the close), with r's fields as h1Parser leaves them.
func (s *h1Push) end(r *response, err error) error {
	partial := len(s.part) > 0
	switch s.phase {
	case phStatus:
		if partial {
			r.started = true
		}
		if err == io.EOF && partial {
			return io.ErrUnexpectedEOF
		}
	case phHeader:
		if err == io.EOF && partial {
			return io.ErrUnexpectedEOF
		}
	case phBody:
		r.bytes -= s.remain
		return noEOF(err)
	case phUntilClose:
		if err == io.EOF {
			return nil
		}
	default: // chunked
		return noEOF(err)
	}
	return err
}
