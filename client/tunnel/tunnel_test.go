package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/router/dnstest"
)

// fakeOverlay stands in for the SDK client: it lists the services the test sets and "dials"
// a service target by connecting to a real local TCP server standing in for it.
type fakeOverlay struct {
	mu       sync.Mutex
	services []client.Service
	backends map[string]string // "host:port" as dialed → real address
	listErr  error
	dialed   []string
}

func (f *fakeOverlay) set(services []client.Service, backends map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services, f.backends = services, backends
}

func (f *fakeOverlay) failListing(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

func (f *fakeOverlay) Services(context.Context) ([]client.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]client.Service(nil), f.services...), nil
}

func (f *fakeOverlay) Dial(ctx context.Context, target string) (net.Conn, error) {
	f.mu.Lock()
	backend, ok := f.backends[target]
	f.dialed = append(f.dialed, target)
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("ztna: dial %s: %w", target, client.ErrNotAuthorized)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", backend)
}

// echoServer runs a TCP echo server (half-close aware) until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	return nettest.Serve(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}).String()
}

func svc(name, address string, port int, ranges ...control.PortRange) client.Service {
	return client.Service{Name: name, Address: address, Port: port, PortRanges: ranges, Protocol: "tcp"}
}

func start(t *testing.T, f *fakeOverlay, upstream string) *Tunnel {
	t.Helper()
	tun, err := Start(context.Background(), Config{
		Overlay: f, DNSListen: "127.0.0.1:0", Upstream: upstream, Refresh: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

// query asks the tunnel's DNS server over network ("udp" or "tcp").
func query(t *testing.T, tun *Tunnel, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, tun.DNSAddr())
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// resolveA returns the A record's address, or the rcode when there is none.
func resolveA(t *testing.T, tun *Tunnel, name string) (netip.Addr, int) {
	t.Helper()
	r := query(t, tun, "udp", name, dns.TypeA)
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A.To4())
			return addr, r.Rcode
		}
	}
	return netip.Addr{}, r.Rcode
}

