package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
)

func serveCommand() *cobra.Command {
	var dnsAddr, httpAddr, name, answer, ready string
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Run the demo DNS server and HTTP service (up runs this inside the namespace)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ip, err := netip.ParseAddr(answer)
			if err != nil || !ip.Is4() {
				return fmt.Errorf("--answer %q: use an IPv4 address", answer)
			}
			return serve(cmd.Context(), newLogger(cmd.ErrOrStderr()), dnsAddr, httpAddr, name, ip, ready)
		},
	}
	cmd.Flags().StringVar(&dnsAddr, "dns", "127.0.0.1:53", "DNS listen address (UDP and TCP)")
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:80", "HTTP listen address")
	cmd.Flags().StringVar(&name, "name", defaultHost, "the one name the DNS server answers")
	cmd.Flags().StringVar(&answer, "answer", "127.0.0.1", "the IPv4 address the name resolves to")
	cmd.Flags().StringVar(&ready, "ready-file", "", "file created once every listener is up")
	return cmd
}

// serve runs both servers until ctx ends.
func serve(ctx context.Context, log *slog.Logger, dnsAddr, httpAddr, name string, answer netip.Addr, ready string) error {
	zone := dnsZone{name: dns.Fqdn(strings.ToLower(name)), addr: answer}
	udp, err := net.ListenPacket("udp", dnsAddr)
	if err != nil {
		return fmt.Errorf("DNS: %w", err)
	}
	tcp, err := net.Listen("tcp", dnsAddr)
	if err != nil {
		return fmt.Errorf("DNS: %w", err)
	}
	web, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	servers := []*dns.Server{{PacketConn: udp, Handler: zone}, {Listener: tcp, Handler: zone}}
	hs := &http.Server{Handler: serviceHandler(log, name), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 3)
	for _, s := range servers {
		go func() { errc <- s.ActivateAndServe() }()
	}
	go func() { errc <- hs.Serve(web) }()
	if ready != "" {
		if err := os.WriteFile(ready, []byte("ok\n"), 0o600); err != nil {
			return err
		}
	}
	log.Info("demo servers up", "dns", dnsAddr, "http", httpAddr, "name", name, "answer", answer)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		s.Shutdown()
	}
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(shut)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// dnsZone is the customer DNS: it knows one name. Other names in its parent domain do not
// exist (NXDOMAIN); names elsewhere are refused (it is no open resolver).
type dnsZone struct {
	name string
	addr netip.Addr
}

func (z dnsZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	qname := strings.ToLower(q.Name)
	switch {
	case qname == z.name && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
			A:   z.addr.AsSlice(),
		})
	case qname == z.name:
		// The name exists without records of this type (AAAA): NOERROR, no answer.
	case dns.IsSubDomain(parent(z.name), qname):
		m.Rcode = dns.RcodeNameError
	default:
		m.Rcode = dns.RcodeRefused
	}
	w.WriteMsg(m)
}

// parent is the domain that contains name ("customer.internal." for "app.customer.internal.").
func parent(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
		return name[i+1:]
	}
	return "."
}

// serviceHandler is the private service. It says who it is and where the connection came
// from; behind the overlay that is the hosting router's side of the network.
func serviceHandler(log *slog.Logger, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Info("request", "remote", r.RemoteAddr, "host", r.Host, "path", r.URL.Path)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from %s, a private service that only the routers' network can reach.\n", name)
		fmt.Fprintf(w, "You asked for http://%s%s; the connection came from %s.\n", r.Host, r.URL.Path, r.RemoteAddr)
	})
}
