package tunnel

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// The must-show with real processes: `ztna-controller dev` (API, control channel, embedded hub),
// `ztna-router run --dns-server` resolving the service's FQDN with the customer's DNS (a real
// miekg/dns server only the router asks), an HTTP server behind the router, and on the client
// side `ztna identity enroll`, `ztna tunnel`, `ztna services`, `ztna dial` and curl. The
// identity starts without a policy: it can neither list, resolve nor dial the service; a policy
// created through the API lets it in within a second; deleting the policy shuts it out again
// within a second.
func TestRealProcessesCurlThroughTheTunnel(t *testing.T) {
	requireTools(t, "curl", "unshare", "mount")
	ctx := context.Background()
	c := harness.StartController(t)
	const fqdn = "intranet.customer.test"
	customerDNS := dnstest.Start(t, map[string]string{fqdn: "127.0.0.1"})
	port := httpServer(t, "hello from the customer's intranet")
	router := c.StartRouter(t, "edge-1", []string{"edge"}, "--dns-server", customerDNS.Addr)
	if _, err := c.API.CreateService(ctx, api.ServiceCreate{Name: "intranet", Address: fqdn, Port: port, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 5*time.Second, "router assignment", func() bool {
		return router.Metric("ztna_router_assigned_services") == 1
	})

	// Enrol with the CLI and the token the API minted; the token works once.
	ident, err := c.API.CreateIdentity(ctx, api.IdentityCreate{Name: "app", Roles: []string{"apps"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile, idFile := filepath.Join(dir, "app.token"), filepath.Join(dir, "app.identity")
	if err := os.WriteFile(tokenFile, []byte(ident.EnrollmentToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ztna(t, nil, "identity", "enroll", "--token-file", tokenFile, "--out", idFile)
	if r.code != 0 || !strings.Contains(r.stdout, "enrolled identity app") {
		t.Fatalf("enroll: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(idFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	again := filepath.Join(dir, "again.identity")
	if r := ztna(t, nil, "identity", "enroll", "--token-file", tokenFile, "--out", again); r.code == 0 || !strings.Contains(r.stderr, "used") {
		t.Fatalf("second use of the token: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(again); err == nil {
		t.Fatal("a refused enrolment wrote an identity file")
	}

	upstream := dnstest.Start(t, nil) // the client side's own resolver: does not know the name
	tun := startTunnel(t, idFile, upstream.Addr)
	url := "http://" + fqdn + ":" + strconv.Itoa(port) + "/"
	target := net.JoinHostPort(fqdn, strconv.Itoa(port))
	request := []byte("GET / HTTP/1.0\r\nHost: " + fqdn + "\r\n\r\n")

	// No policy: not listed, not resolvable, not dialable.
	if r := ztna(t, nil, "services", "--identity", idFile); r.code != 0 || strings.Contains(r.stdout, fqdn) {
		t.Fatalf("services without a policy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if a, rcode := tun.lookup(t, fqdn); a.IsValid() || rcode != dns.RcodeNameError {
		t.Fatalf("resolved %s to %v (rcode %s) without a policy", fqdn, a, dns.RcodeToString[rcode])
	}
	if _, err := tun.curl(t, url); err == nil {
		t.Fatal("curl succeeded without a policy")
	}
	if r := ztna(t, request, "dial", "--identity", idFile, target); r.code == 0 || !strings.Contains(r.stderr, "not authorized") {
		t.Fatalf("dial without a policy: exit %d %q", r.code, r.stderr)
	}

	// The policy lets it in within a second (controller → hub → tunnel).
	pol, err := c.API.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "apps-intranet", IdentityRoles: []string{"apps"}, ServiceNames: []string{"intranet"}})
	if err != nil {
		t.Fatal(err)
	}
	var addr netip.Addr
	took := harness.WaitFor(t, time.Second, "the service to resolve after the policy was created", func() bool {
		addr, _ = tun.lookup(t, fqdn)
		return addr.IsValid()
	})
	t.Logf("policy created: %s resolves to %v after %v", fqdn, addr, took.Round(time.Millisecond))
	body, err := tun.curl(t, url)
	if err != nil || !strings.Contains(body, "hello from the customer's intranet") || !strings.Contains(body, "Host "+fqdn) {
		t.Fatalf("curl through the tunnel: %q %v", body, err)
	}
	if r := ztna(t, nil, "services", "--identity", idFile); r.code != 0 || !strings.Contains(r.stdout, fqdn) {
		t.Fatalf("services with the policy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := ztna(t, request, "dial", "--identity", idFile, target); r.code != 0 || !strings.Contains(r.stdout, "200 OK") || !strings.Contains(r.stdout, "intranet") {
		t.Fatalf("dial with the policy: exit %d %q %q", r.code, r.stdout, r.stderr)
	}

	// The operator's view of it.
	env := []string{"ZTNA_ADDR=" + c.Env["ZTNA_ADDR"], "ZTNA_TOKEN=" + c.Env["ZTNA_TOKEN"], "ZTNA_CA_FINGERPRINT=" + c.Env["ZTNA_CA_FINGERPRINT"]}
	st := ztnaEnv(t, env, nil, "status")
	if st.code != 0 || !strings.Contains(st.stdout, "edge-1") || !strings.Contains(st.stdout, "online") || !strings.Contains(st.stdout, fqdn) {
		t.Fatalf("status: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	}
	t.Logf("ztna status:\n%s", st.stdout)
	if strings.Contains(st.stdout+st.stderr, c.Env["ZTNA_TOKEN"]) {
		t.Fatal("status printed the API token")
	}

	// Deleting the policy shuts the identity out within a second: the name stops resolving, its
	// listener closes, and new dials are refused.
	if err := c.API.DeleteServicePolicy(ctx, pol.ID); err != nil {
		t.Fatal(err)
	}
	took = harness.WaitFor(t, time.Second, "the service to stop resolving and listening", func() bool {
		a, rcode := tun.lookup(t, fqdn)
		conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), time.Second)
		if err == nil {
			conn.Close()
		}
		return !a.IsValid() && rcode == dns.RcodeNameError && err != nil
	})
	t.Logf("policy deleted: %s gone after %v", fqdn, took.Round(time.Millisecond))
	if r := ztna(t, request, "dial", "--identity", idFile, target); r.code == 0 || !strings.Contains(r.stderr, "not authorized") {
		t.Fatalf("dial after deleting the policy: exit %d %q", r.code, r.stderr)
	}
	if code := tun.Terminate(t, 10*time.Second); code != 0 {
		t.Fatalf("tunnel exited %d after SIGTERM", code)
	}
}
