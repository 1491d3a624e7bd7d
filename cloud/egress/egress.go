// Package egress computes the outbound allowlist of a router host. A router only ever dials out:
// to the controller (edge API, control channel, fabric), to DNS, and to the targets of the
// services it hosts. This package turns those into one normalised, deduplicated, sorted list of
// rules that every platform driver renders (security group, firewall, NSG, nftables) and that the
// ztna_egress_rules data source shows. There are no ingress rules in this model: a router host
// accepts no inbound connections at all.
package egress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Protocol is a transport protocol a rule allows.
type Protocol string

// The protocols a rule can allow.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// ParseProtocol accepts "tcp" or "udp" (any case).
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToLower(strings.TrimSpace(s))); p {
	case TCP, UDP:
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q: use \"tcp\" or \"udp\"", s)
}

// ControllerPorts are the production controller ports of the product brief: 80 (fabric), 443
// (edge API: enrolment, sessions) and 6262 (control channel), each over TCP and UDP.
var ControllerPorts = []uint16{80, 443, 6262}

// DNSPort is the port rules for DNS resolvers allow, over TCP and UDP (TCP for large answers).
const DNSPort = 53

// NTPPort is the port rules for time servers allow, over UDP only (NTP has no TCP transport).
const NTPPort = 123

// PortRange is an inclusive range of ports; a single port has From == To.
type PortRange struct {
	From uint16 `json:"from"`
	To   uint16 `json:"to"`
}

// Port is the range holding the single port p.
func Port(p uint16) PortRange { return PortRange{From: p, To: p} }

// ParsePortRange accepts "443" or "8000-8100".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	from, err := parsePort(lo)
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	to := from
	if isRange {
		if to, err = parsePort(hi); err != nil {
			return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
		}
	}
	r := PortRange{From: from, To: to}
	return r, r.validate()
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port: use a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

func (r PortRange) validate() error {
	if r.From == 0 || r.To == 0 {
		return fmt.Errorf("port 0 is not allowed: use ports from 1 to 65535")
	}
	if r.From > r.To {
		return fmt.Errorf("port range %d-%d is reversed: write it as %d-%d", r.From, r.To, r.To, r.From)
	}
	return nil
}

