package tunnel

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// customer is an in-process data plane with one router that resolves service names with the
// customer's DNS (a real miekg/dns server that alone knows them), like a router in the
// customer's network.
type customer struct {
	s   *stack.Stack
	dns *dnstest.Server
}

func newCustomer(t *testing.T) *customer {
	t.Helper()
	return &customer{s: stack.Start(t, stack.Options{}), dns: dnstest.Start(t, nil)}
}

// router starts router id hosting services, resolving through the customer's DNS.
func (c *customer) router(t *testing.T, id string, services ...control.Service) {
	t.Helper()
	r, err := resolve.New(c.dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.s.StartRouter(id, services, r)
}

// identityFile writes the identity file `ztna identity enroll` would write for identity id of
// this network (certificate from the network's CA, the hub as fabric endpoint).
func (c *customer) identityFile(t *testing.T, id string) string {
	t.Helper()
	iss, key, err := c.s.PKI.CA.IssueServer(api.KindIdentity, id, nil, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := enroll.IdentityFile{
		Config: api.EnrolledConfig{
			ID: id, Kind: api.KindIdentity, Name: id, Roles: []string{"apps"},
			Fabric: []string{c.s.HubAddr}, CAFingerprint: c.s.PKI.CA.Fingerprint(), CertExpiresAt: time.Now().Add(24 * time.Hour),
		},
		Key: string(keyPEM), Cert: string(iss.ChainPEM), CA: string(c.s.PKI.CA.CertPEM),
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), id+".identity")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// policy lets identity "app" (role apps) dial services; "outsider" (role other) exists with
// no policy.
func policy(services []control.Service, routers ...string) hub.Snapshot {
	snap := stack.Policy(services, routers, []string{"app"})
	snap.Identities = append(snap.Identities, hub.Identity{ID: "outsider", Roles: []string{"other"}})
	return snap
}

func TestServicesListsWhatTheIdentityMayDial(t *testing.T) {
	c := newCustomer(t)
	db := stack.Service("db", "prod-db.customerdomain.me", 5432)
	api := control.Service{ID: "api", Name: "api", Address: "api.customerdomain.me", Port: 443, Protocol: "tcp",
		PortRanges: []control.PortRange{{From: 8000, To: 8010}}}
	c.router(t, "r1", db, api)
	c.s.Update(policy([]control.Service{db, api}, "r1"))

	r := ztna(t, nil, "services", "--identity", c.identityFile(t, "app"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"NAME", "api  ", "api.customerdomain.me", "443,8000-8010", "prod-db.customerdomain.me", "5432"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("listing lacks %q:\n%s", want, r.stdout)
		}
	}
	r = ztna(t, nil, "services", "--json", "--identity", c.identityFile(t, "app"))
	var list []client.Service
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || list[1].Address != "prod-db.customerdomain.me" {
		t.Fatalf("--json: %v %+v", err, list)
	}

	// An identity without a policy sees nothing, not even that the services exist.
	r = ztna(t, nil, "services", "--identity", c.identityFile(t, "outsider"))
	if r.code != 0 || strings.Contains(r.stdout, "customerdomain") || !strings.Contains(r.stdout, "no services") {
		t.Fatalf("outsider: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestDialPipesStdinAndStdout(t *testing.T) {
	c := newCustomer(t)
	c.dns.Set("digest.customerdomain.me", "127.0.0.1")
	c.dns.Set("echo.customerdomain.me", "127.0.0.1")
	digest := stack.Service("digest", "digest.customerdomain.me", stack.Serve(t, stack.Digest))
	echo := stack.Service("echo", "echo.customerdomain.me", stack.Serve(t, stack.Echo))
	c.router(t, "r1", digest, echo)
	c.s.Update(policy([]control.Service{digest, echo}, "r1"))
	id := c.identityFile(t, "app")

	// The digest service answers only after the end of its input: stdin's end must arrive as
	// a half-close, and the answer must still come back.
	in := make([]byte, 8<<20)
	rand.Read(in)
	sum := sha256.Sum256(in)
	r := ztna(t, in, "dial", "--identity", id, "digest.customerdomain.me:"+strconv.Itoa(digest.Port))
	if want := hex.EncodeToString(sum[:]) + " " + strconv.Itoa(len(in)); r.code != 0 || r.stdout != want {
		t.Fatalf("dial digest: exit %d stdout %q stderr %s; want %q", r.code, r.stdout, r.stderr, want)
	}
	r = ztna(t, []byte("hello through the overlay\n"), "dial", "--identity", id, "echo.customerdomain.me:"+strconv.Itoa(echo.Port))
	if r.code != 0 || r.stdout != "hello through the overlay\n" {
		t.Fatalf("dial echo: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
}

func TestDialFailuresExitNonZeroSayingWhy(t *testing.T) {
	c := newCustomer(t)
	c.dns.Set("refusing.customerdomain.me", "127.0.0.1")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()                                               // nothing listens there any more
	db := stack.Service("db", "prod-db.customerdomain.me", 5432) // the customer's DNS does not know it
	refusing := stack.Service("refusing", "refusing.customerdomain.me", closedPort)
	c.router(t, "r1", db, refusing)
	c.s.Update(policy([]control.Service{db, refusing}, "r1"))
	app, outsider := c.identityFile(t, "app"), c.identityFile(t, "outsider")
	expired := filepath.Join(t.TempDir(), "expired.identity")

	for _, tc := range []struct {
		name     string
		identity string
		args     []string
		want     []string
	}{
		{"no policy", outsider, []string{"prod-db.customerdomain.me:5432"}, []string{"not authorized", "ztna services"}},
		{"no such service", app, []string{"nothing.customerdomain.me:5432"}, []string{"not authorized"}},
		{"unresolvable at the router", app, []string{"prod-db.customerdomain.me:5432"}, []string{"unreachable", "no such host"}},
		{"target refuses", app, []string{"refusing.customerdomain.me:" + strconv.Itoa(closedPort)}, []string{"target refused"}},
		{"not host:port", app, []string{"prod-db.customerdomain.me"}, []string{"must be host:port"}},
		{"no identity file", expired, []string{"prod-db.customerdomain.me:5432"}, []string{"does not exist", "ztna identity enroll"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ztna(t, []byte("x"), append([]string{"dial", "--identity", tc.identity}, tc.args...)...)
			if r.code == 0 {
				t.Fatalf("exit 0, stdout %q", r.stdout)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not say %q", r.stderr, w)
				}
			}
		})
	}
}

// The must-show of the tunnel against the in-process data plane: curl reaches an HTTP server
// by its FQDN, which only the customer's DNS (used by the router) knows; the name resolves
// through the tunnel only for an identity a policy allows, starts resolving within a second of
// the policy being granted and stops within a second of it being revoked (pushed by the hub).
func TestTunnelCurlByNameFollowsPolicy(t *testing.T) {
	requireTools(t, "curl", "unshare", "mount")
	c := newCustomer(t)
	const fqdn = "intranet.customerdomain.me"
	port := httpServer(t, "hello from the customer's intranet")
	c.dns.Set(fqdn, "127.0.0.1")
	web := stack.Service("intranet", fqdn, port)
	c.router(t, "r1", web)
	snap := policy([]control.Service{web}, "r1")
	c.s.Update(snap)
	// Names the tunnel does not serve go to the client side's own resolver.
	upstream := dnstest.Start(t, map[string]string{"www.operator.example": "192.0.2.10"})
	url := "http://" + fqdn + ":" + strconv.Itoa(port) + "/"

	// Allowed identity: curl by name.
	app := startTunnel(t, c.identityFile(t, "app"), upstream.Addr)
	body, err := app.curl(t, url)
	if err != nil || !strings.Contains(body, "hello from the customer's intranet") {
		t.Fatalf("curl through the tunnel: %q %v", body, err)
	}
	if a, _ := app.lookup(t, "www.operator.example"); a.String() != "192.0.2.10" {
		t.Fatalf("other names are not forwarded upstream: got %v", a)
	}

	// Identity without a policy: the name does not resolve (the upstream does not know it). Its
	// tunnel polls only hourly: changes can reach it within a second only by the hub's push.
	out := startTunnel(t, c.identityFile(t, "outsider"), upstream.Addr, "--refresh", "1h")
	if a, rcode := out.lookup(t, fqdn); a.IsValid() || rcode != dns.RcodeNameError {
		t.Fatalf("outsider resolved %s to %v (rcode %s)", fqdn, a, dns.RcodeToString[rcode])
	}
	if _, err := out.curl(t, url); err == nil {
		t.Fatal("curl without a policy succeeded")
	}

	// Grant: resolvable, and curl works, within a second.
	grant := snap
	grant.Policies = append(append([]hub.Policy(nil), snap.Policies...), hub.Policy{IdentityRoles: []string{"other"}, ServiceNames: []string{"intranet"}})
	c.s.Update(grant)
	took := harness.WaitFor(t, time.Second, "the granted service to resolve", func() bool {
		a, _ := out.lookup(t, fqdn)
		return a.IsValid()
	})
	t.Logf("granted policy: %s resolvable after %v", fqdn, took.Round(time.Millisecond))
	if body, err := out.curl(t, url); err != nil || !strings.Contains(body, "intranet") {
		t.Fatalf("curl after granting: %q %v", body, err)
	}

	// Revoke: within a second the name no longer resolves and its listener is gone.
	addr, _ := out.lookup(t, fqdn)
	c.s.Update(snap)
	took = harness.WaitFor(t, time.Second, "the revoked service to stop resolving and listening", func() bool {
		a, rcode := out.lookup(t, fqdn)
		conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), time.Second)
		if err == nil {
			conn.Close()
		}
		return !a.IsValid() && rcode == dns.RcodeNameError && err != nil
	})
	t.Logf("revoked policy: %s gone after %v", fqdn, took.Round(time.Millisecond))

	if code := app.Terminate(t, 10*time.Second); code != 0 {
		t.Fatalf("tunnel exited %d after SIGTERM", code)
	}
}

// The tunnel's optional metrics and health endpoint.
func TestTunnelMetricsAndHealth(t *testing.T) {
	c := newCustomer(t)
	c.dns.Set("echo.customerdomain.me", "127.0.0.1")
	echo := stack.Service("echo", "echo.customerdomain.me", stack.Serve(t, stack.Echo))
	c.router(t, "r1", echo)
	c.s.Update(policy([]control.Service{echo}, "r1"))
	metrics := harness.FreeAddr(t)
	tun := startTunnel(t, c.identityFile(t, "app"), dnstest.Start(t, nil).Addr, "--metrics-listen", metrics)
	harness.WaitFor(t, 5*time.Second, "/healthz", func() bool {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	a, _ := tun.lookup(t, "echo.customerdomain.me")
	conn, err := net.Dial("tcp", netip.AddrPortFrom(a, uint16(echo.Port)).String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	io.ReadFull(conn, make([]byte, 4))
	conn.Close()
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"ztna_tunnel_service_names 1",
		`ztna_tunnel_connections_total{result="relayed"} 1`,
		`ztna_tunnel_dns_queries_total{answer="local"} 1`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A protocol where the server speaks first (SMTP, SSH, MySQL): the program connects through
// the tunnel and waits for the banner without sending anything. The tunnel must complete the
// end-to-end handshake on its own, not wait for the program's first bytes.
func TestTunnelCarriesServerFirstProtocols(t *testing.T) {
	c := newCustomer(t)
	const fqdn = "smtp.customerdomain.me"
	c.dns.Set(fqdn, "127.0.0.1")
	port := stack.Serve(t, func(conn net.Conn) {
		defer conn.Close()
		conn.Write([]byte("220 smtp.customerdomain.me ready\r\n"))
		io.Copy(conn, conn)
	})
	smtp := stack.Service("smtp", fqdn, port)
	c.router(t, "r1", smtp)
	c.s.Update(policy([]control.Service{smtp}, "r1"))
	upstream := dnstest.Start(t, nil)
	tun := startTunnel(t, c.identityFile(t, "app"), upstream.Addr)
	addr, _ := tun.lookup(t, fqdn)
	if !addr.IsValid() {
		t.Fatalf("%s does not resolve through the tunnel", fqdn)
	}
	start := time.Now()
	conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	banner := make([]byte, len("220 smtp.customerdomain.me ready\r\n"))
	if _, err := io.ReadFull(conn, banner); err != nil {
		t.Fatalf("no banner after %v: %v", time.Since(start), err)
	}
	took := time.Since(start)
	t.Logf("banner after %v", took)
	if took > time.Second {
		t.Errorf("banner took %v: the handshake waited for the program to speak", took)
	}
	if _, err := conn.Write([]byte("QUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 6)
	if _, err := io.ReadFull(conn, echo); err != nil || string(echo) != "QUIT\r\n" {
		t.Fatalf("after the banner: %q %v", echo, err)
	}
}

// Every spelling of an authorised IPv6 target reaches it, an unauthorised one is refused, and
// the target is printed as [addr]:port.
func TestDialIPv6TargetAnySpelling(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go stack.Echo(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	c := newCustomer(t)
	v6 := stack.Service("v6", "::1", port)
	c.router(t, "r1", v6)
	c.s.Update(policy([]control.Service{v6}, "r1"))
	id := c.identityFile(t, "app")
	p := strconv.Itoa(port)
	for _, spelling := range []string{"[::1]:" + p, "[0:0:0:0:0:0:0:1]:" + p, "[0000::0001]:" + p} {
		r := ztna(t, []byte("hello v6\n"), "dial", "--identity", id, spelling)
		if r.code != 0 || r.stdout != "hello v6\n" {
			t.Errorf("dial %s: exit %d stdout %q stderr %s", spelling, r.code, r.stdout, r.stderr)
		}
	}
	if r := ztna(t, []byte("x"), "dial", "--identity", id, "[::2]:"+p); r.code == 0 || !strings.Contains(r.stderr, "not authorized") {
		t.Errorf("dial an unauthorised IPv6 target: exit %d stderr %q", r.code, r.stderr)
	}
	if r := ztna(t, nil, "services", "--identity", id); !strings.Contains(r.stdout, "::1") {
		t.Errorf("services: %q", r.stdout)
	}
}
