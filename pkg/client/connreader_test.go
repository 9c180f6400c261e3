package client

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// connReader must read like the bufio.Reader it replaced, however the bytes
// arrive, and hold its buffer only while bytes are buffered.
func TestConnReaderLikeBufio(t *testing.T) {
	long := strings.Repeat("x", connBufSize+10)
	for _, tc := range []struct {
		name string
		in   string
		ops  string // l: ReadSlice('\n'), dN: Discard(N), a: discard all
	}{
		{"lines", "a\nbb\n\nccc", "llll"},
		{"discard across reads", "head\n0123456789tail\n", "ld5ld3"},
		{"discard past end", "ab\ncd", "ld10"},
		{"line too long", long + "\n", "ll"},
		{"until close", "x\n" + long, "la"},
		{"empty", "", "la"},
	} {
		for _, chunk := range []bool{false, true} {
			mk := func() io.Reader {
				var r io.Reader = strings.NewReader(tc.in)
				if chunk {
					r = iotest.OneByteReader(r)
				}
				return r
			}
			cr := newConnReader(mk())
			br := bufio.NewReaderSize(mk(), connBufSize)
			for i := 0; i < len(tc.ops); i++ {
				switch tc.ops[i] {
				case 'l':
					a, aerr := cr.ReadSlice('\n')
					b, berr := br.ReadSlice('\n')
					if string(a) != string(b) || !errors.Is(aerr, berr) {
						t.Fatalf("%s (one byte a read: %v) op %d ReadSlice: %d bytes, %v; bufio %d bytes, %v", tc.name, chunk, i, len(a), aerr, len(b), berr)
					}
				case 'd':
					n := int(tc.ops[i+1] - '0')
					if i+2 < len(tc.ops) && tc.ops[i+2] >= '0' && tc.ops[i+2] <= '9' {
						n = n*10 + int(tc.ops[i+2]-'0')
						i++
					}
					i++
					a, aerr := cr.Discard(n)
					b, berr := br.Discard(n)
					if a != b || !errors.Is(aerr, berr) {
						t.Fatalf("%s (one byte a read: %v) op %d Discard(%d): %d, %v; bufio %d, %v", tc.name, chunk, i, n, a, aerr, b, berr)
					}
				case 'a':
					a, aerr := cr.discardAll()
					b, berr := io.Copy(io.Discard, br)
					if a != b || aerr != berr {
						t.Fatalf("%s (one byte a read: %v) op %d discard all: %d, %v; io.Copy %d, %v", tc.name, chunk, i, a, aerr, b, berr)
					}
				}
				if cr.Buffered() != br.Buffered() {
					t.Fatalf("%s op %d: %d buffered, bufio %d", tc.name, i, cr.Buffered(), br.Buffered())
				}
			}
		}
	}
}

func TestConnReaderRelease(t *testing.T) {
	cr := newConnReader(strings.NewReader("a\nb\n"))
	if _, err := cr.ReadSlice('\n'); err != nil {
		t.Fatal(err)
	}
	cr.release()
	if cr.buf == nil {
		t.Fatal("released a buffer that still holds \"b\\n\"")
	}
	if line, err := cr.ReadSlice('\n'); err != nil || string(line) != "b\n" {
		t.Fatalf("second line %q, %v", line, err)
	}
	cr.release()
	if cr.buf != nil {
		t.Fatal("an empty reader kept its buffer")
	}
}
