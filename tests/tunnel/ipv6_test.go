package tunnel

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/netns"
	"github.com/ztna/ztna/internal/testenv"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// inNetnsEnv names the test that a re-run of this binary runs inside its private namespace.
const inNetnsEnv = "ZTNA_TUNNEL_TEST_IN_NETNS"

// inPrivateNetns re-runs the calling test alone in a new network namespace (unshare --net), so
// that it may change routes without touching the host's, and reports whether the caller is
// that re-run (then lo is up and the test goes on) or the outer run (then it is done: the
// re-run passed, or the test failed with its output).
func inPrivateNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(inNetnsEnv) == t.Name() {
		if err := netns.Run(context.Background(), "", "ip", "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
		return true
	}
	requireTools(t, "unshare", "ip")
	if os.Geteuid() != 0 {
		t.Fatal("a private network namespace needs root: run as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inNetnsEnv+"="+t.Name(), "ZTNA_BIN_DIR="+filepath.Dir(harness.Bin("ztna")))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in a private network namespace: %v\n%s", t.Name(), err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
	return false
}

// The must-show: `curl -6` reaches an IPv6-only service by name through the tunnel. The HTTP
// server listens on [::1] only and the customer's DNS knows only its AAAA record, so the router
// can reach it over IPv6 alone. The tunnel runs with --address-pool6: the name resolves (only
// through the tunnel, by resolv.conf in curl's mount namespace) to an address of that pool,
// and curl -6 connects to it. A tunnel without the pool answers AAAA with nothing, so curl -6
// cannot even resolve the name. It runs in a private network namespace because the pool must
// be routed local (ip -6 route add local <pool> dev lo), which the host's routes must not get.
func TestCurl6ThroughTheTunnelToAnIPv6OnlyService(t *testing.T) {
	testenv.Integration(t, "ztna tunnel processes, curl and a network namespace")
	if !inPrivateNetns(t) {
		return
	}
	requireTools(t, "curl", "unshare", "mount")
	pool6 := netip.MustParsePrefix("fd7a:7a7a::/64")
	if err := netns.Run(context.Background(), "", "ip", "-6", "route", "add", "local", pool6.String(), "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	c := newCustomer(t)
	const fqdn = "v6only.customerdomain.me"
	port := httpServerOn(t, "[::1]:0", "hello over IPv6")
	c.dns.Set(fqdn, "::1") // AAAA only
	web := stack.Service("v6only", fqdn, port)
	c.router(t, "r1", web)
	c.s.Update(policy([]control.Service{web}, "r1"))
	upstream := dnstest.Start(t, nil)
	id := c.identityFile(t, "app")
	url := "http://" + fqdn + ":" + strconv.Itoa(port) + "/"

	tun := startTunnel(t, id, upstream.Addr, "--address-pool6", pool6.String())
	var addr6 netip.Addr
	harness.WaitFor(t, 5*time.Second, "the service name to get an IPv6 address", func() bool {
		addr6, _ = tun.lookupAAAA(t, fqdn)
		return addr6.IsValid()
	})
	if !pool6.Contains(addr6) {
		t.Fatalf("AAAA %s = %v, want an address in %s", fqdn, addr6, pool6)
	}
	body, err := tun.curl(t, url, "-6", "-w", "\nremote %{remote_ip}\n")
	if err != nil || !strings.Contains(body, "hello over IPv6") || !strings.Contains(body, "Host "+fqdn) {
		t.Fatalf("curl -6 through the tunnel: %q %v", body, err)
	}
	if !strings.Contains(body, "remote "+addr6.String()+"\n") {
		t.Fatalf("curl -6 did not connect to the tunnel's IPv6 address %v: %q", addr6, body)
	}
	t.Logf("curl -6 %s via %v: %q", url, addr6, body)
	// Dual stack: the same name's IPv4 address reaches the same IPv6-only service.
	if body, err := tun.curl(t, url, "-4"); err != nil || !strings.Contains(body, "hello over IPv6") {
		t.Fatalf("curl -4 through the tunnel: %q %v", body, err)
	}
	if !strings.Contains(tun.Output(), addr6.String()) {
		t.Errorf("the tunnel did not say which IPv6 address the name has:\n%s", tun.Output())
	}

	// Without the pool, the name is still the tunnel's (no upstream answer) but has no AAAA.
	v4only := startTunnel(t, id, upstream.Addr)
	harness.WaitFor(t, 5*time.Second, "the second tunnel to serve the name", func() bool {
		a, _ := v4only.lookup(t, fqdn)
		return a.IsValid()
	})
	if a, rcode := v4only.lookupAAAA(t, fqdn); a.IsValid() || rcode != dns.RcodeSuccess {
		t.Fatalf("AAAA without an IPv6 pool: %v (rcode %s), want an empty NOERROR", a, dns.RcodeToString[rcode])
	}
	if body, err := v4only.curl(t, url, "-6"); err == nil {
		t.Fatalf("curl -6 without an IPv6 pool succeeded: %q", body)
	}

	for _, p := range []*runningTunnel{tun, v4only} {
		if code := p.Terminate(t, 10*time.Second); code != 0 {
			t.Fatalf("tunnel exited %d after SIGTERM", code)
		}
	}
}
