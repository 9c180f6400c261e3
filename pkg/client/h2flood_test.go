package client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// floodH2 is a hostile h2c server: it answers the first request with a
// HEADERS frame that never ends, followed by CONTINUATION frames of fresh
// 16 KB header fields, until the client closes the connection (or 5 s or
// 256 MB pass). sent counts the header bytes the client accepted.
func floodH2(t *testing.T, sent *atomic.Int64) string {
	return rawServer(t, func(c net.Conn) {
		c.(*net.TCPConn).SetWriteBuffer(32 << 10) // what the client accepted, not what the kernel buffered
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		fr := http2.NewFramer(c, br)
		if fr.WriteSettings() != nil {
			return
		}
		var stream uint32
		for stream == 0 {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && fr.WriteSettingsAck() != nil {
					return
				}
			case *http2.HeadersFrame:
				stream = f.StreamID
			}
		}
		go io.Copy(io.Discard, br) // keep reading so the client never blocks on us
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes()}) != nil {
			return
		}
		value := strings.Repeat("x", 16<<10-64)
		for i := 0; sent.Load() < 256<<20; i++ {
			block.Reset()
			enc.WriteField(hpack.HeaderField{Name: "x-flood-" + strconv.Itoa(i), Value: value, Sensitive: true})
			if fr.WriteContinuation(stream, false, block.Bytes()) != nil {
				return
			}
			sent.Add(int64(block.Len()))
		}
	})
}

// A CONTINUATION flood fails the request and ends the connection once the
// header list passes the client's bound. With the Transport's default the
// client took 10 MB of header fields per connection before giving up.
func TestH2ContinuationFlood(t *testing.T) {
	var sent atomic.Int64
	url := floodH2(t, &sent)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(32 << 10)
		}
		return c, err
	}
	var c collector
	began := time.Now()
	st, err := Run(context.Background(), Config{URL: url, H2C: true, Connections: 1, Requests: 1, Timeout: 10 * time.Second, Dial: dial}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 1)
	if r := c.res[0]; r.Err == "" || strings.Contains(r.Err, "timeout") || strings.Contains(r.Err, "deadline") {
		t.Errorf("result %+v, want a protocol error", r)
	}
	// The bound plus what two 32 KB socket buffers and one frame hold.
	if n := sent.Load(); n > maxH2HeaderList+1<<20 {
		t.Errorf("the client accepted %d KB of header fields, bound %d KB", n>>10, maxH2HeaderList>>10)
	}
	t.Logf("header bytes accepted before the client gave up: %d KB in %v", sent.Load()>>10, time.Since(began).Round(time.Millisecond))
}
