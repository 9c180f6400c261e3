// Package kubetest runs a real kube-apiserver on a real etcd, on loopback,
// for tests of kaload's Kubernetes watch. The binaries come from
// test/k8s/build-apiserver.sh (built from the Go module proxy and cached);
// a test that needs them skips, saying how to build them, when they are absent.
//
// A bare apiserver runs no controllers: tests create the pods, ReplicaSets
// and EndpointSlices that controllers would, through the API.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Version is the Kubernetes release the build script builds.
const Version = "v1.37.2"

// Cluster is a running apiserver.
type Cluster struct {
	URL string // https://127.0.0.1:PORT
	Dir string
	// Kubeconfig is a kubeconfig file for the admin (system:masters).
	Kubeconfig string
	// KubeconfigFor returns a kubeconfig authenticating with one of the
	// tokens given to Start: the service account's identity for RBAC tests.
	KubeconfigFor func(token string) string
}

// BinDir is where the build script leaves the binaries.
func BinDir() string {
	if d := os.Getenv("KALOAD_K8S_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kaload", "k8s-"+Version)
}

// ServiceAccountToken is a static token and the service account it stands for.
type ServiceAccountToken struct {
	Token, Namespace, Name string
}

const adminToken = "kaload-test-admin"

// Start runs etcd and kube-apiserver until the test ends. Extra tokens
// authenticate as the named service accounts (with RBAC authorization, so
// a test sees exactly what a Role grants them).
func Start(t testing.TB, tokens ...ServiceAccountToken) *Cluster {
	t.Helper()
	bin := BinDir()
	etcdBin, apiBin := filepath.Join(bin, "etcd"), filepath.Join(bin, "kube-apiserver")
	for _, b := range []string{etcdBin, apiBin} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("no %s (run test/k8s/build-apiserver.sh to build kube-apiserver and etcd %s; set KALOAD_K8S_CACHE for another directory)", b, Version)
		}
	}
	dir := t.TempDir()
	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	run(t, dir, "etcd", etcdBin,
		"--name=kaload", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kaload="+peerURL, "--log-level=warn", "--quota-backend-bytes=268435456")

	key := filepath.Join(dir, "sa.key")
	writeKey(t, key)
	tokenFile := filepath.Join(dir, "tokens.csv")
	lines := adminToken + ",admin,1,system:masters\n"
	for i, tok := range tokens {
		lines += fmt.Sprintf("%s,system:serviceaccount:%s:%s,%d,\"system:serviceaccounts,system:serviceaccounts:%s,system:authenticated\"\n",
			tok.Token, tok.Namespace, tok.Name, 100+i, tok.Namespace)
	}
	if err := os.WriteFile(tokenFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	apiDone := run(t, dir, "kube-apiserver", apiBin,
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort), "--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokenFile, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+key,
		"--service-account-signing-key-file="+key, "--service-cluster-ip-range=10.96.0.0/24",
		"--enable-priority-and-fairness=false", "--disable-admission-plugins=ServiceAccount",
		// Loopback cannot be the kubernetes Service's endpoint; no Service needs it here.
		"--endpoint-reconciler-type=none", "--v=0")

	c := &Cluster{URL: "https://127.0.0.1:" + strconv.Itoa(apiPort), Dir: dir}
	c.KubeconfigFor = func(token string) string {
		path := filepath.Join(dir, "kubeconfig-"+strconv.Itoa(len(token))+"-"+token[:min(8, len(token))])
		cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: test
  user: {token: %q}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`, c.URL, token)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	c.Kubeconfig = c.KubeconfigFor(adminToken)
	c.waitReady(t, apiDone)
	return c
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeKey(t testing.TB, path string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// run starts a process that the test's cleanup stops; its output goes to a
// log file shown when the test fails.
func run(t testing.TB, dir, name, bin string, args ...string) <-chan struct{} {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (last 3000 bytes):\n%s", name, b[max(0, len(b)-3000):])
			}
		}
	})
	return done
}

// waitReady polls /readyz until the apiserver and its etcd answer (at most 90s
// on a loaded machine).
func (c *Cluster) waitReady(t testing.TB, exited <-chan struct{}) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		select {
		case <-exited:
			t.Fatalf("kube-apiserver exited before it was ready (its log follows)")
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready after 90s: %s", last)
}
