package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ztna/ztna/client/tunnel"
	"github.com/ztna/ztna/internal/logging"
)

// resolvConf is where the default upstream resolver is read from.
const resolvConf = "/etc/resolv.conf"

func tunnelCommand() *cobra.Command {
	var (
		identity, dnsListen, upstream, pool, pool6, metricsListen string
		dnsmasqServers, dnsmasqPID                                string
		refresh, drain                                            time.Duration
		maxPorts                                                  int
		logs                                                      logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "tunnel",
		Short: "Serve DNS and local listeners that carry programs' connections over the overlay",
		Long: `tunnel lets unmodified programs reach the identity's services by name. It runs a DNS server
(--dns-listen, UDP and TCP) that answers A queries for the identity's service names with local
addresses — one stable address per name from --address-pool — and listens on each such address
on every port the service exposes (its port and port ranges). Each accepted connection is
carried over the overlay, end-to-end encrypted, to a router hosting the service. Every other
name is forwarded to --upstream (by default the first nameserver in /etc/resolv.conf).

IPv6 (off by default): with --address-pool6 (e.g. --address-pool6 fd7a:7a7a::/64) every name
also gets a stable IPv6 address from that prefix, with listeners on the same ports, and AAAA
queries are answered with it, so 'curl -6' and IPv6-only programs work. Without it AAAA queries
for service names get an empty answer (never the upstream's, which would bypass the overlay).
Linux has no local IPv6 prefix like 127/8: route the prefix to loopback first, as root,
  ip -6 route add local fd7a:7a7a::/64 dev lo
(in a systemd unit: ExecStartPre=+ip -6 route replace local <prefix> dev lo). The tunnel checks
at start that the prefix is local, and refuses to start, naming that command, when it is not.

The hub pushes the service list whenever it changes (it is re-read every --refresh only while
that push is down, or from a hub too old to push): services and policies that are added appear
within milliseconds of reaching the hub, and ones that are removed or no longer granted stop
resolving (their queries are forwarded upstream like any other name, so the tunnel reveals
nothing about services the identity may not use) and their listeners close. Connections already established are not cut by the tunnel.

The identity's certificate is renewed at about two thirds of its life and the identity file
rewritten (atomically, 0600); the link to the hub and open connections carry on across renewals.

Point programs at the DNS server, e.g. a resolv.conf 'nameserver' line (which needs port 53:
--dns-listen 127.0.0.53:53 as root or with CAP_NET_BIND_SERVICE), a systemd-resolved or dnsmasq
forwarding rule for the service domains, or the program's own resolver setting.

Split DNS with dnsmasq: with --dnsmasq-servers-file the tunnel keeps that file (give it to
dnsmasq as --servers-file) holding one 'server=/<name>/<tunnel DNS>' line per service name it
serves, rewritten atomically when the names change, and sends SIGHUP to the dnsmasq named by
--dnsmasq-pid-file so that it re-reads it. dnsmasq then asks the tunnel for the service names
only; the host's other names never depend on the tunnel. On exit the file is emptied (and
dnsmasq signalled): service names then get dnsmasq's normal answer, typically NXDOMAIN.
Give --upstream dnsmasq's own upstream, not dnsmasq: the tunnel forwards it the names below
service names that dnsmasq sends it, which would otherwise come back.

The service list is saved next to the identity (<identity file>.<identity id>.services, 0600). A tunnel started
while the hub cannot be reached serves the saved names and keeps retrying; with nothing saved it
answers every query SERVFAIL until the hub answers, so that resolvers configured with a fallback
use it, and service names never leak upstream.

On SIGTERM or SIGINT the tunnel drains: its listeners close (new connections are refused),
open connections may finish for --drain, and those still open then are reset — the program
sees a connection reset, never a clean end of a stream that did not end.

With --metrics-listen, /metrics (Prometheus, ztna_tunnel_*) and /healthz (200 while the service
list is being read successfully) are served on that address; keep it on loopback.`,
		Example: `  ztna tunnel --identity app.identity --dns-listen 127.0.0.1:5353
  dig @127.0.0.1 -p 5353 prod-db.customerdomain.me   # → 127.77.x.y
  psql -h prod-db.customerdomain.me ...              # once the host resolves through the tunnel`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if dnsmasqPID != "" && dnsmasqServers == "" {
				return errors.New("--dnsmasq-pid-file needs --dnsmasq-servers-file: name the servers-file dnsmasq reads")
			}
			prefix, err := netip.ParsePrefix(pool)
			if err != nil {
				return fmt.Errorf("--address-pool %q must be an IPv4 prefix such as 127.77.0.0/16", pool)
			}
			var prefix6 netip.Prefix
			if pool6 != "" {
				if prefix6, err = netip.ParsePrefix(pool6); err != nil {
					return fmt.Errorf("--address-pool6 %q must be an IPv6 prefix such as %s", pool6, tunnel.ExamplePool6)
				}
			}
			if upstream == "" {
				if upstream, err = tunnel.SystemUpstream(resolvConf); err != nil {
					return fmt.Errorf("%w: pass --upstream host:port", err)
				}
			}
			path, err := identityPath(identity)
			if err != nil {
				return err
			}
			c, id, closeOverlay, err := overlayClient(cmd.Context(), path, log)
			if err != nil {
				return err
			}
			// Named by the identity's id: another identity enrolled into the same file later
			// (enroll --force) never serves this one's names.
			savedList := path + "." + id.File().Config.ID + ".services"
			defer closeOverlay()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{
					Name: "ztna_tunnel_identity_cert_expiry_timestamp_seconds",
					Help: "When the identity's current certificate expires (unix seconds); renewals move it on.",
				}, func() float64 { return float64(id.Certificate().NotAfter.Unix()) }))
			// The tunnel outlives the signal by the drain time: it stops on Drain, not on ctx.
			t, err := tunnel.Start(context.WithoutCancel(cmd.Context()), tunnel.Config{
				Overlay: c, DNSListen: dnsListen, Upstream: upstream, Pool: prefix, Pool6: prefix6,
				Refresh: refresh, MaxPortsPerName: maxPorts, Logger: log, Registerer: reg, SavedList: savedList,
				DnsmasqServersFile: dnsmasqServers, DnsmasqPIDFile: dnsmasqPID,
			})
			if err != nil {
				return err
			}
			defer t.Close()
			if metricsListen != "" {
				stop, err := serveMetrics(metricsListen, reg, t, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			printNames(cmd.OutOrStdout(), t, upstream)
			log.Info("tunnel running", "dns", t.DNSAddr(), "upstream", upstream, "address_pool", prefix.String(), "address_pool6", pool6)
			<-cmd.Context().Done()
			log.Info("tunnel stopping", "drain", drain.String())
			ctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			if n := t.Drain(ctx); n > 0 {
				log.Warn("tunnel stopped; open connections were reset, not closed, so their programs see an error rather than a clean end", "reset", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	identityFlag(cmd, &identity)
	f.StringVar(&dnsListen, "dns-listen", tunnel.DefaultDNSListen, "address of the DNS server (UDP and TCP)")
	f.StringVar(&upstream, "upstream", "", "resolver (host:port) for every name that is not a service (default: first nameserver in "+resolvConf+")")
	f.StringVar(&pool, "address-pool", tunnel.DefaultPool.String(), "IPv4 prefix the local service addresses are taken from")
	f.StringVar(&pool6, "address-pool6", "", "IPv6 prefix (e.g. "+tunnel.ExamplePool6+", routed local on lo) that gives every name an IPv6 address and AAAA answers; off when empty")
	f.DurationVar(&refresh, "refresh", 500*time.Millisecond, "how often the service list is re-read while the hub's push is down")
	f.IntVar(&maxPorts, "max-ports-per-name", 1024, "most ports listened on per service name (large port ranges are cut, with a warning)")
	f.DurationVar(&drain, "drain", 5*time.Second, "on SIGTERM/SIGINT, refuse new connections and let open ones finish for this long, then reset the rest (0: reset at once)")
	f.StringVar(&metricsListen, "metrics-listen", "", "serve /metrics and /healthz on this address (e.g. 127.0.0.1:9263); off when empty")
	f.StringVar(&dnsmasqServers, "dnsmasq-servers-file", "", "keep this dnsmasq --servers-file sending exactly the service names to this tunnel (split DNS); emptied on exit")
	f.StringVar(&dnsmasqPID, "dnsmasq-pid-file", "", "dnsmasq's --pid-file: SIGHUP it after each write of --dnsmasq-servers-file so that it re-reads the file")
	logs.Register(cmd.Flags(), "info")
	return cmd
}

// printNames tells the user where things are, on stdout (logs go to stderr).
func printNames(w io.Writer, t *tunnel.Tunnel, upstream string) {
	st := t.Status()
	fmt.Fprintf(w, "DNS on %s (UDP and TCP), other names forwarded to %s\n", t.DNSAddr(), upstream)
	names := make([]string, 0, len(st.Names))
	for n := range st.Names {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if a6, ok := st.Names6[n]; ok {
			fmt.Fprintf(w, "  %s -> %s, %s\n", n, st.Names[n], a6)
		} else {
			fmt.Fprintf(w, "  %s -> %s\n", n, st.Names[n])
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(w, "  no service names yet (none granted, or none addressed by a DNS name); watching for changes")
	}
}

// serveMetrics serves /metrics and /healthz until the returned stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, t *tunnel.Tunnel, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !t.Healthy() {
			st := t.Status()
			msg := "service list not read recently"
			switch {
			case !st.Listed:
				msg = "no service list yet: the hub has not answered and none is saved; DNS answers SERVFAIL"
			case st.FromSaved:
				msg = "serving the saved service list: the hub has not answered since the tunnel started"
			}
			if st.LastError != nil {
				msg += ": " + st.LastError.Error()
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		log.Warn("metrics and health are served beyond loopback: whoever reaches the address sees the tunnel's activity and errors", "addr", ln.Addr().String())
	}
	log.Info("metrics and health", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
