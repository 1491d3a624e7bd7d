package local

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/netns"
)

// netConfig is one namespace's plumbing: a veth pair with a /30, and the nftables tables
// inside the namespace and on the host.
type netConfig struct {
	// Veth is embedded so host.json keeps its flat fields (namespace, host_veth, ...).
	netns.Veth
	// HostTable is the host-side nftables table (ip family) that maps loopback targets.
	HostTable string `json:"host_table"`
}

// nsTable is the table inside every namespace.
const nsTable = "ztna"

var hostLoopback = netip.MustParseAddr("127.0.0.1")

// split sorts the (resolved) allowlist into loopback rules, which reach the host's
// 127.0.0.1 through NAT, and address rules. A loopback destination other than 127.0.0.1/32
// cannot be mapped (NAT keeps one address), so it is an error.
func split(rules []egress.Rule) (loopback, remote []egress.Rule, err error) {
	for _, r := range rules {
		p, ok := r.Prefix()
		if !ok {
			return nil, nil, fmt.Errorf("egress rule %s: names must be resolved before the namespace firewall is built", r)
		}
		switch {
		case p.Addr().IsLoopback() && p == netip.PrefixFrom(hostLoopback, 32):
			loopback = append(loopback, r)
		case p.Addr().IsLoopback() || p.Overlaps(netip.MustParsePrefix("127.0.0.0/8")) || p.Overlaps(netip.MustParsePrefix("::1/128")):
			return nil, nil, fmt.Errorf("egress rule %s: a namespaced router reaches the host's loopback only at 127.0.0.1: use 127.0.0.1 or the host's address", r)
		default:
			remote = append(remote, r)
		}
	}
	return loopback, remote, nil
}

// portSets renders "{ 80, 443, 8000-8100 }" per protocol.
func portSets(rules []egress.Rule) map[egress.Protocol]string {
	ports := map[egress.Protocol][]string{}
	for _, r := range rules {
		ports[r.Protocol] = append(ports[r.Protocol], r.Ports.String())
	}
	out := map[egress.Protocol]string{}
	for p, list := range ports {
		out[p] = "{ " + strings.Join(list, ", ") + " }"
	}
	return out
}

func protocols(m map[egress.Protocol]string) []egress.Protocol {
	var out []egress.Protocol
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// namespaceRuleset is the firewall inside the namespace: no inbound connection at all, and
// outbound only to the allowlist. Connections to allowed ports of 127.0.0.1 are translated to
// the host end of the veth (and from there, by the host table, to the host's 127.0.0.1), so a
// controller or service on the host's loopback stays reachable and nothing else does.
func namespaceRuleset(c netConfig, rules []egress.Rule) (string, error) {
	loopback, remote, err := split(rules)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	// Declaring the table first and deleting it makes the load idempotent and atomic.
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", nsTable, nsTable, nsTable)
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n")
	b.WriteString("\t\tiifname \"lo\" accept\n\t\tct state established,related accept\n\t}\n")
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority 0; policy drop;\n\t}\n")
	b.WriteString("\tchain output {\n\t\ttype filter hook output priority 0; policy drop;\n")
	// Loopback stays inside the namespace, except the translated connections below, which
	// only exist for allowed ports.
	b.WriteString("\t\toifname \"lo\" accept\n\t\tct state established,related accept\n")
	for _, r := range remote {
		p, _ := r.Prefix()
		family := "ip"
		if p.Addr().Is6() {
			family = "ip6"
		}
		fmt.Fprintf(&b, "\t\t%s daddr %s %s dport %s accept\n", family, p, r.Protocol, r.Ports)
	}
	sets := portSets(loopback)
	for _, proto := range protocols(sets) {
		fmt.Fprintf(&b, "\t\tip daddr %s %s dport %s accept\n", c.HostAddr, proto, sets[proto])
	}
	b.WriteString("\t\treject with icmpx type admin-prohibited\n\t}\n")
	if len(loopback) > 0 {
		b.WriteString("\tchain nat_output {\n\t\ttype nat hook output priority -100; policy accept;\n")
		for _, proto := range protocols(sets) {
			fmt.Fprintf(&b, "\t\tip daddr %s %s dport %s dnat ip to %s\n", hostLoopback, proto, sets[proto], c.HostAddr)
		}
		b.WriteString("\t}\n\tchain nat_postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n")
		fmt.Fprintf(&b, "\t\toifname %q ip saddr 127.0.0.0/8 masquerade\n\t}\n", c.NSVeth)
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// hostRuleset is the host side: connections from the namespace to allowed loopback ports of
// the veth address go to the host's 127.0.0.1, and traffic from the namespace to other hosts is
// masqueraded (it leaves the machine only where IP forwarding is enabled, which the driver
// does not change).
func hostRuleset(c netConfig, rules []egress.Rule) (string, error) {
	loopback, _, err := split(rules)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\ntable ip %s {\n", c.HostTable, c.HostTable, c.HostTable)
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n")
	sets := portSets(loopback)
	for _, proto := range protocols(sets) {
		fmt.Fprintf(&b, "\t\tiifname %q ip daddr %s %s dport %s dnat to %s\n", c.HostVeth, c.HostAddr, proto, sets[proto], hostLoopback)
	}
	b.WriteString("\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n")
	fmt.Fprintf(&b, "\t\tip saddr %s oifname != %q masquerade\n\t}\n}\n", c.NSAddr, c.HostVeth)
	return b.String(), nil
}
