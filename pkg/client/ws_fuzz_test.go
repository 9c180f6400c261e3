package client

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"testing"
	"time"
)

// rawWSServer accepts one socket per connection, completes the handshake by
// hand and then writes frames verbatim: whatever a broken or hostile server
// might send, close frames with any status and reason included.
func rawWSServer(tb testing.TB, frames []byte) (url string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nAccept-Request-hostname: raw\r\nSec-WebSocket-Accept: " +
					base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"))
				c.Write(frames)
			}
			c.Close()
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// FuzzWebSocketFrames: whatever frames answer the first message (echo,
// close with any status or reason, garbage, nothing), the engine records
// that message exactly once, never panics, and a close it reports carries
// a status in the wire's range.
func FuzzWebSocketFrames(f *testing.F) {
	f.Add([]byte{0x81, 0x06, 'k', 'a', 'l', 'o', 'a', 'd'})        // text echo
	f.Add([]byte{0x88, 0x02, 0x03, 0xf4})                          // close 1012
	f.Add([]byte{0x88, 0x07, 0x03, 0xe9, 'b', 'y', 'e', ' ', '!'}) // close 1001 with a reason
	f.Add([]byte{0x88, 0x01, 0x03})                                // a close payload of one byte
	f.Add([]byte{0x88, 0x02, 0x03, 0xee})                          // 1006 must never be on the wire
	f.Add([]byte{0x81, 0x06, 'k', 'a', 'l', 'o', 'a', 'd', 0x88, 0x02, 0x03, 0xf4})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frames []byte) {
		url := rawWSServer(t, frames)
		var c collector
		st, err := Run(context.Background(), Config{URL: url, Connections: 1, Requests: 2, Timeout: 300 * time.Millisecond}, &c)
		if err != nil {
			t.Fatal(err)
		}
		msgs, socks := split(c.res)
		if len(msgs) != 2 || st.Requests != 2 {
			t.Fatalf("%d message results, stats %+v", len(msgs), st)
		}
		for _, r := range append(msgs, socks...) {
			if r.Close == CloseServer && (r.CloseCode < 1000 || r.CloseCode >= 5000) {
				t.Fatalf("close status %d reported as the server's", r.CloseCode)
			}
		}
	})
}
