// Package hostile holds misbehaving peers for tests and bench/cmd/hostile:
// what a server may do to a client that trusts it too much.
package hostile

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FloodContinuation speaks h2c on c: it answers the client's first stream
// with a HEADERS frame that never ends, then CONTINUATION frames of fresh
// 16 KB header fields until a write fails or limit header bytes were sent.
// sent (if not nil) counts the header bytes written. The caller bounds the
// time with a deadline on c and closes it.
func FloodContinuation(c net.Conn, limit int64, sent *atomic.Int64) {
	if sent == nil {
		sent = new(atomic.Int64)
	}
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
	// Keep reading so the client never blocks on us; it ends when c closes.
	go io.Copy(io.Discard, br)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes()}) != nil {
		return
	}
	value := strings.Repeat("x", 16<<10-64)
	for i := 0; sent.Load() < limit; i++ {
		block.Reset()
		enc.WriteField(hpack.HeaderField{Name: "x-flood-" + strconv.Itoa(i), Value: value, Sensitive: true})
		if fr.WriteContinuation(stream, false, block.Bytes()) != nil {
			return
		}
		sent.Add(int64(block.Len()))
	}
}

// Serve accepts connections on ln and runs handle on each in its own
// goroutine, which closes the connection when handle returns. stop closes
// ln and every connection still open, then waits for the handlers.
func Serve(ln net.Listener, handle func(c net.Conn)) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// Silent reads whatever the client sends and never answers.
func Silent(c net.Conn) { io.Copy(io.Discard, c) }

// GoAwayAtOnce speaks h2c on c: after the preface and SETTINGS it sends a
// graceful GOAWAY that admits no stream (last stream id 0), as a server
// draining when the connection arrived may, then reads until c closes.
func GoAwayAtOnce(c net.Conn) {
	br := bufio.NewReader(c)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, br)
	if fr.WriteSettings() != nil || fr.WriteGoAway(0, http2.ErrCodeNo, []byte("draining")) != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() && fr.WriteSettingsAck() != nil {
			return
		}
	}
}
