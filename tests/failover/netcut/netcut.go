// Package netcut gives a process its own network namespace joined to the host by a veth pair,
// and cuts that namespace off silently (nftables drops every packet, nothing is reset) and back,
// so failover tests and benchmarks can make a router vanish the way a failed network or
// firewall makes it vanish. It needs root, ip(8) and nft(8) (scripts/deps.sh test).
package netcut

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Namespace is a network namespace with a veth link to the host: HostAddr on the host's end,
// NSAddr on the namespace's end, both in TEST-NET-2 (198.51.100.0/24, never routed anywhere).
type Namespace struct {
	Name     string
	HostAddr string
	NSAddr   string
}

var seq atomic.Int64

// cutTable is the nftables table that drops everything but loopback inside the namespace.
const cutTable = "ztna_netcut"

// New creates the namespace and its link and deletes both when the test ends. Without root it
// skips the test.
func New(t testing.TB) *Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (scripts/deps.sh test installs it): %v", tool, err)
		}
	}
	n := seq.Add(1)
	// One /30 per namespace; the process id spreads concurrent test binaries over the /24.
	block := (os.Getpid()*7 + int(n)) % 64 * 4
	id := fmt.Sprintf("zfc%d-%d", os.Getpid()%100000, n)
	ns := &Namespace{Name: id, HostAddr: fmt.Sprintf("198.51.100.%d", block+1), NSAddr: fmt.Sprintf("198.51.100.%d", block+2)}
	hostIf, nsIf := "h"+id, "n"+id
	t.Cleanup(func() {
		// Deleting the namespace deletes its end of the veth, the host end with it, and the
		// namespace's nftables tables.
		_ = exec.Command("ip", "netns", "del", ns.Name).Run()
		_ = exec.Command("ip", "link", "del", hostIf).Run()
	})
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns.Name},
		{"addr", "add", ns.HostAddr + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", ns.Name, "addr", "add", ns.NSAddr + "/30", "dev", nsIf},
		{"-n", ns.Name, "link", "set", "lo", "up"},
		{"-n", ns.Name, "link", "set", nsIf, "up"},
	}
	for _, s := range steps {
		ip(t, s...)
	}
	return ns
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Exec is the command line that runs name with args inside the namespace (ip netns exec
// replaces itself with the command, so the process id is the command's).
func (ns *Namespace) Exec(name string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns.Name, name}, args...)
}

// HostListen listens on the host's end of the link (port 0: any), reachable from the host and
// from inside the namespace.
func (ns *Namespace) HostListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ns.HostAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Cut makes the namespace silent: every packet in or out except on its loopback is dropped,
// so peers see neither a reset nor a close, only silence.
func (ns *Namespace) Cut(t testing.TB) {
	t.Helper()
	ruleset := "table inet " + cutTable + ` {
	chain in { type filter hook input priority -300; policy drop; iif "lo" accept; }
	chain out { type filter hook output priority -300; policy drop; oif "lo" accept; }
}
`
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft (cut %s): %v\n%s", ns.Name, err, out)
	}
}

// Restore lifts the cut.
func (ns *Namespace) Restore(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", ns.Name, "nft", "delete", "table", "inet", cutTable).CombinedOutput(); err != nil {
		t.Fatalf("nft (restore %s): %v\n%s", ns.Name, err, out)
	}
}
