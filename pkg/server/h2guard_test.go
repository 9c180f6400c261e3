package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/kaload/kaload/internal/abuse"
)

// frames renders client frames with x/net's Framer: n times HEADERS on a new
// stream, each followed by RST_STREAM when reset, and DATA on stream 1.
func frames(t testing.TB, preface bool, n int, reset bool) []byte {
	var b bytes.Buffer
	if preface {
		b.WriteString(http2.ClientPreface)
	}
	fr := http2.NewFramer(&b, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	for i := range n {
		id := uint32(2*i + 1)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x82, 0x86, 0x84}, EndHeaders: true})
		fr.WriteData(id, false, bytes.Repeat([]byte("d"), 300))
		if i == 0 {
			// Trailers on an open stream are not a new stream.
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x82}, EndHeaders: true, EndStream: true})
		}
		if reset {
			fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		fr.WritePing(false, [8]byte{})
	}
	return b.Bytes()
}

func TestFrameScan(t *testing.T) {
	tests := []struct {
		name            string
		preface         bool
		n               int
		reset           bool
		streams, resets uint32
		flood           bool
	}{
		{"h2c requests", false, 300, false, 300, 0, false},
		{"tls requests", true, 300, false, 300, 0, false},
		{"few resets", false, resetFloodMin - 1, true, resetFloodMin - 1, resetFloodMin - 1, false},
		{"rapid reset", true, 1000, true, 1000, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := frames(t, tt.preface, tt.n, tt.reset)
			// Every split of the stream into reads must count the same.
			for _, chunk := range []int{len(b), 1, 7, 9, 10, 4096} {
				f := frameScan{}
				if tt.preface {
					f.preface = len(http2.ClientPreface)
				}
				ok := true
				for p := b; len(p) > 0; {
					n := min(chunk, len(p))
					ok = f.feed(p[:n])
					p = p[n:]
				}
				if got := fmt.Sprint(f.streams, f.resets, !ok); got != fmt.Sprint(tt.streams, tt.resets, tt.flood) {
					t.Errorf("reads of %d bytes: streams, resets, flood = %s, want %d %d %v", chunk, got, tt.streams, tt.resets, tt.flood)
				}
			}
		})
	}
}

// FuzzFrameScan: whatever the bytes, the counts do not depend on how the
// reads split them, and a flood is never declared below resetFloodMin.
func FuzzFrameScan(f *testing.F) {
	f.Add(frames(f, false, 3, true), uint8(5))
	f.Add(frames(f, true, 2, false), uint8(1))
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0, 1}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		whole := frameScan{preface: 3}
		wholeOK := whole.feed(b)
		parts := frameScan{preface: 3}
		partsOK := true
		step := int(chunk%16) + 1
		for p := b; len(p) > 0; {
			n := min(step, len(p))
			partsOK = parts.feed(p[:n])
			p = p[n:]
		}
		if wholeOK != partsOK || whole.streams != parts.streams || whole.resets != parts.resets {
			t.Fatalf("whole %v %d/%d, in reads of %d: %v %d/%d", wholeOK, whole.streams, whole.resets, step, partsOK, parts.streams, parts.resets)
		}
		if !wholeOK && whole.resets < resetFloodMin {
			t.Fatalf("flood after %d resets", whole.resets)
		}
	})
}

// TestRapidReset: an attacker writing HEADERS then RST_STREAM in a loop
// (CVE-2023-44487) used to have every stream served and counted in
// Total-Request (issue 16). The server must end each attacking connection
// once it reset resetFloodMin streams, count none of the resets it saw
// first as answered requests, and keep answering a normal client.
func TestRapidReset(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			cfg := Config{H2C: !useTLS}
			tr := &http.Transport{}
			var attackTLS *tls.Config
			scheme := "http"
			if useTLS {
				var certFile, keyFile string
				certFile, keyFile, pool := writeCert(t)
				cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
				attackTLS = &tls.Config{RootCAs: pool}
				tr.TLSClientConfig = &tls.Config{RootCAs: pool}
				tr.ForceAttemptHTTP2 = true
				scheme = "https"
			} else {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				tr.Protocols = &p
			}
			defer tr.CloseIdleConnections()
			ts := start(t, cfg)
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			// A normal client keeps asking while the attack runs.
			stop := make(chan struct{})
			normal := make(chan error, 1)
			answered := 0
			go func() {
				defer close(normal)
				for range 2000 {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := client.Get(scheme + "://" + ts.addr + "/")
					if err != nil {
						normal <- err
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
						normal <- fmt.Errorf("normal client: %s %s", resp.Proto, resp.Status)
						return
					}
					answered++
					time.Sleep(2 * time.Millisecond)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := abuse.RapidResetAttackTLS(ctx, ts.addr, attackTLS, "/", 5000, 10, 10*time.Second)
			close(stop)
			if err, ok := <-normal; ok {
				t.Errorf("normal client failed during the attack: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			s := ts.Stats()
			t.Logf("attack %+v; server: resets seen %d, connections closed for rapid reset %d, abandoned %d, answered %d (normal client %d)",
				res, s.H2Resets, s.ResetFloods, s.Abandoned, s.Requests, answered)
			// Every connection but perhaps the last (which may have run out
			// of budget first) was ended for rapid reset.
			if s.ResetFloods+1 < uint64(res.Conns) || s.ResetFloods == 0 {
				t.Errorf("%d of %d attacking connections closed for rapid reset", s.ResetFloods, res.Conns)
			}
			// The work per connection is bounded: the server read at most
			// resetFloodMin resets on each.
			if max := uint64(resetFloodMin * (s.ResetFloods + 1)); s.H2Resets > max {
				t.Errorf("server read %d resets over %d connections, want at most %d", s.H2Resets, res.Conns, max)
			}
			// Total-Request counts the normal client's requests plus, at
			// most, the few attack streams answered before the
			// connection's first reset was read.
			if extra := s.Requests - uint64(answered); extra > 10*uint64(res.Conns) {
				t.Errorf("Total-Request counted %d requests beyond the %d the normal client got, for %d resets", extra, answered, s.H2Resets)
			}
		})
	}
}

// TestRapidResetFreesConnections: closing a flooding connection while
// streams were open left the HTTP/2 server's idle timer re-armed on it,
// keeping about 300 KB per connection for IdleTimeout (the heap grew 20 MB
// per 100 connections). The connections the guard ends must be freed.
func TestRapidResetFreesConnections(t *testing.T) {
	ts := start(t, Config{H2C: true})
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	res, err := abuse.RapidResetAttack(context.Background(), ts.addr, "/", 1<<30, 100, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the attack's connections to close", func() bool { return ts.Stats().ActiveConns == 0 })
	after := heap()
	t.Logf("%d connections ended for rapid reset; heap %.1f MB -> %.1f MB", ts.Stats().ResetFloods, float64(before)/1e6, float64(after)/1e6)
	if ts.Stats().ResetFloods < uint64(res.Conns)-1 {
		t.Errorf("%d of %d connections ended for rapid reset", ts.Stats().ResetFloods, res.Conns)
	}
	if after > before+5<<20 {
		t.Errorf("heap grew %.1f MB over %d flooded connections, want them freed", float64(after-before)/1e6, res.Conns)
	}
}