func echoThrough(addr string, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestNamesResolveLocallyAndConnectionsCrossTheOverlay(t *testing.T) {
	upstream := dnstest.Start(t, map[string]string{"www.elsewhere.example": "192.0.2.7", "prod-db.customerdomain.me": "198.51.100.1"})
	echo := echoServer(t)
	f := &fakeOverlay{}
	f.set([]client.Service{
		svc("db", "Prod-DB.CustomerDomain.me", 5432),
		svc("api", "api.customerdomain.me", 8443, control.PortRange{From: 9000, To: 9002}),
	}, map[string]string{
		"Prod-DB.CustomerDomain.me:5432": echo,
		"api.customerdomain.me:8443":     echo,
		"api.customerdomain.me:9001":     echo,
	})
	tun := start(t, f, upstream.Addr)

	db, rcode := resolveA(t, tun, "prod-db.customerdomain.me")
	if rcode != dns.RcodeSuccess || !DefaultPool.Contains(db) {
		t.Fatalf("service name resolved to %v (rcode %s), want an address in %s", db, dns.RcodeToString[rcode], DefaultPool)
	}
	api, _ := resolveA(t, tun, "API.customerdomain.me.")
	if !DefaultPool.Contains(api) || api == db {
		t.Fatalf("second service resolved to %v (first %v): want its own pool address", api, db)
	}
	// Same answer over TCP.
	if r := query(t, tun, "tcp", "prod-db.customerdomain.me", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != db.String() {
		t.Fatalf("TCP answer %v", r.Answer)
	}
	// The name is the tunnel's: no IPv6 address from upstream that would bypass the overlay.
	if r := query(t, tun, "udp", "prod-db.customerdomain.me", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("AAAA: rcode %s answer %v, want an empty NOERROR", dns.RcodeToString[r.Rcode], r.Answer)
	}
	rev, _ := dns.ReverseAddr(db.String())
	if r := query(t, tun, "udp", rev, dns.TypePTR); len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "prod-db.customerdomain.me." {
		t.Fatalf("PTR %s: %v", rev, r.Answer)
	}

	// Other names go to the upstream resolver.
	if a, rcode := resolveA(t, tun, "www.elsewhere.example"); a.String() != "192.0.2.7" || rcode != dns.RcodeSuccess {
		t.Fatalf("forwarded name: %v %s", a, dns.RcodeToString[rcode])
	}
	if _, rcode := resolveA(t, tun, "nothing.example"); rcode != dns.RcodeNameError {
		t.Fatalf("unknown name: rcode %s, want the upstream's NXDOMAIN", dns.RcodeToString[rcode])
	}

	// Connections on each exposed port cross the overlay to the service's name and port.
	for _, tc := range []struct {
		addr   netip.Addr
		port   int
		target string
	}{
		{db, 5432, "Prod-DB.CustomerDomain.me:5432"},
		{api, 8443, "api.customerdomain.me:8443"},
		{api, 9001, "api.customerdomain.me:9001"},
	} {
		got, err := echoThrough(netip.AddrPortFrom(tc.addr, uint16(tc.port)).String(), "hello "+tc.target)
		if err != nil || got != "hello "+tc.target {
			t.Fatalf("through %v:%d: %q, %v", tc.addr, tc.port, got, err)
		}
	}
	// Ports the service does not expose have no listener.
	if _, err := net.DialTimeout("tcp", netip.AddrPortFrom(db, 5433).String(), time.Second); err == nil {
		t.Fatal("a port the service does not expose accepted a connection")
	}
}

// A dial the overlay refuses (here: not authorized) resets the local connection, so the
// program sees a failure rather than an empty, clean response.
func TestRefusedDialResetsTheConnection(t *testing.T) {
	f := &fakeOverlay{}
	f.set([]client.Service{svc("db", "db.example", 5432)}, nil)
	tun := start(t, f, dnstest.Start(t, nil).Addr)
	a, _ := resolveA(t, tun, "db.example")
	c, err := net.Dial("tcp", netip.AddrPortFrom(a, 5432).String())
	if err == nil { // the reset may come before or after the connection is established
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a refused dial: %v, want connection reset", err)
	}
}

// New and removed services, policies granted and revoked (the hub's list changes either way)
// take effect within a second: a new name resolves and listens; a removed one is forwarded
// like any unknown name (NXDOMAIN here) and its listener closes.
func TestServiceListChangesApplyLive(t *testing.T) {
	upstream := dnstest.Start(t, nil)
	echo := echoServer(t)
	f := &fakeOverlay{}
	tun := start(t, f, upstream.Addr)
	if _, rcode := resolveA(t, tun, "db.example"); rcode != dns.RcodeNameError {
		t.Fatalf("before any service: rcode %s", dns.RcodeToString[rcode])
	}

	f.set([]client.Service{svc("db", "db.example", 5432)}, map[string]string{"db.example:5432": echo})
	var addr netip.Addr
	waitFor(t, time.Second, "the new service to resolve", func() bool {
		addr, _ = resolveA(t, tun, "db.example")
		return addr.IsValid()
	})
	if got, err := echoThrough(netip.AddrPortFrom(addr, 5432).String(), "x"); err != nil || got != "x" {
		t.Fatalf("new service: %q %v", got, err)
	}

	f.set(nil, nil)
	waitFor(t, time.Second, "the removed service to stop resolving and listening", func() bool {
		_, rcode := resolveA(t, tun, "db.example")
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, 5432).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return rcode == dns.RcodeNameError && err != nil
	})

	// Back again: the same address (stable per name).
	f.set([]client.Service{svc("db", "db.example", 5432)}, map[string]string{"db.example:5432": echo})
	waitFor(t, time.Second, "the service to come back", func() bool {
		again, _ := resolveA(t, tun, "db.example")
		return again == addr
	})
}

// When the hub cannot be asked, the last list keeps being served (dials will tell the
// program what is wrong); the tunnel reports itself unhealthy.
func TestFailedRefreshKeepsTheLastList(t *testing.T) {
	f := &fakeOverlay{}
	f.set([]client.Service{svc("db", "db.example", 5432)}, nil)
	tun, err := Start(context.Background(), Config{
		Overlay: f, DNSListen: "127.0.0.1:0", Upstream: dnstest.Start(t, nil).Addr,
		Refresh: 20 * time.Millisecond, DialTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if !tun.Healthy() {
		t.Fatal("unhealthy right after start")
	}
	f.failListing(client.ErrNoHub)
	waitFor(t, 2*time.Second, "the tunnel to report the failure", func() bool {
		return !tun.Healthy() && errors.Is(tun.Status().LastError, client.ErrNoHub)
	})
	if a, _ := resolveA(t, tun, "db.example"); !a.IsValid() {
		t.Fatal("the name vanished while the hub was unreachable")
	}
}

func TestStartRefusesBadSettings(t *testing.T) {
	upstream := dnstest.Start(t, nil).Addr
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ok := &fakeOverlay{}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no overlay", Config{Upstream: upstream}, "no overlay"},
		{"no upstream", Config{Overlay: ok}, "no upstream"},
		{"bad upstream", Config{Overlay: ok, Upstream: "10.0.0.1"}, "must be host:port"},
		{"upstream port 0", Config{Overlay: ok, Upstream: "10.0.0.1:0"}, "port must be 1-65535"},
		{"bad listen", Config{Overlay: ok, Upstream: upstream, DNSListen: "localhost"}, "must be host:port"},
		{"listen taken", Config{Overlay: ok, Upstream: upstream, DNSListen: taken.LocalAddr().String()}, "address already in use"},
		{"IPv6 pool", Config{Overlay: ok, Upstream: upstream, DNSListen: "127.0.0.1:0", Pool: netip.MustParsePrefix("fd00::/64")}, "IPv4 prefix"},
		{"IPv4 pool6", Config{Overlay: ok, Upstream: upstream, DNSListen: "127.0.0.1:0", Pool6: netip.MustParsePrefix("127.78.0.0/16")}, "must be an IPv6 prefix"},
		{"tiny pool", Config{Overlay: ok, Upstream: upstream, DNSListen: "127.0.0.1:0", Pool: netip.MustParsePrefix("127.77.0.1/32")}, "too small"},
		{"refused identity", Config{Overlay: &fakeOverlay{listErr: errors.New("remote error: tls: bad certificate")}, Upstream: upstream, DNSListen: "127.0.0.1:0"}, "bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tun, err := Start(context.Background(), tc.cfg)
			if err == nil {
				tun.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// The tunnel refuses to forward to itself.
func TestUpstreamLoopRefused(t *testing.T) {
	for _, tc := range []struct {
		own, upstream string
		loops         bool
	}{
		{"127.0.0.1:5353", "127.0.0.1:5353", true},
		{"0.0.0.0:5353", "127.0.0.1:5353", true},
		{"127.0.0.1:5353", "127.0.0.1:53", false},
		{"127.0.0.1:5353", "127.0.0.2:5353", false},
		{"127.0.0.1:5353", "dns.example:5353", false},
	} {
		if got := upstreamLoops(tc.own, tc.upstream); got != tc.loops {
			t.Errorf("own %s upstream %s: loops %v, want %v", tc.own, tc.upstream, got, tc.loops)
		}
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		_, err = Start(context.Background(), Config{Overlay: &fakeOverlay{}, DNSListen: addr, Upstream: addr})
		if err != nil && strings.Contains(err.Error(), "address already in use") && attempt < 10 {
			continue // the free UDP port is taken for TCP
		}
		if err == nil || !strings.Contains(err.Error(), "own DNS address") {
			t.Fatalf("start with itself as upstream: %v", err)
		}
		return
	}
}

// A dead upstream gives SERVFAIL, not silence.
func TestUpstreamFailureIsServfail(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String() // bound but never answering
	defer pc.Close()
	tun, err := Start(context.Background(), Config{
		Overlay: &fakeOverlay{}, DNSListen: "127.0.0.1:0", Upstream: dead, UpstreamTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	start := time.Now()
	if r := query(t, tun, "udp", "anything.example", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

// Services the tunnel cannot carry are not served; a huge port range is capped.
func TestUnservableServicesAreSkipped(t *testing.T) {
	f := &fakeOverlay{}
	f.set([]client.Service{
		svc("by-ip", "10.1.2.3", 22),
		{Name: "udp", Address: "dns.example", Port: 53, Protocol: "udp"},
		svc("wide", "wide.example", 20000, control.PortRange{From: 20001, To: 29999}),
	}, nil)
	tun, err := Start(context.Background(), Config{
		Overlay: f, DNSListen: "127.0.0.1:0", Upstream: dnstest.Start(t, nil).Addr, MaxPortsPerName: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	names := tun.Status().Names
	if len(names) != 1 || !names["wide.example."].IsValid() {
		t.Fatalf("served %v, want only wide.example", names)
	}
	a := names["wide.example."]
	for port, listening := range map[int]bool{20000: true, 20007: true, 20008: false} {
		// No backend: a listening port accepts and then resets; others refuse the connection.
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, uint16(port)).String(), time.Second)
		if err == nil {
			c.Close()
		}
		if got := !errors.Is(err, syscall.ECONNREFUSED); got != listening {
			t.Errorf("port %d: listening %v, want %v (%v)", port, got, listening, err)
		}
	}
}

func TestPoolAddressesAreStablePerName(t *testing.T) {
	p1, _ := newPool(DefaultPool)
	p2, _ := newPool(DefaultPool)
	a1, _ := p1.assign("db.example.")
	p2.assign("api.example.")
	a2, _ := p2.assign("db.example.")
	if a1 != a2 {
		t.Fatalf("db.example got %v and %v in two pools", a1, a2)
	}
	// A /30 has two usable addresses: the third name finds the pool exhausted.
	small, err := newPool(netip.MustParsePrefix("127.88.0.0/30"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for _, n := range []string{"a.", "b."} {
		a, err := small.assign(n)
		if err != nil || seen[a] || a.String() == "127.88.0.0" || a.String() == "127.88.0.3" {
			t.Fatalf("assign %s: %v %v", n, a, err)
		}
		seen[a] = true
	}
	if _, err := small.assign("c."); err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("third name in a /30: %v", err)
	}
	small.release("a.")
	if _, err := small.assign("c."); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestSystemUpstream(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := dir + "/resolv" + strconv.Itoa(len(content))
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ content, want, err string }{
		{"nameserver 10.0.0.2\nnameserver 10.0.0.3\n", "10.0.0.2:53", ""},
		{"# comment\nsearch corp\nnameserver fd00::53\n", "[fd00::53]:53", ""},
		{"search corp\n", "", "names no nameserver"},
	} {
		got, err := SystemUpstream(write(tc.content))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want error %q", tc.content, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.content, got, err, tc.want)
		}
	}
	if _, err := SystemUpstream(dir + "/missing"); err == nil {
		t.Error("missing file accepted")
	}
}

func TestPortsString(t *testing.T) {
	for _, tc := range []struct {
		ports []int
		want  string
	}{
		{[]int{80}, "80"},
		{[]int{80, 443, 8000, 8001, 8002, 9000}, "80,443,8000-8002,9000"},
		{nil, ""},
	} {
		if got := portsString(tc.ports); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.ports, got, tc.want)
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two tunnels on one host (two identities, say) serving the same name from the same pool: the
// second moves to another address instead of failing on the first's.
func TestSecondTunnelOnTheHostTakesAnotherAddress(t *testing.T) {
	upstream := dnstest.Start(t, nil).Addr
	echo := echoServer(t)
	var addrs []netip.Addr
	for range 2 {
		f := &fakeOverlay{}
		f.set([]client.Service{svc("db", "db.example", 5432)}, map[string]string{"db.example:5432": echo})
		tun := start(t, f, upstream)
		a, _ := resolveA(t, tun, "db.example")
		if got, err := echoThrough(netip.AddrPortFrom(a, 5432).String(), "ok"); err != nil || got != "ok" {
			t.Fatalf("tunnel serving db.example on %v: %q %v", a, got, err)
		}
		addrs = append(addrs, a)
	}
	if addrs[0] == addrs[1] {
		t.Fatalf("both tunnels answer %v", addrs[0])
	}
}

// A service that gains and loses ports keeps its address; listeners follow the ports.
func TestPortChangesFollowTheService(t *testing.T) {
	echo := echoServer(t)
	backends := map[string]string{"db.example:5432": echo, "db.example:5433": echo}
	f := &fakeOverlay{}
	f.set([]client.Service{svc("db", "db.example", 5432)}, backends)
	tun := start(t, f, dnstest.Start(t, nil).Addr)
	a, _ := resolveA(t, tun, "db.example")
	listening := func(port int) bool {
		_, err := echoThrough(netip.AddrPortFrom(a, uint16(port)).String(), "x")
		return err == nil
	}
	f.set([]client.Service{svc("db", "db.example", 5432, control.PortRange{From: 5433, To: 5433})}, backends)
	waitFor(t, time.Second, "the added port to listen", func() bool { return listening(5433) && listening(5432) })
	f.set([]client.Service{svc("db", "db.example", 5433)}, backends)
	waitFor(t, time.Second, "the removed port to close", func() bool { return !listening(5432) && listening(5433) })
	if again, _ := resolveA(t, tun, "db.example"); again != a {
		t.Fatalf("address moved from %v to %v", a, again)
	}
}

// pushOverlay is a fakeOverlay whose hub pushes service lists: each list sent on lists reaches
// the tunnel through WatchServices; watchErr, when set, is returned at once instead.
type pushOverlay struct {
	*fakeOverlay
	lists    chan []client.Service
	watchErr error
	watches  atomic.Int32
}

func (p *pushOverlay) WatchServices(ctx context.Context, fn func([]client.Service)) error {
	p.watches.Add(1)
	if p.watchErr != nil {
		return p.watchErr
	}
	fn(nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-p.lists:
			fn(l)
		}
	}
}

// With a hub that pushes, changes apply without polling: the refresh interval here is an hour.
func TestPushedChangesApplyWithoutPolling(t *testing.T) {
	echo := echoServer(t)
	p := &pushOverlay{fakeOverlay: &fakeOverlay{}, lists: make(chan []client.Service)}
	p.set(nil, map[string]string{"db.example:5432": echo})
	tun, err := Start(context.Background(), Config{
		Overlay: p, DNSListen: "127.0.0.1:0", Upstream: dnstest.Start(t, nil).Addr, Refresh: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	p.lists <- []client.Service{svc("db", "db.example", 5432)}
	var addr netip.Addr
	waitFor(t, time.Second, "the pushed service to resolve", func() bool {
		addr, _ = resolveA(t, tun, "db.example")
		return addr.IsValid()
	})
	if got, err := echoThrough(netip.AddrPortFrom(addr, 5432).String(), "x"); err != nil || got != "x" {
		t.Fatalf("pushed service: %q %v", got, err)
	}
	if st := tun.Status(); !st.Watching || !tun.Healthy() {
		t.Fatalf("status %+v, healthy %v", st, tun.Healthy())
	}
	p.lists <- nil
	waitFor(t, time.Second, "the withdrawn service to stop resolving", func() bool {
		_, rcode := resolveA(t, tun, "db.example")
		return rcode == dns.RcodeNameError
	})
}

// A hub that cannot push is polled every refresh interval.
func TestWatchUnsupportedFallsBackToPolling(t *testing.T) {
	upstream := dnstest.Start(t, nil)
	p := &pushOverlay{fakeOverlay: &fakeOverlay{}, watchErr: fmt.Errorf("ztna: watch services: %w", client.ErrWatchUnsupported)}
	tun, err := Start(context.Background(), Config{
		Overlay: p, DNSListen: "127.0.0.1:0", Upstream: upstream.Addr, Refresh: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	p.set([]client.Service{svc("db", "db.example", 5432)}, nil)
	waitFor(t, time.Second, "the polled service to resolve", func() bool {
		a, _ := resolveA(t, tun, "db.example")
		return a.IsValid()
	})
	if n := p.watches.Load(); n != 1 {
		t.Fatalf("watch tried %d times after the hub said it cannot push", n)
	}
	if tun.Status().Watching {
		t.Fatal("reports watching without a push")
	}
}

// errHubDown is how the SDK fails while no hub can be reached.
var errHubDown = fmt.Errorf("ztna: list services: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})

// TestStartsWithoutAHub: a tunnel that starts while the hub is unreachable serves the names of
// its saved list (or, with none, answers SERVFAIL), says why it is not healthy, and takes up
// the hub's list as soon as the hub answers.
func TestStartsWithoutAHub(t *testing.T) {
	upstream := dnstest.Start(t, map[string]string{"www.elsewhere.example": "192.0.2.7"}).Addr
	saved := filepath.Join(t.TempDir(), "app.identity.services")
	db := client.Service{Name: "db", Address: "prod-db.customerdomain.me", Port: 5432, Protocol: "tcp"}

	// First run, hub up: the list is saved (0600).
	f := &fakeOverlay{}
	f.set([]client.Service{db}, nil)
	first, err := Start(context.Background(), Config{Overlay: f, DNSListen: "127.0.0.1:0", Upstream: upstream, SavedList: saved, Refresh: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved list: %v %v, want a 0600 file", fi, err)
	}

	t.Run("saved list", func(t *testing.T) {
		down := &fakeOverlay{listErr: errHubDown}
		tun, err := Start(context.Background(), Config{Overlay: down, DNSListen: "127.0.0.1:0", Upstream: upstream, SavedList: saved, Refresh: 50 * time.Millisecond})
		if err != nil {
			t.Fatalf("start with the hub down: %v", err)
		}
		defer tun.Close()
		if r := query(t, tun, "udp", db.Address, dns.TypeA); len(r.Answer) != 1 {
			t.Fatalf("saved name not served: %v", r)
		}
		if st := tun.Status(); !st.FromSaved || tun.Healthy() {
			t.Fatalf("status %+v healthy %v: want serving the saved list, not healthy", st, tun.Healthy())
		}
		// The hub answers, with a new list: the tunnel follows it.
		api := client.Service{Name: "api", Address: "api.customerdomain.me", Port: 443, Protocol: "tcp"}
		down.set([]client.Service{api}, nil)
		down.failListing(nil)
		waitFor(t, 5*time.Second, "the hub's list", func() bool {
			return len(query(t, tun, "udp", api.Address, dns.TypeA).Answer) == 1 && tun.Healthy()
		})
	})

	t.Run("nothing saved", func(t *testing.T) {
		down := &fakeOverlay{listErr: errHubDown}
		tun, err := Start(context.Background(), Config{Overlay: down, DNSListen: "127.0.0.1:0", Upstream: upstream,
			SavedList: filepath.Join(t.TempDir(), "none"), Refresh: 50 * time.Millisecond})
		if err != nil {
			t.Fatalf("start with the hub down: %v", err)
		}
		defer tun.Close()
		for _, name := range []string{db.Address, "www.elsewhere.example"} {
			if r := query(t, tun, "udp", name, dns.TypeA); r.Rcode != dns.RcodeServerFailure {
				t.Fatalf("%s before any list: rcode %s, want SERVFAIL", name, dns.RcodeToString[r.Rcode])
			}
		}
		down.set([]client.Service{db}, nil)
		down.failListing(nil)
		waitFor(t, 5*time.Second, "the hub's list", func() bool { return len(query(t, tun, "udp", db.Address, dns.TypeA).Answer) == 1 })
		if r := query(t, tun, "udp", "www.elsewhere.example", dns.TypeA); len(r.Answer) != 1 {
			t.Fatalf("other names not forwarded once listed: %v", r)
		}
	})
}

// Only an answer that asking again will not change stops a starting tunnel; a hub that is not
// reachable yet, in whatever way, is retried.
func TestHubRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errHubDown, false},
		{fmt.Errorf("ztna: list services: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), false},
		{fmt.Errorf("ztna: list services: %w", io.EOF), false},
		{fmt.Errorf("ztna: list services: %w", context.DeadlineExceeded), false},
		{errors.New("ztna: list services: remote error: tls: internal error"), false},
		{errors.New("ztna: list services: remote error: tls: bad certificate"), true},
		{errors.New("ztna: list services: remote error: tls: certificate required"), true},
		{fmt.Errorf("ztna: list services: %w", client.ErrNotAuthorized), true},
	} {
		if got := hubRefused(tc.err); got != tc.want {
			t.Errorf("hubRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
