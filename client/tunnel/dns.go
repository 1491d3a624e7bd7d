package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// answerTTL is the TTL of local answers, in seconds: short, so that a program that caches
// answers stops using a removed service's address about as soon as the tunnel stops serving it.
const answerTTL = 1

// names is an immutable snapshot of the names the tunnel answers, swapped atomically as a whole
// on every change so queries never wait for a refresh.
type names struct {
	byName map[string]localAddrs // canonical (lower-case, trailing dot) name → local addresses
	byAddr map[netip.Addr]string // for PTR queries
}

// localAddrs are a name's local addresses that are listened on; either may be invalid.
type localAddrs struct{ v4, v6 netip.Addr }

type nameTable struct {
	p atomic.Pointer[names]
	// known: a service list was read (or loaded from the saved one). Until then the tunnel
	// cannot tell service names from others, so it answers SERVFAIL rather than send service
	// names upstream, and resolvers fall back where they are configured to.
	known atomic.Bool
}

func (t *nameTable) markListed()  { t.known.Store(true) }
func (t *nameTable) listed() bool { return t.known.Load() }

func (t *nameTable) load() *names {
	if n := t.p.Load(); n != nil {
		return n
	}
	return &names{}
}

func (t *nameTable) store(byName map[string]localAddrs) {
	n := &names{byName: byName, byAddr: make(map[netip.Addr]string, len(byName))}
	for name, la := range byName {
		for _, a := range []netip.Addr{la.v4, la.v6} {
			if a.IsValid() {
				n.byAddr[a] = name
			}
		}
	}
	t.p.Store(n)
}

// canonical returns the DNS form of a host name: lower case with a trailing dot.
func canonical(host string) string { return strings.ToLower(dns.Fqdn(host)) }

// ServeDNS answers queries for the identity's service names from the table and forwards every
// other query, unchanged, to the upstream resolver. Names of services the identity may not use
// are never in the table, so they get whatever the upstream says about them, exactly like any
// name the overlay does not know: the tunnel does not tell which names exist in the overlay.
func (t *Tunnel) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if !t.names.listed() {
		t.metrics.dnsQueries.WithLabelValues("servfail_no_list").Inc()
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return
	}
	if len(r.Question) == 1 && r.Question[0].Qclass == dns.ClassINET && !r.Response && r.Opcode == dns.OpcodeQuery {
		if m := t.answer(r); m != nil {
			t.metrics.dnsQueries.WithLabelValues("local").Inc()
			w.WriteMsg(m)
			return
		}
	}
	t.forward(w, r)
}

// answer returns the local reply to r, or nil when the name is not one of the tunnel's.
func (t *Tunnel) answer(r *dns.Msg) *dns.Msg {
	q := r.Question[0]
	tab := t.names.load()
	name := strings.ToLower(q.Name)
	var rrs []dns.RR
	if la, ok := tab.byName[name]; ok {
		if la.v4.IsValid() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY) {
			rrs = append(rrs, &dns.A{Hdr: header(q, dns.TypeA), A: la.v4.AsSlice()})
		}
		if la.v6.IsValid() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) {
			rrs = append(rrs, &dns.AAAA{Hdr: header(q, dns.TypeAAAA), AAAA: la.v6.AsSlice()})
		}
		// Other types, and AAAA without an IPv6 pool, get an empty answer: the name is ours,
		// and an upstream address would send the program around the overlay.
	} else if q.Qtype == dns.TypePTR {
		a, err := ptrAddr(name)
		if err != nil {
			return nil
		}
		host, ok := tab.byAddr[a]
		if !ok {
			return nil
		}
		rrs = []dns.RR{&dns.PTR{Hdr: header(q, dns.TypePTR), Ptr: host}}
	} else {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Answer = rrs
	return m
}

func header(q dns.Question, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: q.Name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: answerTTL}
}

// ptrAddr parses a reverse name: d.c.b.a.in-addr.arpa. or the 32 nibbles of ip6.arpa.
func ptrAddr(name string) (netip.Addr, error) {
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		nibbles := strings.Split(rest, ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, errors.New("not a full IPv6 reverse name")
		}
		var b [16]byte
		for i, n := range nibbles {
			v, err := strconv.ParseUint(n, 16, 4)
			if err != nil || len(n) != 1 {
				return netip.Addr{}, errors.New("not an IPv6 reverse name")
			}
			// nibbles[0] is the lowest nibble of the address.
			b[15-i/2] |= byte(v) << (4 * (i % 2))
		}
		return netip.AddrFrom16(b), nil
	}
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa.")
	if !ok {
		return netip.Addr{}, errors.New("not a reverse name")
	}
	labels := strings.Split(rest, ".")
	if len(labels) != 4 {
		return netip.Addr{}, errors.New("not a full IPv4 reverse name")
	}
	return netip.ParseAddr(labels[3] + "." + labels[2] + "." + labels[1] + "." + labels[0])
}

// forward sends r to the upstream resolver over the transport it arrived on and relays the
// answer; when the upstream fails, the client gets SERVFAIL rather than silence.
func (t *Tunnel) forward(w dns.ResponseWriter, r *dns.Msg) {
	network := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: t.cfg.UpstreamTimeout}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.UpstreamTimeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, r, t.cfg.Upstream)
	if err != nil {
		t.metrics.dnsQueries.WithLabelValues("failed").Inc()
		t.log.Debug("upstream DNS failed", "upstream", t.cfg.Upstream, "question", questionString(r), "err", err)
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		w.WriteMsg(m)
		return
	}
	t.metrics.dnsQueries.WithLabelValues("forwarded").Inc()
	w.WriteMsg(resp)
}

func questionString(r *dns.Msg) string {
	if len(r.Question) == 0 {
		return ""
	}
	q := r.Question[0]
	return q.Name + " " + dns.TypeToString[q.Qtype]
}

// SystemUpstream returns the first nameserver of a resolv.conf file (normally /etc/resolv.conf)
// as host:port.
func SystemUpstream(resolvConf string) (string, error) {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return "", fmt.Errorf("read the system resolver from %s: %w (pass the upstream resolver explicitly)", resolvConf, err)
	}
	if len(cc.Servers) == 0 {
		return "", fmt.Errorf("%s names no nameserver (pass the upstream resolver explicitly)", resolvConf)
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// validHostPort checks a "host:port" setting whose port is at least minPort, naming the
// setting in the error.
func validHostPort(what, v string, minPort int) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("%s %q must be host:port, e.g. 127.0.0.1:5353", what, v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < minPort || p > 65535 {
		return fmt.Errorf("%s %q: port must be %d-65535", what, v, minPort)
	}
	return nil
}
