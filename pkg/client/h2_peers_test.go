//go:build linux

package client

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startNginx runs nginx (one worker) with HTTP/2 on a cleartext (prior
// knowledge) and a TLS listener; it ends every connection after 50
// requests with a graceful GOAWAY (keepalive_requests). It returns the
// two base URLs, or skips when nginx is not installed.
func startNginx(t *testing.T) (h2c, tls string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("nginx not installed (apt-get install -y nginx-light)")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	// The test server's certificate (127.0.0.1, example.com) for nginx.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	ts.Close()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	p1, p2 := port(), port()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 256; }
http {
	access_log off;
	keepalive_requests 50;
	server {
		listen 127.0.0.1:%[2]d http2;
		listen 127.0.0.1:%[3]d ssl http2;
		ssl_certificate %[4]s;
		ssl_certificate_key %[5]s;
		location / { add_header Accept-Request-hostname nginx; return 200 "ok\n"; }
	}
}
`, dir, p1, p2, certPath, keyPath)
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", confPath)
	// Should the test binary die first, the master still stops (and stops its worker).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Skipf("nginx does not start here: %v", err)
	}
	t.Cleanup(func() {
		// TERM: the master stops its worker before it exits (a killed
		// master would leave the worker running).
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p2))
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Skipf("nginx did not listen: %s", strings.TrimSpace(string(log)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/", p1), fmt.Sprintf("https://127.0.0.1:%d/", p2)
}

// TestH2AgainstNginx drives a server nobody here wrote over h2c and TLS,
// one and eight streams per connection: nginx's Huffman-coded, indexed
// answers decode, its GOAWAY after 50 requests per connection ends each
// connection (requests above its last stream id are sent again), and no
// request fails.
func TestH2AgainstNginx(t *testing.T) {
	h2c, tls := startNginx(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"h2c", Config{URL: h2c, H2C: true}},
		{"h2c streams", Config{URL: h2c, H2C: true, Streams: 8}},
		{"tls", Config{URL: tls, HTTP2: true, Insecure: true}},
		{"tls streams", Config{URL: tls, HTTP2: true, Insecure: true, Streams: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Connections, cfg.Requests, cfg.Timeout = 4, 1000, 10*time.Second
			var c collector
			st, err := Run(context.Background(), cfg, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 1000)
			if st.Errors != 0 {
				t.Fatalf("stats %+v: %s", st, firstErr(c.res))
			}
			if st.Connections < 1000/50 || st.GoAways["NO_ERROR"] < 1000/50-4 || st.Closes[CloseGoAway] != st.GoAways["NO_ERROR"] {
				t.Errorf("stats %+v; want a connection per 50 requests, each ended by nginx's GOAWAY", st)
			}
			t.Logf("%d connections, GOAWAYs %v, %d sent again", st.Connections, st.GoAways, st.Retries)
			for _, r := range c.res {
				if r.Backend != "nginx" || r.Status != 200 || r.Bytes != 3 || r.ConnReq > 50 {
					t.Fatalf("result %+v", r)
				}
			}
		})
	}
}
