package router_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/preflight"
	"github.com/ztna/ztna/router/preflight/interceptproxy"
	"github.com/ztna/ztna/router/testnet"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestPreflight runs `ztna-router preflight --key` against a real controller: through a
// TLS-intercepting proxy it reports interception, with a DNS server that does not know a service
// it reports the service unresolvable, with a closed port it reports it unreachable — each time
// with a non-zero exit and the fix. The checks of the controller's edge, control and fabric ports
// pass.
func TestPreflight(t *testing.T) {
	c := harness.StartController(t)
	_, key := c.NewRouter(t, "edge-1", "edge")
	keyFile := harness.WriteKey(t, key)
	edge, err := url.Parse(c.Env["ZTNA_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	proxy := interceptproxy.Start(t, edge.Host)
	dns := dnstest.Start(t, map[string]string{"db.customer.test": "127.0.0.1"})
	closed := strconv.Itoa(testnet.ClosedPort(t))

	tests := []struct {
		name               string
		args               []string
		check, target, fix string
	}{
		{"TLS interception", []string{"--edge", proxy.Addr},
			preflight.CheckTLS, proxy.Addr, "a proxy or deep packet inspection device is intercepting TLS; add an exception for " + proxy.Addr},
		{"service unknown to the customer's DNS", []string{"--dns-server", dns.Addr, "--service", "ghost.customer.test:5432"},
			preflight.CheckServiceDNS, "ghost.customer.test", "make ghost.customer.test resolvable by the DNS server " + dns.Addr},
		{"service port closed", []string{"--dns-server", dns.Addr, "--service", "db.customer.test:" + closed},
			preflight.CheckServiceTCP, "db.customer.test:" + closed, "allow TCP from this host to db.customer.test:" + closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := harness.Run(t, "ztna-router", append([]string{"preflight", "--key-file", keyFile, "--json", "--timeout", "3s"}, tt.args...)...)
			if code == 0 {
				t.Fatalf("preflight passed:\n%s", out)
			}
			var rep preflight.Report
			if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
				t.Fatalf("report is not JSON (%v):\n%s", err, out)
			}
			var found, fabricTLS bool
			for _, r := range rep.Results {
				fabricTLS = fabricTLS || (r.Check == preflight.CheckTLS && strings.Contains(r.Target, "(fabric)") && r.OK)
				if r.Check == tt.check && strings.HasPrefix(r.Target, tt.target) {
					found = !r.OK && strings.Contains(r.Fix, tt.fix)
				}
				// The real controller's edge, control and fabric (embedded hub) ports pass, unless the
				// proxy stands in for the edge.
				if (r.Check == preflight.CheckTLS || r.Check == preflight.CheckTCP) && !strings.HasPrefix(r.Target, proxy.Addr) && !r.OK {
					t.Errorf("controller check failed: %+v", r)
				}
			}
			if !found {
				t.Fatalf("no failed %s check on %s with fix %q:\n%s", tt.check, tt.target, tt.fix, out)
			}
			if !fabricTLS {
				t.Errorf("no passing TLS check of the fabric port (embedded hub):\n%s", out)
			}
		})
	}

	t.Run("human table", func(t *testing.T) {
		out, code := harness.Run(t, "ztna-router", "preflight", "--key-file", keyFile, "--edge", proxy.Addr)
		if code == 0 || !strings.Contains(out, "CHECK") || !strings.Contains(out, "check(s) failed. To fix:") ||
			!strings.Contains(out, "add an exception for "+proxy.Addr) {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		t.Logf("\n%s", out)
	})
}
