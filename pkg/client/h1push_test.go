package client

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// outcome is one response a parser made of a stream: its fields and error.
type outcome struct {
	r   response
	err error
}

// pushAll feeds chunks to h1Push as reads would bring them, up to max
// responses, then the connection's end; rest is what the last response
// left unread.
func pushAll(t testing.TB, p *h1Parser, chunks [][]byte, head bool, max int) (outs []outcome, rest string) {
	var (
		s h1Push
		r response
	)
	s.start(head, &r)
	for i, c := range chunks {
		for len(c) > 0 {
			n, done, err := s.feed(p, &r, c)
			if n < 0 || n > len(c) || (n == 0 && !done && err == nil) {
				t.Fatalf("feed of %d bytes took %d", len(c), n)
			}
			c = c[n:]
			if err != nil {
				return append(outs, outcome{r, err}), ""
			}
			if done {
				outs = append(outs, outcome{r, nil})
				if len(outs) == max {
					var b strings.Builder
					b.Write(c)
					for _, c := range chunks[i+1:] {
						b.Write(c)
					}
					return outs, b.String()
				}
				s.start(head, &r)
			}
		}
	}
	err := s.end(&r, io.EOF)
	outs = append(outs, outcome{r, err})
	if err == nil && len(outs) < max {
		// the close ended a body; what follows finds the connection closed
		s.start(head, &r)
		outs = append(outs, outcome{r, s.end(&r, io.EOF)})
	}
	return outs, ""
}

// pullAll is pushAll for h1Parser over a reader returning the same chunks.
func pullAll(p *h1Parser, chunks [][]byte, head bool, max int) (outs []outcome, rest string) {
	br := newConnReader(&chunkReader{chunks: chunks})
	for len(outs) < max {
		var r response
		err := p.read(br, head, &r)
		outs = append(outs, outcome{r, err})
		if err != nil {
			return outs, ""
		}
	}
	return outs, readRest(br)
}

type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// cutReads cuts in at the given offsets (each taken modulo what is left).
func cutReads(in []byte, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		if len(in) == 0 {
			break
		}
		k := int(c)%len(in) + 1
		out = append(out, in[:k])
		in = in[k:]
	}
	if len(in) > 0 {
		out = append(out, in)
	}
	return out
}

// Every table case of TestParseResponse, split at every point into two
// reads and also fed one byte at a time (a head straddling reads at every
// byte): the push parser gives the same response, error and rest.
func TestPushParseResponse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			var splits [][][]byte
			for k := 0; k <= len(in) && k < 2000; k++ {
				splits = append(splits, [][]byte{in[:k:k], in[k:]})
			}
			var bytewise [][]byte
			for i := range in {
				bytewise = append(bytewise, in[i:i+1:i+1])
			}
			splits = append(splits, bytewise)
			for _, chunks := range splits {
				outs, rest := pushAll(t, newH1Parser("WHO"), chunks, tc.head, 1)
				got := outs[len(outs)-1]
				if tc.err != nil {
					if !errors.Is(got.err, tc.err) {
						t.Fatalf("split %d: error %v, want %v", len(chunks[0]), got.err, tc.err)
					}
					continue
				}
				want := tc.want
				want.started, want.head = true, true
				if got.err != nil || got.r != want || rest != tc.rest {
					t.Fatalf("split %d: got %v (%v), rest %q\nwant %v, rest %q", len(chunks[0]), &got.r, got.err, rest, &want, tc.rest)
				}
			}
		})
	}
}

// A partial line is kept only while it straddles reads.
func TestPushKeepsNoLineBetweenResponses(t *testing.T) {
	var (
		s h1Push
		r response
	)
	p := newH1Parser("who")
	s.start(false, &r)
	for _, c := range []string{"HTTP/1.1 200 OK\r\nWho: po", "d-a\r\nContent-Len", "gth: 2\r\n\r\nok"} {
		n, done, err := s.feed(p, &r, []byte(c))
		if err != nil || n != len(c) {
			t.Fatalf("feed %q: %d %v", c, n, err)
		}
		if done != strings.HasSuffix(c, "ok") {
			t.Fatalf("feed %q: done %v", c, done)
		}
	}
	if s.part != nil || r.backend != "pod-a" || r.bytes != 2 {
		t.Fatalf("after the response: part %q, %v", s.part, &r)
	}
}

// FuzzPushMatchesPull: the push parser (event-loop engine) and the pull
// parser (goroutine engine) make the same responses, fields and errors of
// the same bytes, however the reads split them.
func FuzzPushMatchesPull(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in), []byte{3, 17, 40}, tc.head)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest"), []byte{0, 0, 0, 60}, false)
	f.Fuzz(func(t *testing.T, in, cuts []byte, head bool) {
		const max = 4 // several responses on one connection
		pull, pullRest := pullAll(newH1Parser("who"), cutReads(in, cuts), head, max)
		push, pushRest := pushAll(t, newH1Parser("who"), cutReads(in, cuts), head, max)
		if len(pull) != len(push) || pullRest != pushRest {
			t.Fatalf("pull %v rest %q\npush %v rest %q", pull, pullRest, push, pushRest)
		}
		for i := range pull {
			if pull[i] != push[i] {
				t.Fatalf("response %d: pull %v %v\npush %v %v", i, &pull[i].r, pull[i].err, &push[i].r, push[i].err)
			}
		}
	})
}
