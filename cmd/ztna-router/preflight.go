package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/regkey"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/preflight"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/router/targets"
)

// errChecksFailed is returned (after printing the report) when any check fails.
var errChecksFailed = errors.New("preflight checks failed; fix the items listed above")

func preflightCommand() *cobra.Command {
	var (
		key, keyFile, stateDir, dnsServer string
		edge, ctl, fabric, services       []string
		jsonOut                           bool
		timeout, maxSkew                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check that this host can run a router: DNS, firewall, TLS interception, clock, services",
		Long: `preflight checks, from this host, everything the router needs from its network:

  - the controller's names resolve (host resolver, or --dns-server)
  - its edge, control and fabric ports accept TCP connections (outbound firewall rules)
  - TLS on each of them presents the network's CA (no proxy or DPI device intercepting)
  - this host's clock agrees with the controller's (short-lived certificates)
  - every assigned service's name resolves and its port accepts connections

Before enrolment pass the registration key (--key or --key-file); afterwards the state
directory supplies the endpoints the router dials (the control endpoints and hubs the
controller listed last, saved in controllers.json and hubs.json, then the enrolled ones;
each result says which), the CA and the last service assignment. --service adds
targets to check. It prints a table (or --json) and exits non-zero when anything fails,
naming the fix.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := preflightConfig(cmd, key, keyFile, stateDir, dnsServer)
			if err != nil {
				return err
			}
			for _, o := range []struct {
				plane string
				addrs []string
			}{{preflight.PlaneEdge, edge}, {preflight.PlaneControl, ctl}, {preflight.PlaneFabric, fabric}} {
				if len(o.addrs) > 0 {
					cfg.Endpoints = replacePlane(cfg.Endpoints, o.plane, o.addrs)
				}
			}
			for _, s := range services {
				svc, err := parseService(s)
				if err != nil {
					return err
				}
				cfg.Services = append(cfg.Services, svc)
			}
			cfg.Timeout, cfg.MaxClockSkew = timeout, maxSkew
			rep := preflight.Run(cmd.Context(), cfg)
			out := cmd.OutOrStdout()
			if jsonOut {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteTable(out)
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return errChecksFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "registration key (before enrolment)")
	f.StringVar(&keyFile, "key-file", "", "file holding the registration key (before enrolment)")
	stateDirFlag(cmd, &stateDir)
	f.StringVar(&dnsServer, "dns-server", "", "DNS server (host:port) to resolve names with; default: the saved setting or the host's resolver")
	f.StringSliceVar(&edge, "edge", nil, "check this edge API address (host:port) instead of the configured ones")
	f.StringSliceVar(&ctl, "control", nil, "check this control channel address (host:port) instead of the configured ones")
	f.StringSliceVar(&fabric, "fabric", nil, "check this fabric address (host:port) instead of the configured ones")
	f.StringSliceVar(&services, "service", nil, "also check this service target (host:port)")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "timeout of each check")
	f.DurationVar(&maxSkew, "max-clock-skew", 30*time.Second, "largest acceptable difference to the controller's clock")
	cmd.MarkFlagsMutuallyExclusive("key", "key-file")
	return cmd
}

// preflightConfig takes endpoints and the CA from the key, or else from the state directory.
func preflightConfig(cmd *cobra.Command, key, keyFile, stateDir, dnsServer string) (preflight.Config, error) {
	var cfg preflight.Config
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return cfg, err
		}
		key = string(b)
	}
	if key != "" {
		k, err := regkey.Parse(key)
		if err != nil {
			return cfg, err
		}
		cfg.CAFingerprint = k.CA
		if cfg.Endpoints, err = endpoints(k.Edge, k.Control, k.Fabric); err != nil {
			return cfg, err
		}
	} else {
		id, err := identity.Load(stateDir)
		if errors.Is(err, identity.ErrNotEnrolled) {
			return cfg, fmt.Errorf("nothing to check against: pass the registration key with --key or --key-file, or the state directory of an enrolled router with --state-dir (%w)", err)
		}
		if err != nil {
			return cfg, err
		}
		cfg.CAFingerprint = id.Config.CAFingerprint
		if cfg.Endpoints, err = endpoints(id.Config.Edge, nil, nil); err != nil {
			return cfg, err
		}
		for i := range cfg.Endpoints {
			cfg.Endpoints[i].Source = preflight.SourceEnrolled
		}
		// Check what the router dials: the controller's last lists come before the enrolment's.
		l := loadLearned(stateDir, id.Config)
		for _, e := range l.errors {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: the router ignores a saved list: %s\n", e)
		}
		cfg.Endpoints = append(cfg.Endpoints, l.dialled(id.Config)...)
		if cfg.Services, _, err = targets.Load(stateDir); err != nil {
			return cfg, err
		}
		if !cmd.Flags().Changed("dns-server") {
			s, err := daemon.LoadSettings(stateDir)
			if err != nil {
				return cfg, err
			}
			dnsServer = s.DNSServer
		}
	}
	res, err := resolve.New(dnsServer)
	if err != nil {
		return cfg, err
	}
	cfg.Resolver, cfg.DNSServer = res, dnsServer
	return cfg, nil
}

// endpoints turns edge URLs and control/fabric host:port lists into preflight endpoints.
func endpoints(edge, ctl, fabric []string) ([]preflight.Endpoint, error) {
	var eps []preflight.Endpoint
	for _, e := range edge {
		u, err := url.Parse(e)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("edge address %q is not a URL", e)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		eps = append(eps, preflight.Endpoint{Plane: preflight.PlaneEdge, Addr: host})
	}
	for _, a := range ctl {
		eps = append(eps, preflight.Endpoint{Plane: preflight.PlaneControl, Addr: a})
	}
	for _, a := range fabric {
		eps = append(eps, preflight.Endpoint{Plane: preflight.PlaneFabric, Addr: a})
	}
	return eps, nil
}

// replacePlane swaps one plane's endpoints for addrs, keeping the planes in their order.
func replacePlane(eps []preflight.Endpoint, plane string, addrs []string) []preflight.Endpoint {
	var out []preflight.Endpoint
	replaced := false
	for _, ep := range eps {
		if ep.Plane != plane {
			out = append(out, ep)
			continue
		}
		if !replaced {
			for _, a := range addrs {
				out = append(out, preflight.Endpoint{Plane: plane, Addr: a})
			}
			replaced = true
		}
	}
	if !replaced {
		for _, a := range addrs {
			out = append(out, preflight.Endpoint{Plane: plane, Addr: a})
		}
	}
	return out
}

func parseService(s string) (control.Service, error) {
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || api.ValidatePort(p) != nil || api.ValidateAddress(host) != nil {
		return control.Service{}, fmt.Errorf("--service %q: give a service target as fqdn:port, e.g. prod-db.customerdomain.me:5432", s)
	}
	return control.Service{Name: strings.ToLower(host), Address: host, Port: p, Protocol: api.ProtocolTCP}, nil
}
