package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/kaload/kaload/internal/hostile"
	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/server"
)

// h2Script is a scripted HTTP/2 server: answer is called for every
// request stream (n counts them on the connection, from 1) and writes the
// answer's frames with fr and the block helper.
type h2Script func(fr *http2.Framer, block func(kv ...string) []byte, stream uint32, n int)

// scriptServer serves h2Script on every connection and returns a grpc:// URL.
func scriptServer(t *testing.T, answer h2Script) string {
	u := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		fr := http2.NewFramer(c, br)
		fr.WriteSettings()
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		block := func(kv ...string) []byte {
			buf.Reset()
			for i := 0; i+1 < len(kv); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
			}
			return append([]byte(nil), buf.Bytes()...)
		}
		n := 0
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.DataFrame:
				if f.StreamEnded() {
					n++
					answer(fr, block, f.StreamID, n)
				}
			}
		}
	})
	return "grpc" + strings.TrimPrefix(strings.TrimSuffix(u, "/"), "http")
}

// grpcOK writes a unary answer: headers, one message of size bytes, trailers.
func grpcOK(fr *http2.Framer, block func(kv ...string) []byte, stream uint32, backend string, size int) {
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, EndHeaders: true,
		BlockFragment: block(":status", "200", "content-type", "application/grpc", "accept-request-hostname", backend)})
	fr.WriteData(stream, false, append([]byte{0, 0, 0, 0, byte(size)}, make([]byte, size)...))
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, EndHeaders: true, EndStream: true,
		BlockFragment: block("grpc-status", "0")})
}

// The health service's Check is linked into the test binary: no reflection.
const healthCheck = "grpc.health.v1.Health/Check"

// TestGRPCCoreAnswers pins how the core reads what a server answers, with
// the codes grpc-go's client reports for the same frames.
func TestGRPCCoreAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  h2Script
		code    string
		err     string // substring of Err; "" = success
		backend string
		bytes   int64
	}{
		{"ok", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			grpcOK(fr, block, id, "pod-1", 7)
		}, "OK", "", "pod-1", 7},
		{"trailers only, encoded message", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
				BlockFragment: block(":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "no %C3%A9 here%", "accept-request-hostname", "pod-2")})
		}, "NotFound", "desc = no é here%", "pod-2", 0},
		{"backend in the trailer", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(":status", "200", "content-type", "application/grpc")})
			fr.WriteData(id, false, []byte{0, 0, 0, 0, 1, 'x'})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
				BlockFragment: block("grpc-status", "0", "accept-request-hostname", "pod-t")})
		}, "OK", "", "pod-t", 1},
		{"RST_STREAM", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteRSTStream(id, http2.ErrCodeEnhanceYourCalm)
		}, "ResourceExhausted", "RST_STREAM with error code: ENHANCE_YOUR_CALM", "", 0},
		{"HTTP 503", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: block(":status", "503")})
		}, "Unavailable", "HTTP status code received from server: 503", "", 0},
		{"not gRPC", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(":status", "200", "content-type", "text/html")})
			fr.WriteData(id, true, []byte("<html>"))
		}, "Unknown", "content-type", "", 0},
		{"no trailers", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(":status", "200", "content-type", "application/grpc")})
			fr.WriteData(id, true, []byte{0, 0, 0, 0, 0})
		}, "Internal", "without sending trailers", "", 0},
		{"compressed without encoding", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(":status", "200", "content-type", "application/grpc")})
			fr.WriteData(id, false, []byte{1, 0, 0, 0, 0})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: block("grpc-status", "0")})
		}, "Internal", "compressed flag", "", 0},
		{"refused, then answered", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			if n == 1 {
				fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
				return
			}
			grpcOK(fr, block, id, "pod-r", 2)
		}, "OK", "", "pod-r", 2},
		{"ping and settings mid-answer", func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
			fr.WritePing(false, [8]byte{1})
			fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
			grpcOK(fr, block, id, "pod-p", 3)
		}, "OK", "", "pod-p", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := scriptServer(t, tc.answer)
			var c collector
			st, err := Run(context.Background(), Config{URL: url, Call: healthCheck, Connections: 1, Requests: 3, Timeout: 5 * time.Second}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 3)
			for _, r := range c.res {
				if GRPCCodeName(r.GRPCCode) != tc.code || !strings.Contains(r.Err, tc.err) || tc.err == "" && r.Err != "" {
					t.Fatalf("result %+v: want code %s, error with %q", r, tc.code, tc.err)
				}
				if tc.backend != "" && r.Backend != tc.backend || r.Bytes != tc.bytes {
					t.Errorf("backend %q bytes %d, want %q %d", r.Backend, r.Bytes, tc.backend, tc.bytes)
				}
			}
		})
	}
}

