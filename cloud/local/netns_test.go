package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/netns"
	"github.com/ztna/ztna/internal/testenv"
)

func requireNetns(t *testing.T) {
	t.Helper()
	if err := checkNetnsTools(); err != nil {
		t.Skipf("netns isolation unavailable: %v", err)
	}
}

// lineServer answers every TCP connection with one line, on 127.0.0.1 or all addresses.
func lineServer(t *testing.T, addr string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveLine(ln, "hello")
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// dnsServer is a real DNS server on 127.0.0.1 (UDP) answering A queries.
func dnsServer(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 20, 0, 5)})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// inNamespace runs the test binary in role inside ns and reports whether it succeeded.
func inNamespace(t *testing.T, ns, role, arg string) (bool, string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "env", "ZTNA_LOCAL_TEST_ROLE="+role, testBinary(t), arg).CombinedOutput()
	return err == nil, strings.TrimSpace(string(out))
}

func TestNetnsIsolation(t *testing.T) {
	testenv.Integration(t, "network namespaces and router processes")
	requireNetns(t)
	allowed := lineServer(t, "127.0.0.1:0")
	blocked := lineServer(t, "127.0.0.1:0")
	onAllAddrs := lineServer(t, "0.0.0.0:0")
	allowedDNS, blockedDNS := dnsServer(t), dnsServer(t)

	const routerPort = "7070"
	d := newDriver(t, Options{
		Command: routerCommand(t, ":"+routerPort), Isolation: IsolationNetns,
		DNSServers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, StartupGrace: 200 * time.Millisecond,
	})
	ctx := context.Background()
	h, err := d.Create(ctx, cloud.HostSpec{Name: "edge-ns", RegistrationKey: testKey, Egress: rules(t, egress.Input{
		Controllers: []egress.ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{allowed}}},
		DNSServers:  []string{"127.0.0.1:" + strconv.Itoa(int(allowedDNS)), "127.0.0.1"},
	})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(ctx, h.ID) })
	st, err := loadState(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	ns := st.Net.Namespace
	if h.PrivateAddress != st.Net.NSAddr.String() || len(h.Drift) != 0 {
		t.Fatalf("host = %+v", h)
	}
	waitFor(t, "the router to start", func() bool { ok, _ := inNamespace(t, ns, "dial", "127.0.0.1:"+routerPort); return ok })
	if b, _ := os.ReadFile(filepath.Join(h.ID, "registration-key.seen")); string(b) != testKey+"\n" {
		t.Errorf("router read key %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join("/etc/netns", ns, "resolv.conf")); string(b) != "nameserver 127.0.0.1\n" {
		t.Errorf("namespace resolv.conf = %q", b)
	}

	// Outbound from inside: the allowlisted loopback target and DNS server work, the rest fails.
	probes := []struct {
		name, role, target string
		want               bool
	}{
		{"allowed controller port on host loopback", "dial", fmt.Sprintf("127.0.0.1:%d", allowed), true},
		{"allowed DNS server (udp)", "dns", fmt.Sprintf("127.0.0.1:%d", allowedDNS), true},
		{"other port on host loopback", "dial", fmt.Sprintf("127.0.0.1:%d", blocked), false},
		{"other DNS server", "dns", fmt.Sprintf("127.0.0.1:%d", blockedDNS), false},
		{"host service via the veth address", "dial", fmt.Sprintf("%s:%d", st.Net.HostAddr, onAllAddrs), false},
	}
	for _, p := range probes {
		if ok, out := inNamespace(t, ns, p.role, p.target); ok != p.want {
			t.Errorf("%s (%s): reachable=%v, want %v (%s)", p.name, p.target, ok, p.want, out)
		}
	}

	// Inbound: the router listens on every address of its namespace (it answered on its own
	// loopback above), yet the host cannot connect to it.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(h.PrivateAddress, routerPort), time.Second); err == nil {
		c.Close()
		t.Error("connected into the router namespace from the host")
	}

	// Removing the namespace firewall out of band is drift.
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", nsTable).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got, err := d.Read(ctx, h.ID)
	if err != nil || len(got.Drift) != 1 || !strings.Contains(got.Drift[0], "not confined") {
		t.Errorf("Read = %+v, %v; want drift", got, err)
	}

	if err := d.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, *st.Net)
	if st.Process.Alive() {
		t.Error("router process survived Delete")
	}
}

func assertNetworkGone(t *testing.T, c netConfig) {
	t.Helper()
	if netns.Exists(c.Namespace) {
		t.Errorf("namespace %s left", c.Namespace)
	}
	if _, err := net.InterfaceByName(c.HostVeth); err == nil {
		t.Errorf("veth %s left", c.HostVeth)
	}
	if tableExists(context.Background(), c.HostTable) {
		t.Errorf("host table %s left", c.HostTable)
	}
	if _, err := os.Stat(filepath.Join("/etc/netns", c.Namespace)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/netns/%s left", c.Namespace)
	}
}

