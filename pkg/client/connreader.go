package client

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// connBufSize bounds a response line (errLineTooLong past it) and is the most
// one read syscall takes.
const connBufSize = 16 << 10

var connBufs = sync.Pool{New: func() any { b := make([]byte, connBufSize); return &b }}

// connReader is the part of bufio.Reader the parser uses, with a buffer lent
// by a pool only while bytes are buffered: a connection waiting for its answer
// or idle holds none. At -c 18000 almost every connection waits, and a 16 KiB
// bufio.Reader each was most of the engine's memory (BenchmarkConnMemory).
// Over a rawStream with a request pending the buffer is taken only once the
// answer can be read.
type connReader struct {
	rd   io.Reader
	buf  *[]byte // nil while nothing is buffered and no read is under way
	r, w int
	err  error
}

func newConnReader(rd io.Reader) *connReader { return &connReader{rd: rd} }

// reset drops what is buffered, gives the buffer back and reads from rd next.
func (b *connReader) reset(rd io.Reader) {
	if b.buf != nil {
		connBufs.Put(b.buf)
	}
	*b = connReader{rd: rd}
}

// release gives the buffer back when nothing is buffered.
func (b *connReader) release() {
	if b.buf != nil && b.r == b.w {
		connBufs.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// Buffered is the number of bytes that can be read without a read call.
func (b *connReader) Buffered() int { return b.w - b.r }

func (b *connReader) readErr() error {
	err := b.err
	b.err = nil
	return err
}

// fill reads once more into the buffer, taking one first when it has none.
func (b *connReader) fill() {
	if b.buf == nil {
		if rs, ok := b.rd.(*rawStream); ok {
			bp, n, err := rs.readPooled()
			b.buf, b.r, b.w, b.err = bp, 0, n, err
			return
		}
		b.buf = connBufs.Get().(*[]byte)
	}
	buf := *b.buf
	if b.r > 0 {
		copy(buf, buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	for range 100 {
		n, err := b.rd.Read(buf[b.w:])
		b.w += n
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	b.err = io.ErrNoProgress
}

// ReadSlice is bufio.Reader.ReadSlice: the line is valid until the next read.
func (b *connReader) ReadSlice(delim byte) ([]byte, error) {
	s := 0 // bytes already searched
	for {
		if b.buf != nil {
			buf := *b.buf
			if i := bytes.IndexByte(buf[b.r+s:b.w], delim); i >= 0 {
				line := buf[b.r : b.r+s+i+1]
				b.r += s + i + 1
				return line, nil
			}
			if b.err == nil && b.w-b.r >= len(buf) {
				b.r = b.w
				return buf, bufio.ErrBufferFull
			}
		}
		if b.err != nil {
			var line []byte
			if b.buf != nil {
				line = (*b.buf)[b.r:b.w]
			}
			b.r = b.w
			return line, b.readErr()
		}
		s = b.w - b.r
		b.fill()
	}
}

// Discard is bufio.Reader.Discard.
func (b *connReader) Discard(n int) (int, error) {
	remain := n
	for {
		skip := min(b.w-b.r, remain)
		b.r += skip
		remain -= skip
		if remain == 0 {
			return n, nil
		}
		if b.err != nil {
			return n - remain, b.readErr()
		}
		b.fill()
	}
}

// discardAll discards up to the end of the stream, as io.Copy(io.Discard, b).
func (b *connReader) discardAll() (int64, error) {
	var n int64
	for {
		n += int64(b.w - b.r)
		b.r = b.w
		if b.err != nil {
			if err := b.readErr(); err != io.EOF {
				return n, err
			}
			return n, nil
		}
		b.fill()
	}
}
