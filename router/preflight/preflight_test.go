package preflight

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/preflight/interceptproxy"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/router/testnet"
)

// controller is a stand-in for the controller's three planes, each a real TLS server with a
// certificate from the network CA: the edge API answers HTTPS (with a configurable Date), the
// control port is the real control-channel server, the fabric port a TLS listener.
type controller struct {
	ca                    *pki.CA
	edge, control, fabric string
	dateOffset            time.Duration
}

func startController(t *testing.T) *controller {
	t.Helper()
	ca, err := pki.NewCA("net")
	if err != nil {
		t.Fatal(err)
	}
	c := &controller{ca: ca}
	serverCert := func(kind string) *tls.Certificate {
		iss, key, err := ca.IssueServer(kind, "c1", []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.TLSCertificate(iss.ChainPEM, key)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	// Not httptest.StartTLS: it would install its own certificate next to ours.
	edgeLn, err := tls.Listen("tcp", "127.0.0.1:0", pki.ServerConfig(pki.NewCertSlot(serverCert(api.KindController))))
	if err != nil {
		t.Fatal(err)
	}
	edge := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(c.dateOffset).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusUnauthorized)
	})}
	go edge.Serve(edgeLn)
	t.Cleanup(func() { edge.Close() })
	c.edge = edgeLn.Addr().String()

	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "r1"})
	c.control = controltest.Start(t, b, "", controlserver.Config{}).Addr

	fab, err := tls.Listen("tcp", "127.0.0.1:0", pki.ServerConfig(pki.NewCertSlot(serverCert(api.KindHub))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fab.Close() })
	go func() {
		for {
			conn, err := fab.Accept()
			if err != nil {
				return
			}
			go func() { conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	c.fabric = fab.Addr().String()
	return c
}

// named replaces 127.0.0.1 with a name the test DNS server resolves.
func named(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("controller.test", port)
}

func TestPreflight(t *testing.T) {
	ctl := startController(t)
	dns := dnstest.Start(t, map[string]string{"controller.test": "127.0.0.1", "db.customer.test": "127.0.0.1"})
	resolver, err := resolve.New(dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	open, closed := testnet.OpenPort(t), testnet.ClosedPort(t)
	plainHTTP := httptest.NewServer(http.NotFoundHandler())
	defer plainHTTP.Close()
	proxy := interceptproxy.Start(t, ctl.edge)

	base := func() Config {
		return Config{
			Endpoints: []Endpoint{
				{Plane: PlaneEdge, Addr: named(ctl.edge)},
				{Plane: PlaneControl, Addr: named(ctl.control), Source: SourceLearned},
				{Plane: PlaneFabric, Addr: named(ctl.fabric), Source: SourceEnrolled},
			},
			CAFingerprint: ctl.ca.Fingerprint(),
			Services:      []control.Service{{ID: "s1", Name: "db", Address: "db.customer.test", Port: open}},
			Resolver:      resolver, DNSServer: dns.Addr, Timeout: 2 * time.Second,
		}
	}
	tests := []struct {
		name       string
		change     func(*Config)
		failCheck  string // "" = everything passes
		failTarget string
		fixSays    string
	}{
		{name: "all good", change: func(*Config) {}},
		{"TLS interception on the edge port", func(c *Config) { c.Endpoints[0].Addr = named(proxy.Addr) }, CheckTLS, named(proxy.Addr),
			"a proxy or deep packet inspection device is intercepting TLS; add an exception for " + named(proxy.Addr)},
		{"service unknown to the customer's DNS", func(c *Config) { c.Services[0].Address = "ghost.customer.test" }, CheckServiceDNS, "ghost.customer.test",
			"make ghost.customer.test resolvable by the DNS server " + dns.Addr},
		{"service port closed", func(c *Config) { c.Services[0].Port = closed }, CheckServiceTCP, "db.customer.test:" + strconv.Itoa(closed),
			"allow TCP from this host to db.customer.test:" + strconv.Itoa(closed)},
		{"control port blocked", func(c *Config) { c.Endpoints[1].Addr = "controller.test:" + strconv.Itoa(closed) }, CheckTCP, "controller.test:" + strconv.Itoa(closed),
			"allow outbound TCP from this host to controller.test:" + strconv.Itoa(closed) + " (the controller's control port)"},
		{"controller name unknown", func(c *Config) { c.Endpoints[2].Addr = "nowhere.test:80" }, CheckDNS, "nowhere.test", "make nowhere.test resolvable"},
		{"not TLS on the fabric port", func(c *Config) { c.Endpoints[2].Addr = named(plainHTTP.Listener.Addr().String()) }, CheckTLS, "(fabric)",
			"something other than the ztna controller answers"},
		{"clock skew", func(*Config) { ctl.dateOffset = 10 * time.Minute }, CheckClock, named(ctl.edge), "synchronise this host's clock with NTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl.dateOffset = 0
			cfg := base()
			tt.change(&cfg)
			rep := Run(context.Background(), cfg)
			var table bytes.Buffer
			rep.WriteTable(&table)
			t.Logf("\n%s", table.String())
			failed := rep.Failed()
			if tt.failCheck == "" {
				if !rep.OK || len(failed) != 0 {
					t.Fatalf("failures: %+v", failed)
				}
				if !strings.Contains(table.String(), "All checks passed") {
					t.Fatal("table does not say all checks passed")
				}
				return
			}
			if rep.OK || len(failed) != 1 {
				t.Fatalf("want exactly one failure (%s), got %+v", tt.failCheck, failed)
			}
			f := failed[0]
			if f.Check != tt.failCheck || !strings.Contains(f.Target, tt.failTarget) || !strings.Contains(f.Fix, tt.fixSays) {
				t.Fatalf("failure %+v, want check %s on %s with fix %q", f, tt.failCheck, tt.failTarget, tt.fixSays)
			}
			wantSource := "" // the failed endpoint's; name checks are per host
			for _, ep := range cfg.Endpoints {
				if f.Check != CheckDNS && strings.HasPrefix(f.Target, ep.Addr+" (") {
					wantSource = ep.Source
				}
			}
			if f.Source != wantSource || (f.Source != "" && !strings.Contains(table.String(), "["+f.Source+"]")) {
				t.Fatalf("failure %+v has source %q, want %q (in the table too)", f, f.Source, wantSource)
			}
			if !strings.Contains(table.String(), "1. "+f.Fix) {
				t.Fatal("table does not list the fix")
			}
			var decoded Report
			var js bytes.Buffer
			rep.WriteJSON(&js)
			if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || decoded.OK || len(decoded.Failed()) != 1 {
				t.Fatalf("JSON report %s: %v", js.String(), err)
			}
		})
	}
}
