package tunnel

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/router/dnstest"
)

func TestPool6AddressesAreStableAndInsideThePrefix(t *testing.T) {
	prefix := netip.MustParsePrefix(ExamplePool6)
	p1, err := newPool6(prefix)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := newPool6(prefix)
	a1, _ := p1.assign("db.example.")
	p2.assign("api.example.")
	a2, _ := p2.assign("db.example.")
	if a1 != a2 || !prefix.Contains(a1) || !a1.Is6() {
		t.Fatalf("db.example got %v and %v, want one address inside %s", a1, a2, prefix)
	}
	// The IPv4 pool keeps its addresses: the same name, the same address as before IPv6 pools
	// (1 + FNV-1a-32("db.example.") mod 65534 into 127.77.0.0/16).
	p4, _ := newPool(DefaultPool)
	if a, _ := p4.assign("db.example."); a.String() != "127.77.53.60" {
		t.Fatalf("IPv4 address of db.example. changed to %v", a)
	}
	// A /126 has two usable addresses (not the first nor the last); a third name finds it full.
	small, err := newPool6(netip.MustParsePrefix("fd7a:7a7a::/126"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for _, n := range []string{"a.", "b."} {
		a, err := small.assign(n)
		if err != nil || seen[a] || a.String() == "fd7a:7a7a::" || a.String() == "fd7a:7a7a::3" {
			t.Fatalf("assign %s: %v %v", n, a, err)
		}
		seen[a] = true
	}
	if _, err := small.assign("c."); err == nil || !strings.Contains(err.Error(), "--address-pool6") {
		t.Fatalf("third name in a /126: %v", err)
	}
	// A prefix wider than /64 uses its first 2^64 addresses.
	wide, err := newPool6(netip.MustParsePrefix("fd7a:7a7a::/48"))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := wide.assign("db.example."); err != nil || !netip.MustParsePrefix("fd7a:7a7a::/64").Contains(a) {
		t.Fatalf("/48 pool: %v %v", a, err)
	}
}

func TestPool6RefusesPrefixesThatCannotBeLocalAddresses(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"127.0.0.0/8", "must be an IPv6 prefix"},
		{"::ffff:127.0.0.0/104", "must be an IPv6 prefix"},
		{"::1/128", "unique-local"},
		{"fe80::/64", "unique-local"},
		{"ff02::/64", "unique-local"},
		{"fd7a:7a7a::/127", "too small"},
	} {
		if _, err := newPool6(netip.MustParsePrefix(tc.prefix)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.prefix, err, tc.want)
		}
	}
	if _, err := newPool(netip.MustParsePrefix(ExamplePool6)); err == nil || !strings.Contains(err.Error(), "--address-pool6") {
		t.Errorf("IPv6 prefix as the IPv4 pool: %v, want a pointer to --address-pool6", err)
	}
}

// AAAA (and ANY) queries for a name with an IPv6 address answer it; a name without one (no
// IPv6 pool) answers AAAA with an empty NOERROR, never the upstream's address.
func TestAAAAAnswers(t *testing.T) {
	v4, v6 := netip.MustParseAddr("127.77.1.2"), netip.MustParseAddr("fd7a:7a7a::1:2")
	tun := &Tunnel{}
	tun.names.store(map[string]localAddrs{
		"dual.example.":   {v4: v4, v6: v6},
		"v4only.example.": {v4: netip.MustParseAddr("127.77.1.3")},
	})
	ask := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r := tun.answer(m)
		if r == nil {
			t.Fatalf("%s %s: not answered locally", name, dns.TypeToString[qtype])
		}
		return r
	}
	if r := ask("Dual.Example.", dns.TypeAAAA); len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != v6.String() || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("AAAA: %v", r)
	}
	if r := ask("dual.example.", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != v4.String() {
		t.Fatalf("A of a dual-stack name: %v", r.Answer)
	}
	if r := ask("dual.example.", dns.TypeANY); len(r.Answer) != 2 {
		t.Fatalf("ANY: %v, want the A and the AAAA", r.Answer)
	}
	if r := ask("v4only.example.", dns.TypeAAAA); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("AAAA without an IPv6 address: %v", r)
	}
	rev, _ := dns.ReverseAddr(v6.String())
	if r := ask(rev, dns.TypePTR); len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "dual.example." {
		t.Fatalf("PTR %s: %v", rev, r.Answer)
	}
	other, _ := dns.ReverseAddr("fd7a:7a7a::9")
	m := new(dns.Msg)
	m.SetQuestion(other, dns.TypePTR)
	if r := tun.answer(m); r != nil {
		t.Fatalf("PTR of an address not ours answered locally: %v", r)
	}
}

func TestPtrAddrParsesIPv6ReverseNames(t *testing.T) {
	for _, s := range []string{"fd7a:7a7a::1:2", "2001:db8:ffff:1::abcd", "::1"} {
		rev, _ := dns.ReverseAddr(s)
		if a, err := ptrAddr(rev); err != nil || a != netip.MustParseAddr(s) {
			t.Errorf("%s (%s): %v %v", s, rev, a, err)
		}
	}
	for _, bad := range []string{"1.2.ip6.arpa.", strings.Repeat("g.", 32) + "ip6.arpa.", strings.Repeat("10.", 16) + "ip6.arpa."} {
		if a, err := ptrAddr(bad); err == nil {
			t.Errorf("%s parsed as %v", bad, a)
		}
	}
}

// A prefix that is not routed to loopback would give programs AAAA answers nothing can reach:
// Start refuses it and names the command that makes it local.
func TestStartRefusesAnIPv6PoolThatIsNotLocal(t *testing.T) {
	_, err := Start(context.Background(), Config{
		Overlay: &fakeOverlay{}, Upstream: dnstest.Start(t, nil).Addr, DNSListen: "127.0.0.1:0",
		Pool6: netip.MustParsePrefix("fd7a:7a7a:" + "dead::/64"),
	})
	if err == nil || !strings.Contains(err.Error(), "ip -6 route add local fd7a:7a7a:dead::/64 dev lo") {
		t.Fatalf("unrouted IPv6 pool: %v", err)
	}
}
