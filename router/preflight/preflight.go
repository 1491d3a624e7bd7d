// Package preflight is the customer's to-do list as a command: from the host that will run (or
// runs) a router, it checks that the controller's names resolve, that its edge, control and fabric
// ports are reachable, that nothing intercepts TLS on the way, that the clock is right, and that
// every assigned service resolves and accepts connections — and says how to fix what is not.
package preflight

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/health"
)

// Planes of the controller a router talks to.
const (
	PlaneEdge    = "edge"
	PlaneControl = "control"
	PlaneFabric  = "fabric"
)

// Where an endpoint comes from, when a router's state directory supplies it.
const (
	SourceEnrolled = "enrolled" // config.json
	SourceLearned  = "learned"  // the controller's last list (controllers.json, hubs.json)
)

// Endpoint is one controller address a router must reach.
type Endpoint struct {
	Plane  string
	Addr   string // host:port
	Source string // SourceEnrolled, SourceLearned, or "" (a key or a flag)
}

// Config says what to check.
type Config struct {
	Endpoints     []Endpoint
	CAFingerprint string // the pinned network CA
	Services      []control.Service
	Resolver      *net.Resolver
	// DNSServer names the resolver in advice ("" = the host's resolver).
	DNSServer    string
	Timeout      time.Duration // per check; 0 means 5 s
	MaxClockSkew time.Duration // 0 means 30 s
}

// Check names.
const (
	CheckDNS        = "dns"
	CheckTCP        = "tcp"
	CheckTLS        = "tls"
	CheckClock      = "clock"
	CheckServiceDNS = "service-dns"
	CheckServiceTCP = "service-tcp"
)

// Result is one check's outcome. Fix says what to change when OK is false.
type Result struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Source is the checked endpoint's (tcp and tls checks of a router's state directory).
	Source string `json:"source,omitempty"`
}

// Report is every result.
type Report struct {
	OK      bool     `json:"ok"`
	Results []Result `json:"results"`
}

// Failed lists the failed results.
func (r Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if !res.OK {
			out = append(out, res)
		}
	}
	return out
}

// Run performs every check. It never stops at the first failure: the point is a full to-do list.
func Run(ctx context.Context, cfg Config) Report {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = 30 * time.Second
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	p := &run{cfg: cfg, resolved: map[string]bool{}}
	var edgeOK []string
	for _, ep := range dedupe(cfg.Endpoints) {
		if p.endpoint(ctx, ep) && ep.Plane == PlaneEdge {
			edgeOK = append(edgeOK, ep.Addr)
		}
	}
	if len(edgeOK) > 0 {
		p.clock(ctx, edgeOK[0])
	}
	for _, svc := range cfg.Services {
		p.service(ctx, svc)
	}
	rep := Report{OK: true, Results: p.results}
	for _, r := range rep.Results {
		rep.OK = rep.OK && r.OK
	}
	return rep
}

func dedupe(eps []Endpoint) []Endpoint {
	seen := map[Endpoint]bool{}
	var out []Endpoint
	for _, ep := range eps {
		if !seen[ep] {
			seen[ep] = true
			out = append(out, ep)
		}
	}
	return out
}

type run struct {
	cfg      Config
	results  []Result
	resolved map[string]bool // host → resolvable, so each name is checked (and listed) once
}

func (p *run) add(r Result) { p.results = append(p.results, r) }

func (p *run) dnsAdvice(host string) string {
	if p.cfg.DNSServer != "" {
		return fmt.Sprintf("make %s resolvable by the DNS server %s", host, p.cfg.DNSServer)
	}
	return fmt.Sprintf("make %s resolvable by this host's resolver (/etc/resolv.conf), or point the router at the DNS server that knows it with --dns-server host:port", host)
}

// resolve checks a host name once and reports whether it resolves.
func (p *run) resolve(ctx context.Context, check, host string) bool {
	if ok, done := p.resolved[host]; done {
		return ok
	}
	if net.ParseIP(host) != nil {
		p.resolved[host] = true
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	addrs, err := p.cfg.Resolver.LookupHost(ctx, host)
	ok := err == nil
	p.resolved[host] = ok
	if ok {
		p.add(Result{Check: check, Target: host, OK: true, Detail: "resolves to " + strings.Join(addrs, ", ")})
	} else {
		p.add(Result{Check: check, Target: host, Detail: "does not resolve: " + dnsError(err), Fix: p.dnsAdvice(host)})
	}
	return ok
}

func dnsError(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return "no such host"
		}
		if de.IsTimeout {
			return "the DNS server did not answer"
		}
		return de.Err
	}
	return err.Error()
}

