// Command abuse-serve runs hostile clients against real `kaload serve`
// processes on loopback and prints, per case, the figure a reader needs:
//
//   - drain: SIGTERM with --drain-delay while kaload's engine keeps 20
//     connections busy through an L4 balancer that moves to a second server
//     halfway through the delay; errors in the drain window, per protocol.
//
//   - stall: 3,000 connections whose request body stalls (Content-Length
//     100 with 10 bytes sent, or a chunked body that stops): the server's RSS
//     and open fds before, with them open, and after --read-timeout; then
//     five of them during a SIGTERM: time to exit and exit code.
//
//   - reset: an HTTP/2 rapid-reset attacker (a separate process) against
//     --h2c: CPU seconds of server and attacker, p99 of a normal client
//     before and during the attack, and what /metrics counted.
//
//     go build -o /tmp/kaload ./cmd/kaload
//     go run ./bench/cmd/abuse-serve -kaload /tmp/kaload            # every case
//     go run ./bench/cmd/abuse-serve -kaload /tmp/kaload -cases reset
//
// bench/abuse-serve.sh does both. Loopback only; every loop is bounded.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaload/kaload/internal/abuse"
	"github.com/kaload/kaload/internal/lab"
	"github.com/kaload/kaload/pkg/client"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "attack" {
		attackMain(os.Args[2:])
		return
	}
	bin := flag.String("kaload", "kaload", "the kaload binary to test")
	cases := flag.String("cases", "drain,stall,reset", "comma-separated cases to run")
	flag.Parse()
	for _, c := range strings.Split(*cases, ",") {
		var err error
		switch c {
		case "drain":
			err = drainCase(*bin)
		case "stall":
			err = stallCase(*bin)
		case "reset":
			err = resetCase(*bin)
		default:
			err = fmt.Errorf("unknown case %q (want drain, stall or reset)", c)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "abuse-serve: %s: %v\n", c, err)
			os.Exit(1)
		}
	}
}

// serveProc is one `kaload serve` process.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
	exit chan error
}

// startServe runs kaload serve on a free loopback port with args and waits
// for its "listening on" line.
func startServe(bin string, args ...string) (*serveProc, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serveProc{cmd: cmd, exit: make(chan error, 1)}
	br := bufio.NewReader(stderr)
	line, err := br.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("kaload serve: %v", err)
	}
	_, rest, ok := strings.Cut(line, "listening on ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("kaload serve said %q", line)
	}
	p.addr, _, _ = strings.Cut(rest, " ")
	go func() {
		io.Copy(io.Discard, br)
		p.exit <- cmd.Wait()
	}()
	return p, nil
}

func (p *serveProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exit
	}
}

// procStat reads a process's CPU seconds (user+system), RSS bytes and open fds.
type procStat struct {
	cpu time.Duration
	rss int64
	fds int
}

