package kernel

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// benchService is a Service with n endpoints spread over 10.244.0.0/16.
func benchService(n int) service {
	s := service{Namespace: "default", Name: "kaload", Port: "http", VIP: vip}
	for i := 0; i < n; i++ {
		s.Endpoints = append(s.Endpoints, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(2 + i%250)}), podPort))
	}
	return s
}

func BenchmarkRenderNAT(b *testing.B) {
	for _, n := range []int{3, 100, 1000} {
		s := benchService(n)
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				renderNAT(s)
			}
		})
	}
}

// BenchmarkRestoreNAT measures what one Service rewrite costs the kernel
// path this test uses: one iptables-restore of the whole nat table, in a
// namespace of its own, as the endpoint count grows.
func BenchmarkRestoreNAT(b *testing.B) {
	ipt := requireKernelLab(b)
	ns := "kaload-" + runID() + "-node"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, n := range []int{3, 100, 1000} {
		rules := renderNAT(benchService(n))
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command("ip", "netns", "exec", ns, ipt.restore, "-w", "5")
				cmd.Stdin = strings.NewReader(rules)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v: %s", ipt.restore, err, out)
				}
			}
		})
	}
}