// String renders "443" or "8000-8100".
func (r PortRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(int(r.From))
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// Rule allows outbound connections to Destination on Ports over Protocol.
type Rule struct {
	// Destination is, after normalisation, either a CIDR prefix ("10.0.0.0/8", "192.0.2.7/32",
	// "2001:db8::1/128") or a lower-case DNS name without a trailing dot.
	Destination string    `json:"destination"`
	Protocol    Protocol  `json:"protocol"`
	Ports       PortRange `json:"ports"`
}

// String renders "tcp 10.0.0.0/8:5432" style, for messages and tests.
func (r Rule) String() string {
	return fmt.Sprintf("%s %s:%s", r.Protocol, r.Destination, r.Ports)
}

// Prefix returns the address range of a rule whose destination is an address or CIDR; ok is false
// for a DNS name destination.
func (r Rule) Prefix() (p netip.Prefix, ok bool) {
	p, err := netip.ParsePrefix(r.Destination)
	return p, err == nil
}

// FirewallCIDR is the destination a cloud firewall renders for this rule. Security groups,
// VPC firewall rules and NSGs match addresses, not names, and a name's addresses change without
// notice, so a DNS-name destination is rendered as any IPv4 address on the rule's exact
// protocol and ports: the port restriction still holds, and the router itself dials only the
// targets the controller assigned to it. Pin addresses by declaring CIDRs instead of names.
func (r Rule) FirewallCIDR() string {
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return "0.0.0.0/0"
}

// ControllerEndpoint is a controller host a router dials.
type ControllerEndpoint struct {
	// Host is a DNS name or IP address.
	Host string `json:"host"`
	// Ports defaults to ControllerPorts; a dev controller listens on other ports.
	Ports []uint16 `json:"ports,omitempty"`
}

// ServiceTarget is the target of a service the router hosts.
type ServiceTarget struct {
	// Address is a DNS name, an IP address or a CIDR prefix.
	Address string      `json:"address"`
	Ports   []PortRange `json:"ports"`
	// Protocols defaults to TCP.
	Protocols []Protocol `json:"protocols,omitempty"`
}

// Input is everything a router host dials.
type Input struct {
	Controllers []ControllerEndpoint
	// DNSServers are the resolvers the router uses: an IP address (port 53) or IP:port
	// ("127.0.0.1:5353", "[::1]:53"), each over TCP and UDP. Cloud resolvers at link-local
	// addresses are not filtered by cloud firewalls and need no rule there.
	DNSServers []string
	// NTPServers are the time servers the router's timesyncd uses (the image's ntp_servers): a
	// DNS name or IP address, each allowed UDP 123. Certificates are short-lived, so a host that
	// cannot reach its time server drifts until its certificates are refused.
	NTPServers []string
	Services   []ServiceTarget
	// Extra are declared additional rules (for example a proxy).
	Extra []Rule
}

// Compute returns the normalised allowlist for in. Controllers get TCP and UDP on each of their
// ports (per the product brief); an input with no controller is an error, because such a router
// could never enrol.
func Compute(in Input) ([]Rule, error) {
	if len(in.Controllers) == 0 {
		return nil, errors.New("no controller endpoint: a router must reach its controller, add at least one")
	}
	var rules []Rule
	for _, c := range in.Controllers {
		ports := c.Ports
		if len(ports) == 0 {
			ports = ControllerPorts
		}
		for _, p := range ports {
			for _, proto := range []Protocol{TCP, UDP} {
				rules = append(rules, Rule{Destination: c.Host, Protocol: proto, Ports: Port(p)})
			}
		}
	}
	for _, d := range in.DNSServers {
		addr, err := ParseDNSServer(d)
		if err != nil {
			return nil, err
		}
		for _, proto := range []Protocol{TCP, UDP} {
			rules = append(rules, Rule{Destination: addr.Addr().String(), Protocol: proto, Ports: Port(addr.Port())})
		}
	}
	for _, n := range in.NTPServers {
		if err := ValidateNTPServer(n); err != nil {
			return nil, err
		}
		rules = append(rules, Rule{Destination: n, Protocol: UDP, Ports: Port(NTPPort)})
	}
	for _, s := range in.Services {
		if len(s.Ports) == 0 {
			return nil, fmt.Errorf("service target %q has no ports: declare the port(s) it listens on", s.Address)
		}
		protos := s.Protocols
		if len(protos) == 0 {
			protos = []Protocol{TCP}
		}
		for _, proto := range protos {
			for _, pr := range s.Ports {
				rules = append(rules, Rule{Destination: s.Address, Protocol: proto, Ports: pr})
			}
		}
	}
	rules = append(rules, in.Extra...)
	return Normalize(rules)
}

// Normalize validates rules, canonicalises destinations (IP → /32 or /128, masked CIDR,
// lower-case name), merges overlapping or adjacent port ranges of the same destination and
// protocol, and sorts: addresses before names, then by destination, protocol and port.
func Normalize(rules []Rule) ([]Rule, error) {
	type key struct {
		dest  string
		proto Protocol
	}
	groups := map[key][]PortRange{}
	for _, r := range rules {
		dest, err := NormalizeDestination(r.Destination)
		if err != nil {
			return nil, fmt.Errorf("egress rule %s: %w", r, err)
		}
		proto, err := ParseProtocol(string(r.Protocol))
		if err != nil {
			return nil, fmt.Errorf("egress rule %s: %w", r, err)
		}
		if err := r.Ports.validate(); err != nil {
			return nil, fmt.Errorf("egress rule %s: %w", r, err)
		}
		k := key{dest, proto}
		groups[k] = append(groups[k], r.Ports)
	}
	out := make([]Rule, 0, len(rules))
	for k, ranges := range groups {
		for _, pr := range mergeRanges(ranges) {
			out = append(out, Rule{Destination: k.dest, Protocol: k.proto, Ports: pr})
		}
	}
	slices.SortFunc(out, compareRules)
	return out, nil
}

func mergeRanges(rs []PortRange) []PortRange {
	slices.SortFunc(rs, func(a, b PortRange) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	out := []PortRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if int(r.From) <= int(last.To)+1 {
			last.To = max(last.To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

func compareRules(a, b Rule) int {
	pa, aIsAddr := a.Prefix()
	pb, bIsAddr := b.Prefix()
	var byDest int
	switch {
	case aIsAddr && bIsAddr:
		byDest = cmp.Or(pa.Addr().Compare(pb.Addr()), cmp.Compare(pa.Bits(), pb.Bits()))
	case aIsAddr:
		byDest = -1
	case bIsAddr:
		byDest = 1
	default:
		byDest = strings.Compare(a.Destination, b.Destination)
	}
	return cmp.Or(byDest,
		strings.Compare(string(a.Protocol), string(b.Protocol)),
		cmp.Compare(a.Ports.From, b.Ports.From))
}

// ParseDNSServer accepts "IP" (port 53) or "IP:port" / "[IPv6]:port".
func ParseDNSServer(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), DNSPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("DNS server %q: use an IP address or IP:port (a resolver cannot be found by name)", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// ValidateNTPServer checks one NTP server: a host name or an IP address, not a prefix.
func ValidateNTPServer(s string) error {
	if strings.Contains(s, "/") {
		return fmt.Errorf("NTP server %q: use a host name or IP address, not a CIDR prefix", s)
	}
	_, err := NormalizeDestination(s)
	return err
}

// NormalizeDestination canonicalises an IP address, CIDR prefix or DNS name.
func NormalizeDestination(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty destination: use a DNS name, an IP address or a CIDR prefix")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		if a.Zone() != "" {
			return "", fmt.Errorf("destination %q has an IPv6 zone: drop the %%zone part", s)
		}
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("destination %q is not a valid CIDR prefix (like 10.0.0.0/8)", s)
		}
		if m := p.Masked(); m != p {
			return "", fmt.Errorf("destination %q has host bits set: use %s", s, m)
		}
		return p.String(), nil
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if last := name[strings.LastIndex(name, ".")+1:]; strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("destination %q is neither a valid IP address nor a DNS name", s)
	}
	if err := validateName(name); err != nil {
		return "", fmt.Errorf("destination %q: %w", s, err)
	}
	return name, nil
}

// validateName checks DNS host name syntax (RFC 1123 labels; underscores allowed because
// internal zones use them).
func validateName(name string) error {
	if len(name) > 253 {
		return errors.New("DNS name longer than 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("not a DNS name, IP address or CIDR prefix: each name label must be 1-63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("DNS label %q must not start or end with '-'", label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("not a DNS name, IP address or CIDR prefix: %q contains %q", label, c)
			}
		}
	}
	return nil
}

// Resolver looks up the addresses of a DNS name; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolveNames replaces every DNS-name destination with one rule per address the name resolves
// to now, for enforcement points that match addresses only and live as long as the lookup is
// fresh (the local namespace firewall). The result is normalised.
func ResolveNames(ctx context.Context, r Resolver, rules []Rule) ([]Rule, error) {
	out := make([]Rule, 0, len(rules))
	for _, rule := range rules {
		if _, isAddr := rule.Prefix(); isAddr {
			out = append(out, rule)
			continue
		}
		addrs, err := r.LookupNetIP(ctx, "ip", rule.Destination)
		if err != nil {
			return nil, fmt.Errorf("resolve egress destination %q: %w", rule.Destination, err)
		}
		for _, a := range addrs {
			out = append(out, Rule{Destination: a.Unmap().String(), Protocol: rule.Protocol, Ports: rule.Ports})
		}
	}
	return Normalize(out)
}