func stat(pid int) (procStat, error) {
	var s procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	s.rss = pages * int64(os.Getpagesize())
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	return s, nil
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// ---- drain ----

func drainCase(bin string) error {
	dir, err := os.MkdirTemp("", "kaload-abuse")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cert, key, err := writeCert(dir)
	if err != nil {
		return err
	}
	fmt.Println("== drain: SIGTERM with --drain-delay 1s while 20 connections run through a balancer that moves to a second server after 0.5s")
	for _, proto := range []string{"h1", "h2c", "tls-h2"} {
		var args []string
		scheme := "http"
		switch proto {
		case "h2c":
			args = []string{"--h2c"}
		case "tls-h2":
			args = []string{"--tls-cert", cert, "--tls-key", key}
			scheme = "https"
		}
		args = append(args, "--drain-delay", "1s", "--shutdown-grace", "5s")
		if err := drainOnce(bin, proto, scheme, args); err != nil {
			return fmt.Errorf("%s: %w", proto, err)
		}
	}
	return nil
}

func drainOnce(bin, proto, scheme string, args []string) error {
	old, err := startServe(bin, append(args, "--hostname", "old")...)
	if err != nil {
		return err
	}
	defer old.stop()
	nw, err := startServe(bin, append(args, "--hostname", "new")...)
	if err != nil {
		return err
	}
	defer nw.stop()
	bal := lab.NewBalancer(lab.PolicyRoundRobin, 1)
	bal.SetBackends(old.addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go bal.Serve(context.Background(), ln)
	defer func() { bal.Close(); bal.Wait() }()

	const sigAt, moveAt, runFor = time.Second, 1500 * time.Millisecond, 4 * time.Second
	var (
		mu                          sync.Mutex
		total, errs, inWindow, oldN int
		examples                    []string
	)
	sink := client.SinkFunc(func(r *client.Result) {
		mu.Lock()
		defer mu.Unlock()
		total++
		end := r.Start + r.Latency
		if r.Failed() {
			errs++
			if end >= sigAt && end < sigAt+3*time.Second {
				inWindow++
			}
			if len(examples) < 3 {
				examples = append(examples, r.Err)
			}
		} else if r.Backend == "old" && end >= sigAt {
			oldN++
		}
	})
	var exitAfter time.Duration
	var exitErr error
	go func() {
		time.Sleep(sigAt)
		t0 := time.Now()
		old.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(moveAt - sigAt)
		bal.SetBackends(nw.addr)
		exitErr = <-old.exit
		old.exit <- exitErr
		exitAfter = time.Since(t0)
	}()
	st, err := client.Run(context.Background(), client.Config{
		URL: scheme + "://" + ln.Addr().String() + "/", Connections: 20, Duration: runFor,
		Timeout: 5 * time.Second, H2C: proto == "h2c", HTTP2: proto == "tls-h2", Insecure: true,
	}, sink)
	if err != nil {
		return err
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(exitErr, &ee) {
		code = ee.ExitCode()
	}
	fmt.Printf("drain %-6s %7d requests, %d errors (%d in the drain window), %d connections; old answered %d after SIGTERM, exited %d after %.2fs",
		proto, total, errs, inWindow, st.Connections, oldN, code, exitAfter.Seconds())
	if len(examples) > 0 {
		fmt.Printf("; e.g. %q", examples)
	}
	fmt.Println()
	return nil
}

// ---- stall ----

func stallCase(bin string) error {
	const n = 3000
	fmt.Printf("== stall: %d connections whose request body stalls (half Content-Length 100 with 10 bytes sent, half chunked), --read-timeout 5s\n", n)
	srv, err := startServe(bin, "--read-timeout", "5s")
	if err != nil && strings.Contains(err.Error(), "unknown flag") {
		fmt.Println("stall      (this build has no --read-timeout)")
		srv, err = startServe(bin)
	}
	if err != nil {
		return err
	}
	defer srv.stop()
	before, err := stat(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, abuse.StalledBody(i%2 == 1)); err != nil {
			return err
		}
	}
	opened := time.Now()
	time.Sleep(time.Second)
	held, err := stat(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	// Each client should get a 408 and then EOF within the read timeout.
	answered := 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil && resp.StatusCode == http.StatusRequestTimeout {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(opened)
	time.Sleep(500 * time.Millisecond)
	// Measured while every client still holds its end open.
	after, err := stat(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	fmt.Printf("stall      server RSS %s -> %s with %d stalled -> %s at %.1fs (Go keeps freed memory a while); fds %d -> %d -> %d; %d of %d answered 408\n",
		mb(before.rss), mb(held.rss), n, mb(after.rss), took.Seconds()+0.5, before.fds, held.fds, after.fds, answered, n)

	// Five stalled bodies during a SIGTERM, with the default read timeout.
	srv2, err := startServe(bin, "--shutdown-grace", "5s")
	if err != nil {
		return err
	}
	for i := range 5 {
		c, err := net.DialTimeout("tcp", srv2.addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		io.WriteString(c, abuse.StalledBody(i%2 == 1))
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	srv2.cmd.Process.Signal(syscall.SIGTERM)
	werr := <-srv2.exit
	srv2.exit <- werr
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	}
	fmt.Printf("stall      SIGTERM with 5 stalled bodies (--shutdown-grace 5s, default --read-timeout): exit %d after %.2fs\n", code, time.Since(t0).Seconds())
	return nil
}

// ---- reset ----

func resetCase(bin string) error {
	// The attacker gets a CPU of its own, the server and the normal client
	// the other: the p99 then shows what the attack costs the server, not
	// what the attacker's own CPU costs a shared machine.
	var pinned bool
	if runtime.NumCPU() >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			var set unix.CPUSet
			set.Set(0)
			pinned = unix.SchedSetaffinity(0, &set) == nil
			if pinned {
				defer func() {
					var all unix.CPUSet
					for i := range runtime.NumCPU() {
						all.Set(i)
					}
					unix.SchedSetaffinity(0, &all)
				}()
			}
		}
	}
	if pinned {
		fmt.Println("== pinned: server and normal client on CPU 0, attacker on CPU 1")
	}
	fmt.Println("== reset: HTTP/2 rapid reset (4 attackers writing HEADERS + RST_STREAM in a loop, each at most 1,000,000 streams over 3,000 connections for 3.5s) against --h2c, a normal client at 200 requests/s beside it")
	srv, err := startServe(bin, "--h2c")
	if err != nil {
		return err
	}
	defer srv.stop()
	url := "http://" + srv.addr + "/"
	base, baseN, err := normalClient(url, 3*time.Second)
	if err != nil {
		return err
	}
	s0, err := stat(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	attArgs := []string{self, "attack"}
	if pinned {
		attArgs = append([]string{"taskset", "-c", "1"}, attArgs...)
	}
	att := exec.Command(attArgs[0], append(attArgs[1:], "-addr", srv.addr, "-streams", "1000000", "-conns", "3000", "-d", "3500ms", "-parallel", "4")...)
	var attOut strings.Builder
	att.Stdout = &attOut
	att.Stderr = os.Stderr
	if err := att.Start(); err != nil {
		return err
	}
	during, duringN, err := normalClient(url, 3*time.Second)
	if err != nil {
		return err
	}
	if err := att.Wait(); err != nil {
		return fmt.Errorf("attacker: %w", err)
	}
	s1, err := stat(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	attCPU := att.ProcessState.UserTime() + att.ProcessState.SystemTime()
	m := map[string]float64{}
	for _, name := range []string{"kaload_requests_total", "kaload_requests_abandoned_total", "kaload_http2_streams_reset_total", "kaload_http2_reset_flood_connections_total"} {
		v, err := scrape(srv.addr, name)
		if err != nil {
			m[name] = -1 // an older kaload without this metric
			continue
		}
		m[name] = v
	}
	ratio := "n/a"
	if base > 0 {
		ratio = fmt.Sprintf("%.1fx", float64(during)/float64(base))
	}
	fmt.Printf("reset      attacker: %s\n", strings.TrimSpace(attOut.String()))
	fmt.Printf("reset      CPU: server %.2fs vs attacker %.2fs (%.1fx); server RSS %s, fds %d\n",
		(s1.cpu - s0.cpu).Seconds(), attCPU.Seconds(), (s1.cpu-s0.cpu).Seconds()/max(attCPU.Seconds(), 0.001), mb(s1.rss), s1.fds)
	fmt.Printf("reset      normal client p99: %v before (%d requests), %v during the attack (%d requests): %s\n",
		base.Round(10*time.Microsecond), baseN, during.Round(10*time.Microsecond), duringN, ratio)
	fmt.Printf("reset      /metrics: kaload_requests_total %.0f (the normal client was answered %d), abandoned %.0f, streams reset %.0f, connections closed for rapid reset %.0f (-1: no such metric)\n",
		m["kaload_requests_total"], baseN+duringN, m["kaload_requests_abandoned_total"], m["kaload_http2_streams_reset_total"], m["kaload_http2_reset_flood_connections_total"])
	return nil
}

// normalClient runs kaload's engine at 200 requests/s over 10 h2c
// connections for d and returns its p99 latency and answered requests.
func normalClient(url string, d time.Duration) (time.Duration, int, error) {
	var mu sync.Mutex
	var lat []time.Duration
	fails, example := 0, ""
	_, err := client.Run(context.Background(), client.Config{
		URL: url, Connections: 10, Duration: d, Rate: 200, H2C: true, Timeout: 10 * time.Second,
	}, client.SinkFunc(func(r *client.Result) {
		mu.Lock()
		defer mu.Unlock()
		if r.Failed() {
			fails++
			example = fmt.Sprintf("status %d %s", r.Status, r.Err)
			return
		}
		lat = append(lat, r.Latency)
	}))
	if err != nil {
		return 0, 0, err
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("no data: the normal client got no answer (%d failed)", fails)
	}
	if fails > 0 {
		fmt.Printf("reset      the normal client had %d failed requests, e.g. %s\n", fails, example)
	}
	slices.Sort(lat)
	return lat[(len(lat)*99+99)/100-1], len(lat), nil
}

// scrape reads one unlabelled sample from /metrics.
func scrape(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no data: %s not in /metrics", name)
}

func attackMain(args []string) {
	fs := flag.NewFlagSet("attack", flag.ExitOnError)
	addr := fs.String("addr", "", "h2c server address (loopback)")
	streams := fs.Int("streams", 100000, "HEADERS+RST_STREAM pairs in all")
	conns := fs.Int("conns", 100, "connections at most")
	d := fs.Duration("d", 4*time.Second, "duration at most")
	parallel := fs.Int("parallel", 1, "attackers at once, each with -streams and -conns")
	fs.Parse(args)
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "attack: -addr must be a loopback host:port")
		os.Exit(2)
	}
	var (
		mu  sync.Mutex
		sum = abuse.RapidReset{GoAways: map[string]int{}}
		wg  sync.WaitGroup
	)
	for range *parallel {
		wg.Go(func() {
			res, err := abuse.RapidResetAttack(context.Background(), *addr, "/", *streams, *conns, *d)
			if err != nil {
				fmt.Fprintln(os.Stderr, "attack:", err)
				os.Exit(1)
			}
			mu.Lock()
			defer mu.Unlock()
			sum.Streams += res.Streams
			sum.Conns += res.Conns
			sum.ClosedConns += res.ClosedConns
			sum.MaxPerConn = max(sum.MaxPerConn, res.MaxPerConn)
			sum.Elapsed = max(sum.Elapsed, res.Elapsed)
			for k, v := range res.GoAways {
				sum.GoAways[k] += v
			}
		})
	}
	wg.Wait()
	fmt.Printf("%d pairs written over %d connections in %.2fs, at most %d on one connection; the server ended %d connections, GOAWAY %v\n",
		sum.Streams, sum.Conns, sum.Elapsed.Seconds(), sum.MaxPerConn, sum.ClosedConns, sum.GoAways)
}

// writeCert writes a self-signed certificate for 127.0.0.1.
func writeCert(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kaload abuse"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
