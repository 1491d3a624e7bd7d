package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/netns"
	"github.com/ztna/ztna/internal/testenv"
)

const testKey = "ztna-key-v1.eyJpZCI6InJrLTEiLCJzZWNyZXQiOiJzM2NyM3QifQ"

// The test binary doubles as the router and as a probe run inside the namespace.
func TestMain(m *testing.M) {
	switch os.Getenv("ZTNA_LOCAL_TEST_ROLE") {
	case "router":
		fakeRouter(os.Args[1], os.Args[2])
	case "dial":
		os.Exit(dial(os.Args[1]))
	case "dns":
		os.Exit(lookup(os.Args[1]))
	}
	goleak.VerifyTestMain(m) // fails the tests when a goroutine outlives them
}

// fakeRouter proves it got the key (by writing what it read next to it) and, when asked,
// listens on every address of its network, so a test can show that inbound is blocked.
func fakeRouter(keyFile, listen string) {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		fmt.Println("no key:", err)
		os.Exit(1)
	}
	os.WriteFile(keyFile+".seen", key, 0o600)
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		go serveLine(ln, "router")
	}
	select {}
}

// serveLine answers every connection to ln with line until ln is closed.
func serveLine(ln net.Listener, line string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, line)
		c.Close()
	}
}

// dial exits 0 when addr answers with a line.
func dial(addr string) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// lookup exits 0 when the DNS server at addr answers over UDP.
func lookup(addr string) int {
	m := new(dns.Msg)
	m.SetQuestion("db.customer.test.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil || len(r.Answer) == 0 {
		fmt.Println(err)
		return 1
	}
	return 0
}

func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func rules(t *testing.T, in egress.Input) []egress.Rule {
	t.Helper()
	if len(in.Controllers) == 0 {
		in.Controllers = []egress.ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{1}}}
	}
	r, err := egress.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newDriver(t *testing.T, opts Options) *Driver {
	t.Helper()
	if opts.StateRoot == "" {
		opts.StateRoot = t.TempDir()
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func routerCommand(t *testing.T, listen string) func(Launch) []string {
	exe := testBinary(t)
	return func(l Launch) []string {
		return []string{"env", "ZTNA_LOCAL_TEST_ROLE=router", exe, l.KeyFile, listen}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestProcessLifecycle(t *testing.T) {
	testenv.Integration(t, "router processes")
	d := newDriver(t, Options{Command: routerCommand(t, ""), StartupGrace: 100 * time.Millisecond})
	ctx := context.Background()
	spec := cloud.HostSpec{Name: "edge-a", RegistrationKey: testKey, Image: "ztna-router 1.0", Egress: rules(t, egress.Input{})}
	h, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(ctx, h.ID) })
	if h.ID != filepath.Join(d.opts.StateRoot, "edge-a") || h.State != "running" || h.InstanceType != "process" ||
		h.FailureDomain.Cloud != "local" || h.FailureDomain.Zone != "edge-a" || h.Image != "ztna-router 1.0" {
		t.Fatalf("host = %+v", h)
	}
	keyPath := filepath.Join(h.ID, "registration-key")
	waitFor(t, "the router to read its key", func() bool { b, _ := os.ReadFile(keyPath + ".seen"); return string(b) == testKey+"\n" })
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode())
	}
	st, err := loadState(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Process.PID))
	if strings.Contains(string(cmdline), testKey) {
		t.Error("key on the command line")
	}
	stateJSON, _ := os.ReadFile(filepath.Join(h.ID, stateFile))
	if strings.Contains(string(stateJSON), testKey) {
		t.Error("key in host.json")
	}

	if _, err := d.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), "already runs") || !errors.Is(err, cloud.ErrNameInUse) {
		t.Fatalf("second create: %v, want a name in use", err)
	}

	// A router identity survives a restart after the process died.
	identity := filepath.Join(h.ID, "router", "cert.pem")
	os.WriteFile(identity, []byte("enrolled"), 0o600)
	syscall.Kill(st.Process.PID, syscall.SIGKILL)
	waitFor(t, "the killed process to be reported gone", func() bool {
		_, err := d.Read(ctx, h.ID)
		return errors.Is(err, cloud.ErrNotFound)
	})
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(identity); string(b) != "enrolled" {
		t.Error("restart lost the router's state")
	}
	if _, err := d.Read(ctx, h.ID); err != nil {
		t.Fatalf("Read after restart: %v", err)
	}
	st2, _ := loadState(h.ID)

	if err := d.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if st2.Process.Alive() {
		t.Error("process still runs after Delete")
	}
	if _, err := os.Stat(h.ID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
	if _, err := d.Read(ctx, h.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Read after delete: %v", err)
	}
	if err := d.Delete(ctx, h.ID); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if err := d.Delete(ctx, "/etc"); err == nil {
		t.Error("Delete outside the state root was accepted")
	}
}

