package tunnel

import (
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/testenv"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// dnsmasq is a real dnsmasq, the host's resolver: it forwards to upstream and reads the
// servers-file the tunnel keeps.
type dnsmasq struct {
	addr                 string // host:port it answers on (UDP and TCP)
	serversFile, pidFile string
}

// startDnsmasq runs dnsmasq in the foreground on port 53 of a fresh loopback address, forwarding
// to upstream, until the test ends.
func startDnsmasq(t *testing.T, upstream string) *dnsmasq {
	t.Helper()
	requireTools(t, "dnsmasq")
	bin, _ := exec.LookPath("dnsmasq")
	// dnsmasq drops to its own user before it re-reads the servers-file on SIGHUP, so the
	// directory must be open to it (a t.TempDir is not).
	dir, err := os.MkdirTemp("", "ztna-dnsmasq-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &dnsmasq{serversFile: filepath.Join(dir, "ztna.servers"), pidFile: filepath.Join(dir, "dnsmasq.pid")}
	if err := os.WriteFile(d.serversFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	rand.Read(b)
	ip := netip.AddrFrom4([4]byte{127, 54, b[0], b[1]%250 + 1})
	d.addr = netip.AddrPortFrom(ip, 53).String()
	up, _ := netip.ParseAddrPort(upstream)
	// --keep-in-foreground, unlike --no-daemon, writes the pid file.
	p := harness.Start(t, bin, "--keep-in-foreground", "--log-facility=-", "--port=53", "--listen-address="+ip.String(),
		"--bind-interfaces", "--no-resolv", "--no-hosts", "--server="+up.Addr().String()+"#"+strconv.Itoa(int(up.Port())),
		"--servers-file="+d.serversFile, "--pid-file="+d.pidFile)
	harness.WaitFor(t, 10*time.Second, "dnsmasq to answer", func() bool {
		if p.Exited() {
			t.Fatalf("dnsmasq exited:\n%s", p.Output())
		}
		_, err := os.Stat(d.pidFile)
		return err == nil && lookupErr(d.addr, "ready.example.test") == nil
	})
	return d
}

func lookupErr(server, name string) error { _, _, err := lookupAt(server, name); return err }

// TestSplitDNSThroughDnsmasq: the tunnel registers exactly its service names with the host's
// dnsmasq. Through dnsmasq the service name resolves to the tunnel's local address (and a
// connection to it reaches the service) and other names resolve through the normal upstream.
// A service added later is registered on the fly (file rewritten, dnsmasq signalled). After SIGTERM of the tunnel the registration is undone: other names still resolve, and the
// service name fails cleanly (the upstream's NXDOMAIN, at once) instead of timing out.
func TestSplitDNSThroughDnsmasq(t *testing.T) {
	testenv.Integration(t, "dnsmasq and ztna tunnel processes")
	c := newCustomer(t)
	const fqdn, other, otherIP = "db.customerdomain.me", "www.example.test", "192.0.2.10"
	c.dns.Set(fqdn, "127.0.0.1")
	port := stack.Serve(t, stack.Echo)
	svc := control.Service{ID: "db", Name: "db", Address: fqdn, Port: port, Protocol: "tcp"}
	c.router(t, "r1", svc)
	c.s.Update(policy([]control.Service{svc}, "r1"))
	// The host's normal resolver: it knows public names, not the overlay's.
	upstream := dnstest.Start(t, map[string]string{other: otherIP, "ready.example.test": "192.0.2.1"})
	host := startDnsmasq(t, upstream.Addr)

	tun := startTunnel(t, c.identityFile(t, "app"), upstream.Addr, "--drain", "0",
		"--dnsmasq-servers-file", host.serversFile, "--dnsmasq-pid-file", host.pidFile)
	local, _ := tun.lookup(t, fqdn)
	if !local.IsValid() {
		t.Fatalf("the tunnel does not serve %s:\n%s", fqdn, tun.Output())
	}

	harness.WaitFor(t, 10*time.Second, "the service name to resolve through dnsmasq", func() bool {
		a, _, err := lookupAt(host.addr, fqdn)
		return err == nil && a == local
	})
	b, err := os.ReadFile(host.serversFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := serverLines(b), []string{"server=/" + fqdn + "/" + strings.Replace(tun.dns, ":", "#", 1)}; !slices.Equal(got, want) {
		t.Fatalf("servers-file registers %q, want only the service name %q", got, want)
	}
	echo(t, netip.AddrPortFrom(local, uint16(port)))
	if a, _, err := lookupAt(host.addr, other); err != nil || a.String() != otherIP {
		t.Fatalf("other name through dnsmasq with the tunnel up: %v %v, want %s", a, err, otherIP)
	}

	// A service added later is registered too: the file is rewritten and dnsmasq re-reads it.
	const added = "cache.customerdomain.me"
	svc2 := control.Service{ID: "cache", Name: "cache", Address: added, Port: port, Protocol: "tcp"}
	c.s.Update(policy([]control.Service{svc, svc2}, "r1"))
	harness.WaitFor(t, 10*time.Second, "the added service name to resolve through dnsmasq", func() bool {
		a, _, err := lookupAt(host.addr, added)
		return err == nil && a.IsValid() && a.Is4() && a.As4()[0] == 127
	})

	if code := tun.Terminate(t, 10*time.Second); code != 0 {
		t.Fatalf("tunnel exit %d:\n%s", code, tun.Output())
	}
	if b, _ := os.ReadFile(host.serversFile); len(serverLines(b)) > 0 {
		t.Fatalf("servers-file after the tunnel stopped still registers %q: not undone", serverLines(b))
	}
	if a, _, err := lookupAt(host.addr, other); err != nil || a.String() != otherIP {
		t.Fatalf("other name through dnsmasq with the tunnel stopped: %v %v, want %s", a, err, otherIP)
	}
	// dnsmasq caches answers, but SIGHUP clears its cache: the service names are asked upstream.
	for _, name := range []string{fqdn, added} {
		begin := time.Now()
		a, rcode, err := lookupAt(host.addr, name)
		took := time.Since(begin)
		if err != nil || a.IsValid() || (rcode != dns.RcodeNameError && rcode != dns.RcodeServerFailure) {
			t.Fatalf("service name %s through dnsmasq with the tunnel stopped: %v rcode %s err %v, want NXDOMAIN or SERVFAIL at once", name, a, dns.RcodeToString[rcode], err)
		}
		t.Logf("with the tunnel stopped, %s fails with %s after %v", name, dns.RcodeToString[rcode], took.Round(10*time.Microsecond))
	}
}

// serverLines is the server= lines of a dnsmasq servers-file.
func serverLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "server=") {
			out = append(out, l)
		}
	}
	return out
}

// echo checks that a connection to addr reaches an echo service.
func echo(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo through the tunnel: %q %v", b, err)
	}
}
