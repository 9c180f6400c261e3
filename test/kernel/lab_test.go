package kernel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses exist only inside the namespaces a lab makes: the node namespace
// has no uplink and no default route, so nothing else is reachable from it.
var (
	podSubnet = netip.MustParsePrefix("10.244.0.0/24")
	nodeAddr  = netip.MustParseAddr("10.244.0.1")
	svcRange  = netip.MustParsePrefix("10.96.0.0/16")
	vip       = netip.MustParseAddrPort("10.96.0.10:80")
	// Locally administered and fixed, so adding a port to the bridge never
	// changes its address (a bridge without one takes its lowest port's).
	bridgeMAC = "02:6b:61:6c:6f:01"
)

const podPort = 8080

// iptables is the pair of iptables binaries that worked in a probe namespace.
type iptables struct{ restore, save string }

var (
	iptOnce sync.Once
	iptTool iptables
	iptWhy  string
)

// requireKernelLab skips unless the test can build namespaces and program
// NAT in them: root, iproute2, unshare/hostname, and an iptables flavour
// (whichever `iptables` is, else legacy, else nft) that the kernel accepts.
func requireKernelLab(t testing.TB) iptables {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel lab: skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel lab: needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "unshare", "hostname", "sh"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel lab: %s not installed (%v)", bin, err)
		}
	}
	iptOnce.Do(func() {
		sweepStale()
		iptTool, iptWhy = probeIPTables()
	})
	if iptWhy != "" {
		t.Skip("kernel lab: " + iptWhy)
	}
	return iptTool
}

// probeIPTables restores a real two-endpoint ruleset in a throwaway namespace
// and reads it back, trying each flavour in turn; it never touches the
// namespace the test runs in.
func probeIPTables() (iptables, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ns := "kaload-probe-" + runID()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return iptables{}, fmt.Sprintf("cannot create a network namespace: %v: %s", err, bytes.TrimSpace(out))
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	var why []string
	for _, flavour := range []string{"iptables", "iptables-legacy", "iptables-nft"} {
		ipt := iptables{restore: flavour + "-restore", save: flavour + "-save"}
		if _, err := exec.LookPath(ipt.restore); err != nil {
			why = append(why, ipt.restore+" not installed")
			continue
		}
		if _, err := exec.LookPath(ipt.save); err != nil {
			why = append(why, ipt.save+" not installed")
			continue
		}
		s := testService(2)
		restore := exec.CommandContext(ctx, "ip", "netns", "exec", ns, ipt.restore, "-w", "5")
		restore.Stdin = strings.NewReader(renderNAT(s))
		if out, err := restore.CombinedOutput(); err != nil {
			why = append(why, fmt.Sprintf("%s refused the rules: %v: %s", ipt.restore, err, bytes.TrimSpace(out)))
			continue
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, ipt.save, "-c", "-t", "nat").Output()
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", ipt.save, err))
			continue
		}
		rules, err := parseSave(string(out))
		if err != nil {
			why = append(why, fmt.Sprintf("%s output: %v", ipt.save, err))
			continue
		}
		if got := dnatPackets(rules); len(got) != 2 {
			why = append(why, fmt.Sprintf("%s read back %d DNAT rules, want 2", ipt.save, len(got)))
			continue
		}
		return ipt, ""
	}
	return iptables{}, "no working iptables: " + strings.Join(why, "; ")
}

// staleName matches the namespaces runID names: kaload-[probe-]PID-HEX[-...].
var staleName = regexp.MustCompile(`^kaload-(?:probe-)?([0-9]+)-[0-9a-f]{6}(?:-|$)`)

// sweepStale deletes namespaces left by an earlier run of this test that was
// killed before its cleanups ran (e.g. by go test's -timeout): only names of
// our own shape whose creating process no longer exists.
func sweepStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		exec.Command("ip", "netns", "del", name).Run()
	}
}

// runID is unique per call, so parallel and leftover runs never collide on
// namespace names.
func runID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// lab is one node namespace with a bridge, pods on veth pairs, and a
// Service VIP programmed in the node's nat table.
type lab struct {
	t    *testing.T
	ipt  iptables
	node string // the node's namespace name
	svc  service
	pods []*pod
}

type pod struct {
	name  string // also its OS hostname
	netns string
	ip    netip.Addr
	proc  *exec.Cmd
	out   *lockedBuffer
}

