// Package dnstest starts a real DNS server (miekg/dns) on loopback for tests: it plays the
// customer's DNS, answering A records (AAAA for an IPv6 address) for the names it is given and
// NXDOMAIN for any other name.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	Addr string // host:port, for --dns-server

	mu      sync.Mutex
	records map[string]string
}

// Start serves records (name → IPv4 or IPv6 address) on a loopback UDP port until the test ends.
func Start(t testing.TB, records map[string]string) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string]string{}}
	for name, ip := range records {
		s.Set(name, ip)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return s
}

// Set adds or changes a record while the server runs.
func (s *Server) Set(name, ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[strings.ToLower(dns.Fqdn(name))] = ip
}

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) == 1 {
		q := r.Question[0]
		s.mu.Lock()
		ip, known := s.records[strings.ToLower(q.Name)]
		s.mu.Unlock()
		switch {
		case !known:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA && !strings.Contains(ip, ":"):
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   net.ParseIP(ip),
			})
		case q.Qtype == dns.TypeAAAA && strings.Contains(ip, ":"):
			m.Answer = append(m.Answer, &dns.AAAA{
				Hdr:  dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 1},
				AAAA: net.ParseIP(ip),
			})
		}
	}
	w.WriteMsg(m)
}
