package tunnel

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// runningTunnel is a `ztna tunnel` process and where its DNS server listens.
type runningTunnel struct {
	*harness.Proc
	dns string // host:port; port 53, so that a resolv.conf can name it
}

// startTunnel runs `ztna tunnel` with its DNS server on port 53 of a fresh loopback address
// and waits until it serves.
func startTunnel(t *testing.T, identity, upstream string, extra ...string) *runningTunnel {
	t.Helper()
	b := make([]byte, 2)
	rand.Read(b)
	addr := netip.AddrFrom4([4]byte{127, 53, b[0], b[1]%250 + 1})
	dnsAddr := netip.AddrPortFrom(addr, 53).String()
	args := append([]string{"tunnel", "--identity", identity, "--dns-listen", dnsAddr, "--upstream", upstream}, extra...)
	p := harness.Start(t, "ztna", args...)
	harness.WaitFor(t, 15*time.Second, "the tunnel to serve DNS", func() bool {
		if p.Exited() {
			t.Fatalf("ztna tunnel exited:\n%s", p.Output())
		}
		return strings.Contains(p.Output(), "DNS on "+dnsAddr)
	})
	return &runningTunnel{Proc: p, dns: dnsAddr}
}

// lookup asks the tunnel's DNS server for name's A record: the address, or the rcode.
func (r *runningTunnel) lookup(t *testing.T, name string) (netip.Addr, int) {
	t.Helper()
	return r.resolve(t, name, dns.TypeA)
}

// lookupAAAA asks for name's AAAA record: the address, or an invalid one with the rcode.
func (r *runningTunnel) lookupAAAA(t *testing.T, name string) (netip.Addr, int) {
	t.Helper()
	return r.resolve(t, name, dns.TypeAAAA)
}

func (r *runningTunnel) resolve(t *testing.T, name string, qtype uint16) (netip.Addr, int) {
	t.Helper()
	addr, rcode, err := queryAt(r.dns, name, qtype)
	if err != nil {
		t.Fatal(err)
	}
	return addr, rcode
}

// lookupAt asks the DNS server at server (host:port) for name's A record: the address, or the
// rcode; an error when no answer came within 5 s.
func lookupAt(server, name string) (netip.Addr, int, error) { return queryAt(server, name, dns.TypeA) }

// queryAt asks server for name's record of qtype (A or AAAA).
func queryAt(server, name string, qtype uint16) (netip.Addr, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("query %s %s at %s: %w", name, dns.TypeToString[qtype], server, err)
	}
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			addr, _ := netip.AddrFromSlice(rr.A.To4())
			return addr, resp.Rcode, nil
		case *dns.AAAA:
			addr, _ := netip.AddrFromSlice(rr.AAAA)
			return addr, resp.Rcode, nil
		}
	}
	return netip.Addr{}, resp.Rcode, nil
}

// curl fetches url with the system's curl (and its extra flags), resolving names only through
// the tunnel: curl runs in a private mount namespace whose /etc/resolv.conf names the tunnel's
// DNS server.
func (r *runningTunnel) curl(t *testing.T, url string, flags ...string) (string, error) {
	t.Helper()
	host, _, _ := net.SplitHostPort(r.dns)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+host+"\noptions attempts:1 timeout:3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{"--mount", "--", "sh", "-c",
		`mount --bind "$1" /etc/resolv.conf && shift && exec curl -sS --fail --max-time 10 "$@"`, "sh", conf}, flags...), url)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("curl %s: %w: %s", url, err, out)
	}
	return string(out), nil
}

// httpServer serves a page naming itself on a fresh loopback port until the test ends.
func httpServer(t *testing.T, body string) int {
	t.Helper()
	return httpServerOn(t, "127.0.0.1:0", body)
}

// httpServerOn is httpServer on listen (host:port; port 0 picks one).
func httpServerOn(t *testing.T, listen, body string) int {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "%s (Host %s)\n", body, req.Host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// requireTools fails early, saying what to install, when a system tool the test drives is
// missing (scripts/deps.sh installs them for make test).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: run scripts/deps.sh test", tool)
		}
	}
}