func (p *pod) endpoint() netip.AddrPort { return netip.AddrPortFrom(p.ip, podPort) }

// newLab makes the node namespace, its loopback and a bridge with a fixed
// MAC, and registers teardown before anything else can fail.
func newLab(t *testing.T, ipt iptables) *lab {
	t.Helper()
	l := &lab{t: t, ipt: ipt, node: "kaload-" + runID() + "-node",
		svc: service{Namespace: "default", Name: "kaload", Port: "http", VIP: vip}}
	l.addNetns(l.node)
	l.ipBatch(l.node,
		"link set lo up",
		"link add br0 address "+bridgeMAC+" type bridge",
		"addr add "+netip.PrefixFrom(nodeAddr, podSubnet.Bits()).String()+" dev br0",
		"link set br0 up",
		// The VIP must route somewhere for the first packet to reach nat
		// OUTPUT; after DNAT the kernel routes again, to the pod.
		"route add "+svcRange.String()+" dev br0 src "+nodeAddr.String())
	return l
}

func (l *lab) addNetns(name string) {
	l.t.Helper()
	l.ip("netns", "add", name)
	l.t.Cleanup(func() {
		// Processes were killed by the context and waited for by cleanups
		// registered later (run earlier); deleting the node namespace also
		// removes its bridge and the veth ends.
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
}

// ip runs iproute2 and fails the test with its output on error.
func (l *lab) ip(args ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out)
}

// ipBatch runs iproute2 commands in one process inside a namespace (one
// fork instead of one per command keeps a mid-run scale-up quick); it stops
// at the first failing line and fails the test with ip's message.
func (l *lab) ipBatch(netns string, lines ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "-n", netns, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("ip -n %s -batch:\n%s\n%v: %s", netns, strings.Join(lines, "\n"), err, bytes.TrimSpace(out))
	}
}

// addPod makes a pod namespace wired to the bridge with the next address.
// It does not publish the pod in the Service: see publish.
func (l *lab) addPod(name string) *pod {
	l.t.Helper()
	p := &pod{name: name, netns: strings.TrimSuffix(l.node, "-node") + "-" + name,
		ip: netip.AddrFrom4([4]byte{10, 244, 0, byte(2 + len(l.pods))})}
	if !podSubnet.Contains(p.ip) || p.ip == nodeAddr {
		l.t.Fatalf("pod address %s out of %s", p.ip, podSubnet)
	}
	l.addNetns(p.netns)
	hostEnd := "veth-" + name
	if len(hostEnd) > 15 {
		hostEnd = hostEnd[:15]
	}
	l.ipBatch(l.node,
		"link add "+hostEnd+" type veth peer name eth0 netns "+p.netns,
		"link set "+hostEnd+" master br0",
		"link set "+hostEnd+" up")
	l.ipBatch(p.netns,
		"link set lo up",
		"addr add "+netip.PrefixFrom(p.ip, podSubnet.Bits()).String()+" dev eth0",
		"link set eth0 up")
	l.pods = append(l.pods, p)
	return p
}

// start runs argv inside the pod: its network namespace, and a new UTS
// namespace whose hostname is the pod's name. ip, unshare and sh all exec, so
// the process the context kills is the program itself.
func (l *lab) start(ctx context.Context, p *pod, env []string, argv ...string) {
	l.t.Helper()
	args := append([]string{"netns", "exec", p.netns, "unshare", "--uts", "sh", "-c",
		`hostname "$0" && exec "$@"`, p.name}, argv...)
	p.out = &lockedBuffer{}
	p.proc = l.command(ctx, p.out, p.out, env, args...)
}

// command starts `ip args...`; a cleanup kills and waits for it, and shows
// its stderr if the test failed.
func (l *lab) command(ctx context.Context, stdout, stderr *lockedBuffer, env []string, args ...string) *exec.Cmd {
	l.t.Helper()
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// If the test binary dies without cleanups, the kernel kills the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %v: %v", cmd.Args, err)
	}
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if l.t.Failed() && stderr.Len() > 0 {
			l.t.Logf("stderr of %s:\n%s", strings.Join(cmd.Args, " "), stderr.String())
		}
	})
	return cmd
}