func TestStartupFailure(t *testing.T) {
	testenv.Integration(t, "a router command")
	// A shell that exits at once: the test binary itself starts too slowly under -race for a
	// short grace period.
	exit := []string{"/bin/sh", "-c", "echo 'router: invalid flag --bogus'; exit 2"}
	d := newDriver(t, Options{Command: func(Launch) []string { return exit }, StartupGrace: time.Second})
	_, err := d.Create(context.Background(), cloud.HostSpec{Name: "edge-b", RegistrationKey: testKey, Egress: rules(t, egress.Input{})})
	if err == nil || !strings.Contains(err.Error(), "invalid flag --bogus") {
		t.Fatalf("err = %v, want the router's log", err)
	}
	if _, err := os.Stat(filepath.Join(d.opts.StateRoot, "edge-b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed create left its directory: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"relative root", Options{StateRoot: "state", Command: routerCommand(t, "")}, "absolute"},
		{"no command", Options{StateRoot: t.TempDir()}, "no router command"},
		{"isolation", Options{StateRoot: t.TempDir(), Command: routerCommand(t, ""), Isolation: "vm"}, `use "none" or "netns"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRulesets(t *testing.T) {
	c := netConfig{HostTable: "ztna_01020304", Veth: netns.Veth{Namespace: "ztna-01020304", HostVeth: "zt01020304h", NSVeth: "zt01020304n",
		HostAddr: netip.MustParseAddr("10.231.0.1"), NSAddr: netip.MustParseAddr("10.231.0.2")}}
	r := rules(t, egress.Input{
		Controllers: []egress.ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{41000, 41001, 41002}}},
		DNSServers:  []string{"127.0.0.1:5353"},
		Services:    []egress.ServiceTarget{{Address: "10.20.0.0/16", Ports: []egress.PortRange{egress.Port(5432)}}},
	})
	ns, err := namespaceRuleset(c, r)
	if err != nil {
		t.Fatal(err)
	}
	wantNS := `table inet ztna
delete table inet ztna
table inet ztna {
	chain input {
		type filter hook input priority 0; policy drop;
		iifname "lo" accept
		ct state established,related accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
	}
	chain output {
		type filter hook output priority 0; policy drop;
		oifname "lo" accept
		ct state established,related accept
		ip daddr 10.20.0.0/16 tcp dport 5432 accept
		ip daddr 10.231.0.1 tcp dport { 5353, 41000-41002 } accept
		ip daddr 10.231.0.1 udp dport { 5353, 41000-41002 } accept
		reject with icmpx type admin-prohibited
	}
	chain nat_output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.1 tcp dport { 5353, 41000-41002 } dnat ip to 10.231.0.1
		ip daddr 127.0.0.1 udp dport { 5353, 41000-41002 } dnat ip to 10.231.0.1
	}
	chain nat_postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "zt01020304n" ip saddr 127.0.0.0/8 masquerade
	}
}
`
	if ns != wantNS {
		t.Errorf("namespace ruleset:\n%s\nwant:\n%s", ns, wantNS)
	}
	host, err := hostRuleset(c, r)
	if err != nil {
		t.Fatal(err)
	}
	wantHost := `table ip ztna_01020304
delete table ip ztna_01020304
table ip ztna_01020304 {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		iifname "zt01020304h" ip daddr 10.231.0.1 tcp dport { 5353, 41000-41002 } dnat to 127.0.0.1
		iifname "zt01020304h" ip daddr 10.231.0.1 udp dport { 5353, 41000-41002 } dnat to 127.0.0.1
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 10.231.0.2 oifname != "zt01020304h" masquerade
	}
}
`
	if host != wantHost {
		t.Errorf("host ruleset:\n%s\nwant:\n%s", host, wantHost)
	}
	for _, bad := range []string{"127.0.0.2", "127.0.0.0/8", "::1"} {
		r, err := egress.Normalize([]egress.Rule{{Destination: bad, Protocol: egress.TCP, Ports: egress.Port(1)}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = namespaceRuleset(c, r)
		if err == nil || !strings.Contains(err.Error(), "only at 127.0.0.1") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func TestAllocateSkipsUsedAddresses(t *testing.T) {
	// 127.0.0.0/30 overlaps the loopback interface's 127.0.0.1/8, so the first free block of
	// the pool 127.0.0.0/29... does not exist: every block overlaps 127/8.
	if _, _, err := allocate(netip.MustParsePrefix("127.0.0.0/29"), 0); err == nil || !strings.Contains(err.Error(), "no free /30") {
		t.Fatalf("err = %v", err)
	}
	h, n, err := allocate(netip.MustParsePrefix("10.231.0.0/16"), 5)
	if err != nil {
		t.Fatal(err)
	}
	if h != netip.MustParseAddr("10.231.0.21") || n != netip.MustParseAddr("10.231.0.22") {
		t.Fatalf("allocate = %s, %s", h, n)
	}
}

// RouterCommand bootstraps from the key file, then becomes the run process (exec), so the
// tracked pid is the router's.
func TestRouterCommand(t *testing.T) {
	testenv.Integration(t, "router processes")
	dir := t.TempDir()
	bin := filepath.Join(dir, "ztna-router")
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\nif [ \"$1\" = run ]; then exec sleep 60; fi\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, Options{Command: RouterCommand(bin, "--local-addr", "127.0.0.1:0"), StartupGrace: 200 * time.Millisecond})
	ctx := context.Background()
	h, err := d.Create(ctx, cloud.HostSpec{Name: "edge-c", RegistrationKey: testKey, Egress: rules(t, egress.Input{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(ctx, h.ID) })
	waitFor(t, "both commands", func() bool { b, _ := os.ReadFile(calls); return strings.Count(string(b), "\n") == 2 })
	b, _ := os.ReadFile(calls)
	want := fmt.Sprintf("bootstrap --from-metadata file --key-file %s/registration-key --state-dir %s/router --failure-domain %s\nrun --state-dir %s/router --local-addr 127.0.0.1:0\n",
		h.ID, h.ID, h.FailureDomain, h.ID)
	if string(b) != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", b, want)
	}
	st, _ := loadState(h.ID)
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.Process.PID)); strings.TrimSpace(string(comm)) != "sleep" {
		t.Errorf("tracked process is %q, want the run process", comm)
	}
}

// TestRestartForAnotherRouter: a host restarted for the router it was enrolled as keeps its
// enrolment; restarted for another router (the old one deleted and re-created under a new
// id, its certificate revoked) it starts without the saved enrolment, so the router enrols
// with the new key.
func TestRestartForAnotherRouter(t *testing.T) {
	d := newDriver(t, Options{Command: routerCommand(t, ""), StartupGrace: 100 * time.Millisecond})
	ctx := context.Background()
	spec := cloud.HostSpec{Name: "edge-r", RegistrationKey: testKey, RouterID: "router-1", Egress: rules(t, egress.Input{})}
	identity := ""
	restart := func(spec cloud.HostSpec) {
		t.Helper()
		st, err := loadState(filepath.Join(d.opts.StateRoot, spec.Name))
		if err != nil {
			t.Fatal(err)
		}
		syscall.Kill(st.Process.PID, syscall.SIGKILL)
		waitFor(t, "the killed process to be reported gone", func() bool {
			_, err := d.Read(ctx, filepath.Join(d.opts.StateRoot, spec.Name))
			return errors.Is(err, cloud.ErrNotFound)
		})
		if _, err := d.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	h, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(ctx, h.ID) })
	identity = filepath.Join(h.ID, "router", "cert.pem")
	os.WriteFile(identity, []byte("enrolled as router-1"), 0o600)

	restart(spec)
	if b, _ := os.ReadFile(identity); string(b) != "enrolled as router-1" {
		t.Fatal("a restart for the same router lost its enrolment")
	}
	spec.RouterID = "router-2"
	restart(spec)
	if _, err := os.Stat(identity); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a restart for another router kept the old enrolment (%v)", err)
	}
	if st, _ := loadState(h.ID); st.RouterID != "router-2" {
		t.Errorf("host.json names router %q, want router-2", st.RouterID)
	}
}