// An RPC above a GOAWAY's last stream id is sent again on a new
// connection (grpc-go retries it transparently too); the answered RPC
// before it carries the GOAWAY, counted by its code and text.
func TestGRPCCoreGoAwayRetries(t *testing.T) {
	url := scriptServer(t, func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
		if n == 2 {
			fr.WriteGoAway(id-2, http2.ErrCodeNo, []byte("max_age"))
			return
		}
		grpcOK(fr, block, id, "pod-g", 1)
	})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Call: healthCheck, Connections: 1, Requests: 5, Timeout: 5 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 5)
	// Each connection answers one RPC and refuses the next with its GOAWAY.
	if st.Errors != 0 || st.Retries != 4 || st.Connections != 5 || st.GoAways["NO_ERROR max_age"] != 4 || st.Closes[CloseGoAway] != 4 {
		t.Fatalf("stats %+v; want 5 RPCs, 4 retried over 5 connections, 4 GOAWAYs", st)
	}
	for i, r := range c.res {
		if r.ConnReq != 1 || (r.Close == CloseGoAway) != (i < 4) || r.Backend != "pod-g" {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}

// A CONTINUATION flood on grpc:// fails the RPC and ends the connection
// once the header list passes maxH2HeaderList.
func TestGRPCCoreContinuationFlood(t *testing.T) {
	var sent atomic.Int64
	url := "grpc" + strings.TrimPrefix(strings.TrimSuffix(floodH2(t, &sent), "/"), "http")
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Call: healthCheck, Connections: 1, Requests: 1, Timeout: 10 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 1)
	if r := c.res[0]; !strings.Contains(r.Err, "header list") || GRPCCodeName(r.GRPCCode) != "Unavailable" || r.Close != CloseError {
		t.Errorf("result %+v", r)
	}
	if n := sent.Load(); n > maxH2HeaderList+1<<20 {
		t.Errorf("accepted %d KB of header fields, bound %d KB", n>>10, maxH2HeaderList>>10)
	}
}

// A server that never answers: each RPC ends at its Timeout with
// DeadlineExceeded; an abort ends the one in flight at once.
func TestGRPCCoreTimeoutAndAbort(t *testing.T) {
	url := "grpc" + strings.TrimPrefix(strings.TrimSuffix(rawServer(t, hostile.Silent), "/"), "http")
	var c collector
	began := time.Now()
	st, err := Run(context.Background(), Config{URL: url, Call: healthCheck, Connections: 2, Requests: 4, Timeout: 200 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 4)
	for _, r := range c.res {
		if GRPCCodeName(r.GRPCCode) != "DeadlineExceeded" || r.Latency < 200*time.Millisecond || r.Latency > 2*time.Second {
			t.Errorf("result %+v", r)
		}
	}
	if el := time.Since(began); el > 3*time.Second {
		t.Errorf("took %v", el)
	}

	abort := make(chan struct{})
	time.AfterFunc(200*time.Millisecond, func() { close(abort) })
	c = collector{}
	st, err = Run(context.Background(), Config{URL: url, Call: healthCheck, Connections: 3, Duration: time.Minute, Timeout: time.Minute, Abort: abort}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	for _, r := range c.res {
		if r.Err != ErrInterrupted || GRPCCodeName(r.GRPCCode) != "Canceled" || r.Latency > 5*time.Second {
			t.Errorf("aborted result %+v", r)
		}
	}
}

// Requests and answers larger than the windows and frames: the core
// respects the server's flow control and gives its own windows back, and
// metadata (a -bin key among them) reaches the server.
func TestGRPCCoreBigMessagesAndMetadata(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-big", ResponseSize: 3 << 20})
	payload := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 300<<10))
	var c collector
	st, err := Run(context.Background(), Config{URL: s.GRPCURL, Connections: 2, Requests: 12, Body: []byte(fmt.Sprintf(`{"payload":%q}`, payload)),
		Header: map[string][]string{"X-Tenant": {"t1"}, "Trace-Bin": {"AAEC"}}}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 12)
	if st.Errors != 0 {
		t.Fatalf("stats %+v: %s", st, firstErr(c.res))
	}
	for _, r := range c.res {
		if r.Backend != "pod-big" || r.Bytes < 3<<20 {
			t.Fatalf("result %+v", r)
		}
	}
}