// publish makes the Service's endpoints exactly the given pods, rewriting
// the node's nat table in one iptables-restore transaction.
func (l *lab) publish(pods ...*pod) {
	l.t.Helper()
	l.svc.Endpoints = l.svc.Endpoints[:0]
	for _, p := range pods {
		l.svc.Endpoints = append(l.svc.Endpoints, p.endpoint())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.node, l.ipt.restore, "-w", "5")
	cmd.Stdin = strings.NewReader(renderNAT(l.svc))
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("%s in %s: %v: %s", l.ipt.restore, l.node, err, bytes.TrimSpace(out))
	}
}

// dnatCounts returns, per pod name, how many connections the node's nat
// table sent to it since the last publish (a restore resets counters).
func (l *lab) dnatCounts() map[string]uint64 {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.node, l.ipt.save, "-c", "-t", "nat").Output()
	if err != nil {
		l.t.Fatalf("%s in %s: %v", l.ipt.save, l.node, err)
	}
	rules, err := parseSave(string(out))
	if err != nil {
		l.t.Fatalf("%s in %s: %v", l.ipt.save, l.node, err)
	}
	byDest := dnatPackets(rules)
	m := map[string]uint64{}
	for _, p := range l.pods {
		m[p.name] = byDest[p.endpoint().String()]
	}
	return m
}

// bridgeAddr reads br0's MAC address.
func (l *lab) bridgeAddr() string {
	l.t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(l.ip("-j", "-n", l.node, "link", "show", "br0")), &links); err != nil || len(links) != 1 {
		l.t.Fatalf("ip -j link show br0: %v (%d links)", err, len(links))
	}
	return links[0].Address
}

// requireIsolated checks, without sending anything, that the node namespace
// cannot route to any address outside the lab.
func (l *lab) requireIsolated() {
	l.t.Helper()
	for _, dst := range []string{"192.0.2.1", "8.8.8.8", "10.0.0.1"} {
		out, err := exec.Command("ip", "-n", l.node, "route", "get", dst).CombinedOutput()
		if err == nil {
			l.t.Fatalf("node namespace routes %s outside the lab: %s", dst, out)
		}
		if !strings.Contains(string(out), "unreachable") {
			l.t.Fatalf("ip route get %s: unexpected answer %q", dst, out)
		}
	}
}

// helperEnv is a minimal environment, so no KALOAD_*, MAX_REQUEST or
// POD_NAME from the caller's shell can change what a process does.
func helperEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=/", "LANG=C"}, extra...)
}

// waitListening polls, from the node namespace, until every pod accepts TCP.
func (l *lab) waitListening(ctx context.Context, pods ...*pod) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := inNetns(l.node, func() error {
		var d net.Dialer
		for _, p := range pods {
			for {
				c, err := d.DialContext(ctx, "tcp", p.endpoint().String())
				if err == nil {
					c.Close()
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("%s at %s: %w", p.name, p.endpoint(), err)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		return nil
	})
	if err != nil {
		for _, p := range pods {
			if p.out != nil {
				l.t.Logf("%s output:\n%s", p.name, p.out.String())
			}
		}
		l.t.Fatalf("pod never listened: %v", err)
	}
}

// inNetns runs fn on an OS thread moved into the named network namespace,
// so sockets fn creates itself live there. fn must not hand dialing to other
// goroutines (net.Dialer to one IP address does not; http.Client does).
//
// The thread is moved back and unlocked afterwards rather than left to exit:
// children started with Pdeathsig from that thread earlier would be killed
// by its exit, since Linux ties Pdeathsig to the parent thread.
func inNetns(name string, fn func() error) error {
	target, err := os.Open(filepath.Join("/var/run/netns", name))
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer origin.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		// Make sure before any socket exists: a dial from the wrong
		// namespace could leave the lab by the machine's default route.
		ferr := sameNetns(target, "/proc/thread-self/ns/net")
		if ferr == nil {
			ferr = fn()
		}
		if err := unix.Setns(int(origin.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the thread exits with this goroutine instead of
			// running other goroutines in the wrong namespace.
			errc <- fmt.Errorf("setns back from %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// sameNetns checks that the namespace file f and path name one namespace.
func sameNetns(f *os.File, path string) error {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if err := unix.Stat(path, &b); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return fmt.Errorf("thread is in namespace %d, not %s (%d)", b.Ino, f.Name(), a.Ino)
	}
	return nil
}

// lockedBuffer is written by exec's copying goroutines and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}