// Two namespaced hosts get distinct addresses, and a dead one is rebuilt by Create.
func TestNetnsTwoHostsAndRestart(t *testing.T) {
	testenv.Integration(t, "network namespaces and router processes")
	requireNetns(t)
	ctrl := lineServer(t, "127.0.0.1:0")
	d := newDriver(t, Options{Command: routerCommand(t, ""), Isolation: IsolationNetns, StartupGrace: 100 * time.Millisecond})
	ctx := context.Background()
	r := rules(t, egress.Input{Controllers: []egress.ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{ctrl}}}})
	var nets []netConfig
	for _, name := range []string{"edge-1", "edge-2"} {
		h, err := d.Create(ctx, cloud.HostSpec{Name: name, RegistrationKey: testKey, Egress: r})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Delete(ctx, h.ID) })
		st, _ := loadState(h.ID)
		nets = append(nets, *st.Net)
		if ok, out := inNamespace(t, st.Net.Namespace, "dial", fmt.Sprintf("127.0.0.1:%d", ctrl)); !ok {
			t.Errorf("%s cannot reach the controller: %s", name, out)
		}
	}
	if nets[0].HostAddr == nets[1].HostAddr || nets[0].Namespace == nets[1].Namespace {
		t.Fatalf("hosts share network config: %+v", nets)
	}

	id := filepath.Join(d.opts.StateRoot, "edge-1")
	st, _ := loadState(id)
	if err := exec.Command("kill", "-9", strconv.Itoa(st.Process.PID)).Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drift", func() bool { _, err := d.Read(ctx, id); return errors.Is(err, cloud.ErrNotFound) })
	if _, err := d.Create(ctx, cloud.HostSpec{Name: "edge-1", RegistrationKey: testKey, Egress: r}); err != nil {
		t.Fatal(err)
	}
	st2, _ := loadState(id)
	if ok, out := inNamespace(t, st2.Net.Namespace, "dial", fmt.Sprintf("127.0.0.1:%d", ctrl)); !ok {
		t.Errorf("restarted host cannot reach the controller: %s", out)
	}
	for _, name := range []string{"edge-1", "edge-2"} {
		if err := d.Delete(ctx, filepath.Join(d.opts.StateRoot, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range nets {
		assertNetworkGone(t, c)
	}
}

// TestNetnsEgressInPlace: a new allowlist reaches the running namespace without a restart
// (same process, same namespace): the added target becomes reachable and the removed one not;
// an accept rule inserted into the namespace's chain out of band is drift, and the next update
// removes it. (The inserted rule opens every destination but the host's loopback, which
// needs the NAT rules of an allowed port.)
func TestNetnsEgressInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: network namespaces and nftables")
	}
	requireNetns(t)
	first := lineServer(t, "127.0.0.1:0")
	second := lineServer(t, "127.0.0.1:0")
	d := newDriver(t, Options{Command: routerCommand(t, ":7071"), Isolation: IsolationNetns, StartupGrace: 200 * time.Millisecond})
	ctx := context.Background()
	allow := func(port uint16) []egress.Rule {
		return rules(t, egress.Input{Controllers: []egress.ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{port}}}})
	}
	h, err := d.Create(ctx, cloud.HostSpec{Name: "edge-up", RegistrationKey: testKey, Egress: allow(first)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(ctx, h.ID) })
	st, err := loadState(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	ns := st.Net.Namespace
	reachable := func(port uint16) bool {
		ok, _ := inNamespace(t, ns, "dial", fmt.Sprintf("127.0.0.1:%d", port))
		return ok
	}
	if !reachable(first) || reachable(second) {
		t.Fatal("before the update: want the first target only")
	}
	if drift, err := d.EgressDrift(ctx, h.ID, allow(first)); err != nil || len(drift) != 0 {
		t.Fatalf("drift of a new host = %q, %v", drift, err)
	}

	if err := d.UpdateEgress(ctx, h.ID, allow(second)); err != nil {
		t.Fatal(err)
	}
	if reachable(first) || !reachable(second) {
		t.Error("after the update: want the second target only")
	}
	after, err := loadState(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Process != st.Process || !after.Process.Alive() || *after.Net != *st.Net {
		t.Errorf("the update restarted the router or rebuilt the namespace: %+v, was %+v", after, st)
	}
	if drift, err := d.EgressDrift(ctx, h.ID, allow(second)); err != nil || len(drift) != 0 {
		t.Fatalf("drift after the update = %q, %v", drift, err)
	}
	if drift, _ := d.EgressDrift(ctx, h.ID, allow(first)); len(drift) == 0 {
		t.Error("no drift against the old allowlist")
	}

	// Someone opens the namespace with an accept-all rule at the top of its output chain.
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "insert", "rule", "inet", nsTable, "output", "accept").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	drift, err := d.EgressDrift(ctx, h.ID, allow(second))
	if err != nil || len(drift) != 1 || !strings.Contains(drift[0], "changed outside Terraform") || !strings.Contains(drift[0], "+ accept") {
		t.Fatalf("drift with an inserted accept rule = %q, %v", drift, err)
	}
	if err := d.UpdateEgress(ctx, h.ID, allow(second)); err != nil {
		t.Fatal(err)
	}
	if live, _ := namespaceFirewall(ctx, ns); strings.Contains(live, "\t\taccept\n") {
		t.Errorf("the update left the inserted accept rule:\n%s", live)
	}
	if drift, err := d.EgressDrift(ctx, h.ID, allow(second)); err != nil || len(drift) != 0 {
		t.Fatalf("drift after the repair = %q, %v", drift, err)
	}
}