// A connection idle for longer than Timeout still carries the next RPC:
// the deadline of the RPCs before it does not linger.
func TestGRPCCoreIdleLongerThanTimeout(t *testing.T) {
	url := scriptServer(t, func(fr *http2.Framer, block func(...string) []byte, id uint32, n int) {
		grpcOK(fr, block, id, "pod-i", 1)
	})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Call: healthCheck, Connections: 1, Requests: 3, Rate: 4, Timeout: 100 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	if st.Errors != 0 || st.Connections != 1 {
		t.Errorf("stats %+v: %s", st, firstErr(c.res))
	}
}

// Several RPCs in flight per connection against a server that ends every
// connection after 5 RPCs (those already sent still get answers): none
// fails, each is one Result, and every connection ends with a GOAWAY
// carried by exactly one result.
func TestGRPCCoreStreamsWithRecycling(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-s", MaxRequests: 5})
	var c collector
	st, err := Run(context.Background(), Config{URL: s.GRPCURL, Connections: 2, Streams: 4, Requests: 200}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 200)
	// A connection carries 5 RPCs and those in flight when the server
	// decided to end it, plus any that arrived before its GOAWAY went out
	// (grpc-go stops taking streams only then): usually 9 at most, more when
	// the machine is loaded. Without recycling the run would need 2
	// connections; 10 or more shows the server ended them.
	if st.Errors != 0 || st.Closes[CloseGoAway] < 10 || st.Closes[CloseGoAway] != st.Connections-st.Closes[CloseNone] {
		t.Fatalf("stats %+v: %s", st, firstErr(c.res))
	}
	goaways := map[uint64]int{}
	for _, r := range c.res {
		if r.Backend != "pod-s" {
			t.Fatalf("result %+v", r)
		}
		if r.Close == CloseGoAway {
			goaways[r.Conn]++
		}
	}
	for id, n := range goaways {
		if n != 1 {
			t.Errorf("connection %d: %d results carry its GOAWAY", id, n)
		}
	}
	if int64(len(goaways)) != st.Closes[CloseGoAway] {
		t.Errorf("%d connections closed by GOAWAY in the results, %d in stats", len(goaways), st.Closes[CloseGoAway])
	}
}

// A server that answers before the request's body is all in (it needs
// window updates the server never sends) gets the answer recorded and the
// rest of the stream cancelled with RST_STREAM, and the connection goes on.
func TestH2CoreEarlyAnswer(t *testing.T) {
	resets := make(chan http2.ErrCode, 10)
	u := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil {
			return
		}
		fr := http2.NewFramer(c, br)
		fr.WriteSettings()
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				buf.Reset()
				enc.WriteField(hpack.HeaderField{Name: ":status", Value: "413"})
				enc.WriteField(hpack.HeaderField{Name: "accept-request-hostname", Value: "pod-e"})
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, EndHeaders: true, EndStream: true, BlockFragment: buf.Bytes()})
			case *http2.RSTStreamFrame:
				resets <- f.ErrCode
			}
		}
	})
	var c collector
	st, err := Run(context.Background(), Config{URL: u, H2C: true, Method: "POST", Body: bytes.Repeat([]byte("b"), 200<<10),
		Connections: 1, Requests: 3, Timeout: 5 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 3)
	if st.Connections != 1 || st.Errors != 3 { // a 413 is a failed request
		t.Fatalf("stats %+v", st)
	}
	for _, r := range c.res {
		if r.Status != 413 || r.Backend != "pod-e" || r.Err != "" {
			t.Errorf("result %+v", r)
		}
	}
	for i := 0; i < 2; i++ { // the third reset may still be queued when the run ends
		select {
		case code := <-resets:
			if code != http2.ErrCodeCancel {
				t.Errorf("RST_STREAM %v, want CANCEL", code)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the server saw %d resets, want at least 2", i)
		}
	}
}

// A server that grants big windows and then reads nothing: the request's
// write blocks, and the request ends at its Timeout as a timeout, not as a
// connection error.
func TestH2CoreWriteBlockedTimesOut(t *testing.T) {
	done := make(chan struct{})
	u := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		fr := http2.NewFramer(c, nil)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		fr.WriteWindowUpdate(0, 1<<31-1-65535)
		select { // reads nothing
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	t.Cleanup(func() { close(done) }) // before rawServer's stop, which waits for this handler
	var c collector
	st, err := Run(context.Background(), Config{URL: u, H2C: true, Method: "POST", Body: bytes.Repeat([]byte("b"), 32<<20),
		Connections: 1, Requests: 1, Timeout: 300 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 1)
	if r := c.res[0]; r.Err != "context deadline exceeded" || r.Latency > 3*time.Second {
		t.Errorf("result %+v", r)
	}
}