// endpoint checks one controller address: name, TCP, then TLS against the pinned CA.
func (p *run) endpoint(ctx context.Context, ep Endpoint) bool {
	add := func(r Result) { r.Source = ep.Source; p.add(r) } // name checks are per host, not per endpoint
	host, _, err := net.SplitHostPort(ep.Addr)
	if err != nil {
		add(Result{Check: CheckTCP, Target: ep.Addr, Detail: "not a host:port address", Fix: "give the " + ep.Plane + " address as host:port"})
		return false
	}
	if !p.resolve(ctx, CheckDNS, host) {
		return false
	}
	target := fmt.Sprintf("%s (%s)", ep.Addr, ep.Plane)
	dctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	d := net.Dialer{Resolver: p.cfg.Resolver}
	conn, err := d.DialContext(dctx, "tcp", ep.Addr)
	if err != nil {
		add(Result{Check: CheckTCP, Target: target, Detail: "unreachable: " + err.Error(),
			Fix: fmt.Sprintf("allow outbound TCP from this host to %s (the controller's %s port) in every firewall, security group and network ACL on the way", ep.Addr, ep.Plane)})
		return false
	}
	add(Result{Check: CheckTCP, Target: target, OK: true, Detail: "reachable"})
	defer conn.Close()

	tlsCfg, err := pki.PinnedClientConfig(p.cfg.CAFingerprint, api.KindController, api.KindHub)
	if err != nil {
		add(Result{Check: CheckTLS, Target: target, Detail: err.Error(), Fix: "use the CA fingerprint from the registration key"})
		return false
	}
	if net.ParseIP(host) == nil {
		tlsCfg.ServerName = host // SNI, for load balancers and proxies that route by name
	}
	if ep.Plane == PlaneControl {
		tlsCfg.NextProtos = []string{control.ALPN}
	}
	conn.SetDeadline(time.Now().Add(p.cfg.Timeout))
	tc := tls.Client(conn, tlsCfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		var pm *pki.PinMismatchError
		if errors.As(err, &pm) {
			add(Result{Check: CheckTLS, Target: target, Detail: "the certificate presented is not from the network's CA " + p.cfg.CAFingerprint + " (got a chain ending in " + pm.Got + ")",
				Fix: fmt.Sprintf("a proxy or deep packet inspection device is intercepting TLS; add an exception for %s", ep.Addr)})
			return false
		}
		add(Result{Check: CheckTLS, Target: target, Detail: "TLS handshake failed: " + err.Error(),
			Fix: fmt.Sprintf("something other than the ztna controller answers on %s: check the address, and bypass any proxy or web application firewall for it", ep.Addr)})
		return false
	}
	add(Result{Check: CheckTLS, Target: target, OK: true, Detail: "certificate verified against the pinned CA"})
	return true
}

// clock compares this host's clock with the controller's (HTTP Date of the edge API): short-lived
// certificates fail when clocks disagree.
func (p *run) clock(ctx context.Context, edge string) {
	tlsCfg, _ := pki.PinnedClientConfig(p.cfg.CAFingerprint, api.KindController)
	client := &http.Client{Timeout: p.cfg.Timeout, Transport: &http.Transport{
		TLSClientConfig: tlsCfg,
		DialContext:     (&net.Dialer{Resolver: p.cfg.Resolver}).DialContext,
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+edge+"/v1/openapi.json", nil)
	if err != nil {
		p.add(Result{Check: CheckClock, Target: edge, Detail: err.Error(), Fix: "give the edge address as host:port"})
		return
	}
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		p.add(Result{Check: CheckClock, Target: edge, Detail: "cannot ask the controller for its time: " + err.Error(),
			Fix: "make sure the edge API answers HTTPS on " + edge})
		return
	}
	resp.Body.Close()
	local := sent.Add(time.Since(sent) / 2)
	server, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		p.add(Result{Check: CheckClock, Target: edge, Detail: "the controller sent no usable Date header", Fix: "make sure the edge API answers HTTPS on " + edge})
		return
	}
	skew := local.Sub(server).Round(time.Second)
	if skew < -p.cfg.MaxClockSkew || skew > p.cfg.MaxClockSkew+time.Second { // Date has 1 s resolution
		p.add(Result{Check: CheckClock, Target: edge, Detail: fmt.Sprintf("this host's clock is %v off the controller's (%s here, %s there)", skew, local.UTC().Format(time.RFC3339), server.UTC().Format(time.RFC3339)),
			Fix: "synchronise this host's clock with NTP (systemd-timesyncd or chrony); certificates are short-lived"})
		return
	}
	p.add(Result{Check: CheckClock, Target: edge, OK: true, Detail: fmt.Sprintf("within %v of the controller's clock", p.cfg.MaxClockSkew)})
}

// service checks that an assigned service resolves and its port accepts TCP connections.
func (p *run) service(ctx context.Context, svc control.Service) {
	name := svc.Name
	if name == "" {
		name = svc.Address
	}
	if !p.resolve(ctx, CheckServiceDNS, svc.Address) {
		return
	}
	if svc.Protocol == api.ProtocolUDP {
		return // UDP has no handshake to probe
	}
	target := net.JoinHostPort(svc.Address, strconv.Itoa(svc.Port)) + " (" + name + ")"
	h := health.Check(ctx, p.cfg.Resolver, svc.Address, svc.Port, p.cfg.Timeout)
	if h.Reachable {
		p.add(Result{Check: CheckServiceTCP, Target: target, OK: true, Detail: "reachable"})
		return
	}
	p.add(Result{Check: CheckServiceTCP, Target: target, Detail: h.Error,
		Fix: fmt.Sprintf("allow TCP from this host to %s, and check that the service listens there", net.JoinHostPort(svc.Address, strconv.Itoa(svc.Port)))})
}
