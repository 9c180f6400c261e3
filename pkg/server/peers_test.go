package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestCurlOneConnection drives the server with curl, a client nobody here
// wrote: one curl process fetches 12 URLs, reusing its connection until the
// server says close.
func TestCurlOneConnection(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	tests := []struct {
		name string
		args []string
		h2c  bool
	}{
		{"http1.1", []string{"--http1.1"}, false},
		{"h2c", []string{"--http2-prior-knowledge"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.h2c && !curlHas(curl, "HTTP2") {
				t.Skip("curl built without HTTP/2")
			}
			if tt.h2c && !curlReusesH2C(t, curl) {
				t.Skip("this curl cannot reuse an h2c prior-knowledge connection even without recycling")
			}
			ts := start(t, Config{MaxRequests: 5, H2C: tt.h2c})
			args := append([]string{"-sv", "--max-time", "20"}, tt.args...)
			for range 12 {
				args = append(args, ts.url+"/")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, curl, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("curl: %v\n%s", err, stderr.String())
			}
			bodies := regexp.MustCompile(`backend=test-backend request=(\d+) conn_request=(\d+)`).FindAllStringSubmatch(stdout.String(), -1)
			if len(bodies) != 12 {
				t.Fatalf("curl got %d bodies, want 12:\n%s", len(bodies), stdout.String())
			}
			var pos []string
			for _, b := range bodies {
				pos = append(pos, b[2])
			}
			if got, want := strings.Join(pos, ","), "1,2,3,4,5,1,2,3,4,5,1,2"; got != want {
				t.Errorf("positions %s, want %s", got, want)
			}
			connected := strings.Count(stderr.String(), "Connected to ")
			if connected != 3 {
				t.Errorf("curl connected %d times, want 3:\n%s", connected, stderr.String())
			}
			if got := ts.ln.n.Load(); got != 3 {
				t.Errorf("server accepted %d connections, want 3", got)
			}
		})
	}
}

// curlReusesH2C probes curl against a server that never recycles: some
// curl releases (7.88) fail the second request on a reused prior-knowledge
// connection, which says nothing about kaload.
func curlReusesH2C(t *testing.T, curl string) bool {
	ts := start(t, Config{H2C: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, curl, "-s", "-o", "/dev/null", "-o", "/dev/null", "--http2-prior-knowledge", ts.url+"/", ts.url+"/").Run() == nil
}

func curlHas(curl, feature string) bool {
	out, err := exec.Command(curl, "--version").Output()
	return err == nil && bytes.Contains(out, []byte(feature))
}

// TestH2GoAwayOnWire speaks HTTP/2 frame by frame: the first four streams on
// the connection see no GOAWAY; the fifth response is followed by a graceful
// GOAWAY (NO_ERROR) and then the server closes the connection.
func TestH2GoAwayOnWire(t *testing.T) {
	ts := start(t, Config{MaxRequests: 5, H2C: true})
	c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	var goAway *http2.GoAwayFrame
	for i := 1; i <= 5; i++ {
		id := uint32(2*i - 1)
		hbuf.Reset()
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "kaload"}, {Name: ":path", Value: "/"}} {
			enc.WriteField(f)
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		var pos string
		for done := false; !done; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("stream %d: read frame: %v", id, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.MetaHeadersFrame:
				pos = f.PseudoValue("status") + " " + headerValue(f, strings.ToLower(PositionHeader))
				done = f.StreamEnded()
			case *http2.DataFrame:
				done = f.StreamEnded()
			case *http2.GoAwayFrame:
				goAway = f
			}
		}
		if want := "200 " + string(rune('0'+i)); pos != want {
			t.Errorf("stream %d: status and position %q, want %q", id, pos, want)
		}
		if i < 5 && goAway != nil {
			t.Fatalf("GOAWAY after response %d, want it after the 5th", i)
		}
	}
	// Read until GOAWAY and then the connection's end.
	var sawEOF bool
	for !sawEOF {
		f, err := fr.ReadFrame()
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			sawEOF = true
		case err != nil:
			t.Fatalf("after the 5th response: %v", err)
		default:
			if g, ok := f.(*http2.GoAwayFrame); ok {
				goAway = g
			}
		}
	}
	if goAway == nil {
		t.Fatal("connection ended without GOAWAY")
	}
	if goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID < 9 {
		t.Errorf("GOAWAY code %v last stream %d, want NO_ERROR covering stream 9", goAway.ErrCode, goAway.LastStreamID)
	}
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// TestTLSH2 serves HTTPS with a certificate written to files: ALPN picks h2
// and the limit still recycles connections.
func TestTLSH2(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	ts := start(t, Config{MaxRequests: 5, TLSCertFile: certFile, TLSKeyFile: keyFile})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var pos []string
	for i := 1; i <= 12; i++ {
		resp, err := client.Get("https://" + ts.addr + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("request %d over %s, want HTTP/2 by ALPN", i, resp.Proto)
		}
		pos = append(pos, resp.Header.Get(PositionHeader))
	}
	// Each position 1 is a new connection (a spare dial Go's client may
	// race against GOAWAY carries nothing, so count by positions).
	if got, want := strings.Join(pos, ","), "1,2,3,4,5,1,2,3,4,5,1,2"; got != want {
		t.Errorf("positions %s, want %s", got, want)
	}
	if s := ts.Stats(); s.RecycledMaxRequests != 2 || ts.ln.n.Load() < 3 {
		t.Errorf("recycled %d of %d accepted connections, want 2 of at least 3", s.RecycledMaxRequests, ts.ln.n.Load())
	}
}

func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kaload test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// TestWrk: wrk, another client nobody here wrote, keeps its connections
// alive and reconnects on "Connection: close"; no connection may carry more
// than the limit and none of wrk's requests may fail.
func TestWrk(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not installed")
	}
	ts := start(t, Config{MaxRequests: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, wrk, "-t1", "-c2", "-d1s", "--timeout", "2s", ts.url+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Socket errors")) || bytes.Contains(out, []byte("Non-2xx")) {
		t.Errorf("wrk saw failures:\n%s", out)
	}
	waitFor(t, "wrk's connections to close", func() bool { return ts.Stats().ActiveConns == 0 })
	s := ts.Stats()
	if s.Requests < 10 {
		t.Fatalf("wrk sent only %d requests:\n%s", s.Requests, out)
	}
	if s.TotalConns*5 < s.Requests {
		t.Errorf("%d requests over %d connections: some connection carried more than 5", s.Requests, s.TotalConns)
	}
	// Every connection reached the limit but those open when wrk stopped
	// (2, plus at most one redial each).
	if s.RecycledMaxRequests+4 < s.TotalConns {
		t.Errorf("only %d of %d connections were recycled by max_requests", s.RecycledMaxRequests, s.TotalConns)
	}
}
