package hostile

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The flood answers a stream with HEADERS without END_HEADERS, then only
// CONTINUATION frames, and stops at its limit.
func TestFloodContinuation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		FloodContinuation(c, 1<<20, &sent)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var block bytes.Buffer
	hpack.NewEncoder(&block).WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true})
	var headers, conts int
	var got int64
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break // the flood reached its limit and closed
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if f.HeadersEnded() {
				t.Fatal("HEADERS ended the header block")
			}
			headers++
		case *http2.ContinuationFrame:
			if f.HeadersEnded() {
				t.Fatal("CONTINUATION ended the header block")
			}
			conts++
			got += int64(len(f.HeaderBlockFragment()))
		}
	}
	<-done
	if headers != 1 || conts < 60 || got != sent.Load() || got < 1<<20 || got > 1<<20+20<<10 {
		t.Errorf("%d HEADERS, %d CONTINUATION frames, %d bytes received, %d sent; want one, ~64 and 1 MiB", headers, conts, got, sent.Load())
	}
}
