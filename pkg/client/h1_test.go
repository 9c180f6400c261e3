package client

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// parseCases are responses and what both HTTP/1 parsers make of them.
var parseCases = []struct {
	name string
	in   string
	head bool
	want response // compared field by field; started is always expected true
	err  error    // nil: success; errAny: any error
	rest string   // what must remain unread (next response's bytes)
}{
	{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nWho: pod-1\r\nTotal-Request: 42\r\n\r\nhelloNEXT",
		want: response{status: 200, bytes: 5, backend: "pod-1", serverTotal: 42}, rest: "NEXT"},
	{name: "close", in: "HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\ncontent-length: 0\r\n\r\n",
		want: response{status: 200, close: true, serverTotal: -1}},
	{name: "bare LF and no reason", in: "HTTP/1.1 404\nContent-Length: 1\n\nx",
		want: response{status: 404, bytes: 1, serverTotal: -1}},
	{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT",
		want: response{status: 200, bytes: 15, serverTotal: -1}, rest: "NEXT"},
	{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\nabc",
		want: response{status: 200, close: true, bytes: 3, serverTotal: -1}},
	{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		want: response{status: 200, close: true, serverTotal: -1}},
	{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		want: response{status: 200, serverTotal: -1}},
	{name: "204 has no body", in: "HTTP/1.1 204 No Content\r\n\r\nNEXT",
		want: response{status: 204, serverTotal: -1}, rest: "NEXT"},
	{name: "head", head: true, in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nNEXT",
		want: response{status: 200, serverTotal: -1}, rest: "NEXT"},
	{name: "100 continue skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
		want: response{status: 201, serverTotal: -1}},
	{name: "repeated equal lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		want: response{status: 200, bytes: 1, serverTotal: -1}},
	{name: "bad total ignored", in: "HTTP/1.1 200 OK\r\nTotal-Request: -3\r\nContent-Length: 0\r\n\r\n",
		want: response{status: 200, serverTotal: -1}},

	{name: "garbage", in: "SSH-2.0-OpenSSH_9.6\r\n", err: errStatusLine},
	{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: errStatusLine},
	{name: "http/2 status", in: "HTTP/2 200\r\n\r\n", err: errStatusLine},
	{name: "no space", in: "HTTP/1.1 200OK\r\n\r\n", err: errStatusLine},
	{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", err: errHeaderLine},
	{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", err: errHeaderLine},
	{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", err: errHeaderLine},
	{name: "CR in line", in: "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", err: errHeaderLine},
	{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: errContentLength},
	{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", err: errContentLength},
	{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n", err: errContentLength},
	{name: "both framings", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: errBothLengths},
	{name: "gzip TE", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: errTransferEnc},
	{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: errChunk},
	{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", err: errChunk},
	{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: io.ErrUnexpectedEOF},
	{name: "cut chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", err: io.ErrUnexpectedEOF},
	{name: "cut head", in: "HTTP/1.1 200 OK\r\nContent-Le", err: io.ErrUnexpectedEOF},
	{name: "101", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", err: errSwitching},
	{name: "endless 1xx", in: strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 20), err: errTooMany1xx},
	{name: "endless headers", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", 200), err: errTooManyHeaders},
	{name: "endless line", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("b", 20000), err: errLineTooLong},
}

func TestParseResponse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newH1Parser("WHO")
			br := newConnReader(strings.NewReader(tc.in))
			var r response
			err := p.read(br, tc.head, &r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.started, tc.want.head = true, true
			if r != tc.want {
				t.Fatalf("got  %v\nwant %v", &r, &tc.want)
			}
			if rest := readRest(br); rest != tc.rest {
				t.Fatalf("left %q unread, want %q", rest, tc.rest)
			}
		})
	}
}

func TestParseResponseEmpty(t *testing.T) {
	var r response
	err := newH1Parser("x").read(newConnReader(strings.NewReader("")), false, &r)
	if err != io.EOF || r.started {
		t.Fatalf("err %v started %v: an empty read must look like a silent close", err, r.started)
	}
}

func TestInternerReusesStrings(t *testing.T) {
	in := newInterner()
	a := in.get([]byte("pod-a"))
	allocs := testing.AllocsPerRun(100, func() {
		if in.get([]byte("pod-a")) != a || in.get([]byte("pod-b")) != "pod-b" {
			t.Fatal("wrong value")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per lookup of known values", allocs)
	}
}

// FuzzParseResponse: any input ends in a response or an error, never a panic
// or a hang, and a success is self-consistent.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nWho: a\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody",
		"garbage\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		p := newH1Parser("who")
		br := newConnReader(strings.NewReader(string(in)))
		for i := 0; i < 4; i++ { // several responses on one connection
			var r response
			err := p.read(br, head, &r)
			if err != nil {
				return
			}
			if r.status < 200 || r.status > 999 || r.bytes < 0 || r.bytes > int64(len(in)) {
				t.Fatalf("inconsistent success: %v", &r)
			}
		}
	})
}

// A server sending ever new long backend names does not grow the table.
func TestInternerBounded(t *testing.T) {
	in := newInterner()
	name := []byte(strings.Repeat("x", 8000))
	for i := range 1000 {
		copy(name, strconv.Itoa(i))
		if got := in.get(name); got != string(name) {
			t.Fatalf("got %.10q, want %.10q", got, name)
		}
	}
	if in.bytes > maxInternedSize || len(in.m) != maxInternedSize/8000 {
		t.Errorf("table holds %d strings, %d bytes; bound %d bytes", len(in.m), in.bytes, maxInternedSize)
	}
}

// readRest returns what is left in br up to the end of its stream.
func readRest(br *connReader) string {
	var rest []byte
	for {
		b, err := br.ReadSlice(0)
		rest = append(rest, b...)
		if err != nil {
			return string(rest)
		}
	}
}
