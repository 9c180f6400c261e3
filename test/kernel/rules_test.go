package kernel

import (
	"bufio"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// service is one port of a ClusterIP Service, named as kube-proxy names it
// ("namespace/name:port"), with the endpoints that are ready behind it.
type service struct {
	Namespace, Name, Port string
	VIP                   netip.AddrPort
	Endpoints             []netip.AddrPort
}

func (s service) portName() string { return s.Namespace + "/" + s.Name + ":" + s.Port }

// chainHash is kube-proxy's chain-name hash: the first 16 characters of the
// base32 of a SHA-256, so an endpoint keeps its chain name across rewrites.
func chainHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

func (s service) svcChain() string { return "KUBE-SVC-" + chainHash(s.portName()+"tcp") }

func (s service) sepChain(ep netip.AddrPort) string {
	return "KUBE-SEP-" + chainHash(s.portName()+"tcp"+ep.String())
}

// renderNAT writes the whole nat table for one Service as a single
// iptables-restore transaction, in the shape kube-proxy's iptables mode uses:
// OUTPUT and PREROUTING jump to KUBE-SERVICES, which matches the VIP and
// jumps to KUBE-SVC-*, which picks KUBE-SEP-* endpoint i with probability
// 1/(n-i), so each of the n endpoints is equally likely for a new connection.
// The restore replaces the full table: it runs only in a namespace the test
// owns, so nothing else lives there, and a rewrite is atomic.
func renderNAT(s service) string {
	var b strings.Builder
	svc := s.svcChain()
	b.WriteString("*nat\n")
	for _, c := range []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"} {
		fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", c)
	}
	b.WriteString(":KUBE-SERVICES - [0:0]\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n", svc)
	for _, ep := range s.Endpoints {
		fmt.Fprintf(&b, ":%s - [0:0]\n", s.sepChain(ep))
	}
	b.WriteString("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	b.WriteString("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	if len(s.Endpoints) > 0 {
		fmt.Fprintf(&b, "-A KUBE-SERVICES -m comment --comment \"%s cluster IP\" -d %s/32 -p tcp -m tcp --dport %d -j %s\n",
			s.portName(), s.VIP.Addr(), s.VIP.Port(), svc)
	}
	n := len(s.Endpoints)
	for i, ep := range s.Endpoints {
		fmt.Fprintf(&b, "-A %s -m comment --comment \"%s -> %s\"", svc, s.portName(), ep)
		if i < n-1 {
			// kube-proxy's own formatting of the probability.
			fmt.Fprintf(&b, " -m statistic --mode random --probability %0.10f", 1/float64(n-i))
		}
		fmt.Fprintf(&b, " -j %s\n", s.sepChain(ep))
	}
	for _, ep := range s.Endpoints {
		fmt.Fprintf(&b, "-A %s -m comment --comment \"%s\" -p tcp -m tcp -j DNAT --to-destination %s\n",
			s.sepChain(ep), s.portName(), ep)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// natRule is one rule of `iptables-save -c` output with its counters.
type natRule struct {
	Table   string
	Chain   string
	Target  string // the -j argument
	ToDest  string // the --to-destination argument, for DNAT rules
	Packets uint64
	Bytes   uint64
}

// parseSave reads `iptables-save -c` output. Only rules are returned; table
// headers, chain declarations, COMMIT and comments are checked for shape and
// skipped. Errors name the line.
func parseSave(text string) ([]natRule, error) {
	var rules []natRule
	table := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if table == "" {
				return nil, fmt.Errorf("line %d: empty table name", n)
			}
		case line == "COMMIT":
			table = ""
		case strings.HasPrefix(line, ":"):
			if table == "" {
				return nil, fmt.Errorf("line %d: chain declaration outside a table", n)
			}
		default:
			r, err := parseRule(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if table == "" {
				return nil, fmt.Errorf("line %d: rule outside a table", n)
			}
			r.Table = table
			rules = append(rules, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading iptables-save output: %w", err)
	}
	return rules, nil
}

func parseRule(line string) (natRule, error) {
	var r natRule
	if strings.HasPrefix(line, "[") {
		end := strings.IndexByte(line, ']')
		if end < 0 {
			return r, errors.New("unterminated counter")
		}
		pk, by, ok := strings.Cut(line[1:end], ":")
		if !ok {
			return r, fmt.Errorf("counter %q is not [packets:bytes]", line[:end+1])
		}
		var err error
		if r.Packets, err = strconv.ParseUint(pk, 10, 64); err != nil {
			return r, fmt.Errorf("packet counter: %w", err)
		}
		if r.Bytes, err = strconv.ParseUint(by, 10, 64); err != nil {
			return r, fmt.Errorf("byte counter: %w", err)
		}
		line = line[end+1:]
	}
	f, err := splitQuoted(line)
	if err != nil {
		return r, err
	}
	if len(f) < 2 || f[0] != "-A" {
		return r, fmt.Errorf("rule %q does not start with -A CHAIN", line)
	}
	r.Chain = f[1]
	for i := 2; i < len(f)-1; i++ {
		switch f[i] {
		case "-j":
			r.Target = f[i+1]
		case "--to-destination":
			r.ToDest = f[i+1]
		}
	}
	return r, nil
}

// splitQuoted splits on blanks, keeping "double quoted" words (with \"
// escapes, as iptables-save writes comments) as one field.
func splitQuoted(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			in, have = !in, true
		case !in && (c == ' ' || c == '\t'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if in {
		return nil, errors.New("unterminated quote")
	}
	if have {
		out = append(out, cur.String())
	}
	return out, nil
}

// dnatPackets sums, per DNAT destination, the packet counters of the nat
// table's DNAT rules. The nat table sees only the first packet of each
// connection (conntrack handles the rest), so this counts connections.
func dnatPackets(rules []natRule) map[string]uint64 {
	m := map[string]uint64{}
	for _, r := range rules {
		if r.Table == "nat" && r.Target == "DNAT" && r.ToDest != "" {
			m[r.ToDest] += r.Packets
		}
	}
	return m
}
