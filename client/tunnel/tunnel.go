// Package tunnel makes the services a client identity may dial reachable to unmodified
// programs (curl, database drivers, JDBC URLs) by name. It runs a DNS server that answers the
// identity's service names with local addresses — one stable address per name from a
// loopback pool, 127.77.0.0/16 by default — listens on those addresses on every port the
// service exposes, and carries each accepted connection over the overlay with the Go SDK.
// Every other name is forwarded to the upstream resolver unchanged.
//
// The service list is read from the hub (the SDK's Services) every Refresh interval, so new
// services and policies appear, and removed or de-authorised ones disappear, within about a
// second. A name that is no longer served is forwarded upstream like any name the overlay does
// not know (typically NXDOMAIN for a private name), and its listeners close; connections
// already established are left to the hub and router, which own policy on the data path.
// Services the identity may not use never reach the table, so they never resolve locally.
//
// Binding arbitrary 127.x addresses needs no set-up on Linux (the whole 127.0.0.0/8 is local);
// other systems need the addresses aliased on the loopback interface first.
//
// With an IPv6 pool (Config.Pool6) every name also gets a stable IPv6 address, listeners on it
// for the same ports, and AAAA answers with it, so `curl -6` and IPv6-only programs work. Linux
// has no IPv6 prefix that is local by default: the prefix must be routed to loopback first
// (ip -6 route add local <prefix> dev lo, as root); Start checks that and says so when it is not.
package tunnel

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/atomicfile"
)

// Overlay is what the tunnel needs from the SDK (*client.Client).
type Overlay interface {
	Services(ctx context.Context) ([]client.Service, error)
	Dial(ctx context.Context, target string) (net.Conn, error)
}

// Watcher is an Overlay whose hub pushes service-list changes (*client.Client is one): the
// tunnel then applies a change as soon as the hub has it, and reads the list every Refresh only
// while the push is down.
type Watcher interface {
	WatchServices(ctx context.Context, fn func([]client.Service)) error
}

// Defaults of Config.
var (
	DefaultDNSListen = "127.0.0.1:5353"
	DefaultPool      = netip.MustParsePrefix("127.77.0.0/16")
)

// ExamplePool6 is the IPv6 pool the documentation suggests: a unique-local /64. IPv6 pools are
// off by default because the prefix must be made local on the host first.
const ExamplePool6 = "fd7a:7a7a::/64"

const (
	defaultRefresh         = 500 * time.Millisecond
	defaultDialTimeout     = 10 * time.Second
	defaultUpstreamTimeout = 4 * time.Second
	// defaultMaxPorts bounds the listeners of one name, so that a service exposing a huge port
	// range does not exhaust the host's file descriptors.
	defaultMaxPorts = 1024
)

// Config configures a Tunnel.
type Config struct {
	Overlay   Overlay
	DNSListen string       // UDP and TCP address of the DNS server; "" means DefaultDNSListen
	Upstream  string       // host:port of the resolver for every other name (required)
	Pool      netip.Prefix // local addresses for service names; zero means DefaultPool
	// Pool6 gives every name an IPv6 address too, answered to AAAA queries; zero means none
	// (AAAA queries for service names get an empty answer). It must be local on the host.
	Pool6 netip.Prefix
	// Refresh is how often the service list is read when the hub does not push changes (or
	// while its push is down); zero means 500 ms.
	Refresh time.Duration
	// DialTimeout bounds setting up one overlay stream; zero means 10 s.
	DialTimeout time.Duration
	// UpstreamTimeout bounds one forwarded query; zero means 4 s. A query the upstream does not
	// answer in time gets SERVFAIL.
	UpstreamTimeout time.Duration
	// MaxPortsPerName bounds the listeners of one service name; zero means 1024. Ports beyond
	// it are not served, and a warning names them.
	MaxPortsPerName int
	// SavedList is a file that keeps the last service list read from the hub (0600, replaced
	// atomically on every change), so that a tunnel started while the hub is unreachable
	// serves the names it served before; "" keeps nothing.
	SavedList string

	// DnsmasqServersFile, when set, is kept as a dnsmasq servers-file that sends exactly the
	// served names to this tunnel (replaced atomically when they change, emptied on Close), so
	// that a host's dnsmasq asks the tunnel for service names only: split DNS.
	DnsmasqServersFile string
	// DnsmasqPIDFile is dnsmasq's --pid-file: dnsmasq gets SIGHUP, so that it re-reads the
	// servers-file, after each write. "" signals nothing.
	DnsmasqPIDFile string

	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
}

// Tunnel is a running tunnel. Stop it with Close.
type Tunnel struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	ctx     context.Context
	cancel  context.CancelFunc
	dnsUDP  *dns.Server
	dnsTCP  *dns.Server
	names   nameTable
	wg      sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	pool     *pool
	pool6    *pool              // nil without Config.Pool6
	served   map[string]*served // canonical name → what is served for it
	conns    map[net.Conn]struct{}
	warned   map[string]bool // conditions already logged, so a refresh loop does not repeat them
	lastOK   time.Time
	lastErr  error
	saved    []byte // the list as last written to SavedList
	fromSave bool   // serving the saved list: the hub has not answered since start
	watching bool   // the hub is pushing the service list
	draining bool   // Drain: listeners stay closed
	closed   bool
	// dnsmasqWritten is the servers-file as last written; nil before the first write.
	dnsmasqWritten []byte

	closeOnce sync.Once
	closeErr  error
}

// served is one service name: its addresses and a listener per address and port.
type served struct {
	host      string     // the name as the service spells it: dial targets use it
	addr      netip.Addr // from the IPv4 pool
	addr6     netip.Addr // from the IPv6 pool; invalid without one
	listeners map[netip.AddrPort]*net.TCPListener
}

// addrs are the name's local addresses.
func (s *served) addrs() []netip.Addr {
	if s.addr6.IsValid() {
		return []netip.Addr{s.addr, s.addr6}
	}
	return []netip.Addr{s.addr}
}

// listening reports whether a is listened on for at least one port.
func (s *served) listening(a netip.Addr) bool {
	for ap := range s.listeners {
		if ap.Addr() == a {
			return true
		}
	}
	return false
}

// Start validates cfg, binds the DNS server, reads the service list once (an error here, such
// as a refused identity, is returned) and serves until ctx ends or Close is called.
func Start(ctx context.Context, cfg Config) (*Tunnel, error) {
	if cfg.Overlay == nil {
		return nil, errors.New("tunnel: no overlay client configured")
	}
	if cfg.DNSListen == "" {
		cfg.DNSListen = DefaultDNSListen
	}
	if err := validHostPort("DNS listen address", cfg.DNSListen, 0); err != nil {
		return nil, err
	}
	if cfg.Upstream == "" {
		return nil, errors.New("tunnel: no upstream resolver configured")
	}
	if err := validHostPort("upstream resolver", cfg.Upstream, 1); err != nil {
		return nil, err
	}
	if !cfg.Pool.IsValid() {
		cfg.Pool = DefaultPool
	}
	p, err := newPool(cfg.Pool)
	if err != nil {
		return nil, err
	}
	var p6 *pool
	if cfg.Pool6.IsValid() {
		if p6, err = newPool6(cfg.Pool6); err != nil {
			return nil, err
		}
		if err := checkLocal(p6); err != nil {
			return nil, err
		}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = defaultRefresh
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = defaultUpstreamTimeout
	}
	if cfg.MaxPortsPerName <= 0 {
		cfg.MaxPortsPerName = defaultMaxPorts
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &Tunnel{
		cfg: cfg, log: log, metrics: newMetrics(cfg.Registerer), ctx: ctx, cancel: cancel,
		pool: p, pool6: p6, served: map[string]*served{}, conns: map[net.Conn]struct{}{}, warned: map[string]bool{},
	}
	if err := t.listenDNS(); err != nil {
		cancel()
		return nil, err
	}
	if upstreamLoops(t.DNSAddr(), cfg.Upstream) {
		t.Close()
		return nil, fmt.Errorf("the upstream resolver %s is this tunnel's own DNS address: name another resolver", cfg.Upstream)
	}
	if err := t.refresh(); err != nil {
		if hubRefused(err) {
			t.Close() // a refusal (say, of the identity) is final
			return nil, err
		}
		if t.loadSaved() {
			log.Warn("the hub cannot be reached; serving the saved service list and retrying", "saved_list", cfg.SavedList, "err", err)
		} else {
			log.Warn("the hub cannot be reached and no service list is saved; answering every query with SERVFAIL until the hub answers", "err", err)
		}
	}
	t.mu.Lock()
	if t.dnsmasqWritten == nil { // no names yet: clear what a tunnel that died left behind
		t.registerNames(nil)
	}
	t.mu.Unlock()
	t.wg.Add(1)
	go t.refreshLoop()
	context.AfterFunc(ctx, func() { t.Close() })
	return t, nil
}

// listenDNS binds UDP and TCP on the same address. With port 0, TCP takes the port UDP got,
// and when that port is taken for TCP another one is tried.
func (t *Tunnel) listenDNS() error {
	pc, ln, err := bindBoth(t.cfg.DNSListen)
	if err != nil {
		return err
	}
	t.dnsUDP = &dns.Server{PacketConn: pc, Handler: t}
	t.dnsTCP = &dns.Server{Listener: ln, Handler: t}
	for _, s := range []*dns.Server{t.dnsUDP, t.dnsTCP} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if err := s.ActivateAndServe(); err != nil && t.ctx.Err() == nil {
				t.log.Error("DNS server stopped", "err", err)
			}
		}()
		<-started
	}
	return nil
}

func bindBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("DNS listen address %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("DNS listen address %s (TCP): %w", addr, err)
		}
	}
}

// upstreamLoops reports whether upstream is the tunnel's own DNS address.
func upstreamLoops(own, upstream string) bool {
	a, errA := netip.ParseAddrPort(own)
	b, errB := netip.ParseAddrPort(upstream)
	if errA != nil || errB != nil || a.Port() != b.Port() {
		return false
	}
	return a.Addr() == b.Addr() || (a.Addr().IsUnspecified() && b.Addr().IsLoopback())
}

// DNSAddr is the address the DNS server listens on (UDP and TCP).
func (t *Tunnel) DNSAddr() string { return t.dnsUDP.PacketConn.LocalAddr().String() }

// Status is a point-in-time view of the tunnel, for health checks.
type Status struct {
	LastRefresh time.Time // last successful read (or push) of the service list
	LastError   error     // of the last read, nil when it succeeded
	Watching    bool      // the hub is pushing changes to the service list
	Listed      bool      // a service list is known (from the hub or saved): else DNS answers SERVFAIL
	FromSaved   bool      // the names come from the saved list: the hub has not answered yet
	Names       map[string]netip.Addr
	Names6      map[string]netip.Addr // the names' IPv6 addresses, with an IPv6 pool
}

// Status returns the tunnel's current state.
func (t *Tunnel) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Status{LastRefresh: t.lastOK, LastError: t.lastErr, Watching: t.watching, Names: map[string]netip.Addr{},
		Names6: map[string]netip.Addr{}, Listed: t.names.listed(), FromSaved: t.fromSave}
	for name, s := range t.served {
		st.Names[name] = s.addr
		if s.addr6.IsValid() {
			st.Names6[name] = s.addr6
		}
	}
	return st
}

// Healthy reports whether the hub is pushing the service list, or the list was read
// successfully within the last few refresh intervals (plus the time a slow read may take).
func (t *Tunnel) Healthy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.closed && !t.fromSave && (t.watching || time.Since(t.lastOK) < 3*t.cfg.Refresh+t.cfg.DialTimeout)
}

// Close stops the DNS server, closes every listener, resets every open connection and waits
// for the tunnel's goroutines. Concurrent and repeated calls wait for the first to finish.
// An open connection is reset (locally a TCP RST, on the overlay a stream without its
// end-of-stream marker), never closed cleanly: a program reading until end of stream must
// not take a cut download for a complete one.
func (t *Tunnel) Close() error {
	t.closeOnce.Do(t.shutdown)
	return t.closeErr
}

// Drain stops accepting connections (the listeners close, so new ones are refused; DNS keeps
// answering) and waits until the open connections have ended or ctx ends, then closes the
// tunnel as Close does, resetting what is still open. It reports how many connections were
// reset.
func (t *Tunnel) Drain(ctx context.Context) int {
	t.mu.Lock()
	t.draining = true
	for _, s := range t.served {
		for ap, ln := range s.listeners {
			ln.Close()
			delete(s.listeners, ap)
		}
	}
	t.metrics.listeners.Set(0)
	open := t.localConns()
	t.mu.Unlock()
	if open > 0 {
		t.log.Info("draining: no new connections; waiting for open ones to end", "open", open)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for open > 0 {
		select {
		case <-ctx.Done():
			t.log.Warn("drain time is up; resetting the connections still open", "open", open)
			t.Close()
			return open
		case <-tick.C:
		}
		t.mu.Lock()
		open = t.localConns()
		t.mu.Unlock()
	}
	t.Close()
	return 0
}

// localConns counts the programs' connections being carried; t.mu is held.
func (t *Tunnel) localConns() int {
	n := 0
	for c := range t.conns {
		if _, ok := c.(*net.TCPConn); ok {
			n++
		}
	}
	return n
}

func (t *Tunnel) shutdown() {
	t.mu.Lock()
	t.closed = true
	t.cancel()
	t.names.store(nil)
	t.registerNames(nil) // dnsmasq answers the service names itself again: undone
	for name := range t.served {
		t.unserve(name)
	}
	for c := range t.conns {
		reset(c)
	}
	t.mu.Unlock()
	var errs []error
	for _, s := range []*dns.Server{t.dnsUDP, t.dnsTCP} {
		if s != nil {
			if err := s.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	t.wg.Wait()
	t.closeErr = errors.Join(errs...)
}

func (t *Tunnel) refreshLoop() {
	defer t.wg.Done()
	w, push := t.cfg.Overlay.(Watcher)
	tick := time.NewTicker(t.cfg.Refresh)
	defer tick.Stop()
	for {
		if push {
			err := w.WatchServices(t.ctx, t.pushed)
			t.setWatching(false)
			if t.ctx.Err() != nil {
				return
			}
			if errors.Is(err, client.ErrWatchUnsupported) {
				t.log.Info("the hub does not push service-list changes; reading the list every refresh interval", "refresh", t.cfg.Refresh)
				push = false
			} else {
				t.log.Warn("service-list push lost; reading the list until it is back", "err", err)
			}
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			if err := t.refresh(); err != nil && t.ctx.Err() == nil {
				t.log.Warn("reading the service list failed; keeping the last one", "err", err)
			}
		}
	}
}

// pushed serves a service list the hub pushed.
func (t *Tunnel) pushed(list []client.Service) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.draining {
		return
	}
	t.watching = true
	t.noteListed(nil)
	t.apply(t.want(list))
	t.save(list)
}

func (t *Tunnel) setWatching(on bool) {
	t.mu.Lock()
	t.watching = on
	t.mu.Unlock()
}

// refresh reads the service list and serves exactly it. On failure the previous list stays:
// the hub being briefly unreachable should not make names vanish.
func (t *Tunnel) refresh() error {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	list, err := t.cfg.Overlay.Services(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.draining {
		return nil
	}
	if err := t.noteListed(err); err != nil {
		return err
	}
	t.apply(t.want(list))
	t.save(list)
	return nil
}

// hubRefused reports whether reading the service list failed on an answer that asking again
// will not change: the hub refused this identity (not authorized, or its TLS refused the
// identity's certificate), or the hub is not of this network (its certificate fails
// verification against the identity's CA). Anything else — refused, reset or timed-out
// connections, a hub that is still starting — counts as the hub not being reachable yet, and
// the tunnel starts and retries.
func hubRefused(err error) bool {
	if errors.Is(err, client.ErrNotAuthorized) {
		return true
	}
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	if errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname) {
		return true
	}
	msg := err.Error()
	for _, alert := range []string{"tls: bad certificate", "tls: unknown certificate", "tls: certificate", "tls: access denied"} {
		if strings.Contains(msg, alert) {
			return true
		}
	}
	return false
}

// save writes list to SavedList when it differs from what was written last; t.mu is held.
func (t *Tunnel) save(list []client.Service) {
	t.fromSave = false
	if t.cfg.SavedList == "" {
		return
	}
	b, err := json.Marshal(list)
	if err != nil || bytes.Equal(b, t.saved) {
		return
	}
	if err := atomicfile.Write(t.cfg.SavedList, b, 0o600); err != nil {
		t.warnOnce("save", "cannot save the service list; a restart while the hub is unreachable will serve no names", "path", t.cfg.SavedList, "err", err)
		return
	}
	t.saved = b
}

// loadSaved serves the saved service list, if there is one.
func (t *Tunnel) loadSaved() bool {
	if t.cfg.SavedList == "" {
		return false
	}
	b, err := os.ReadFile(t.cfg.SavedList)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.log.Warn("cannot read the saved service list", "path", t.cfg.SavedList, "err", err)
		}
		return false
	}
	var list []client.Service
	if err := json.Unmarshal(b, &list); err != nil {
		t.log.Warn("the saved service list is not readable; ignoring it", "path", t.cfg.SavedList, "err", err)
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apply(t.want(list))
	t.names.markListed()
	t.saved, t.fromSave = b, true
	return true
}

// noteListed records the outcome of reading the service list; t.mu is held.
func (t *Tunnel) noteListed(err error) error {
	recovered := err == nil && t.lastErr != nil
	t.lastErr = err
	if err != nil {
		t.metrics.refreshFailures.Inc()
		return err
	}
	if recovered {
		t.log.Info("service list readable again")
	}
	t.lastOK = time.Now()
	t.names.markListed()
	return nil
}

// wanted is what should be served for one name.
type wanted struct {
	host  string
	ports []int
}

// want turns the service list into the names and ports to serve. Services the tunnel cannot
// carry (addressed by IP, UDP) are skipped with a one-time notice: the SDK or `ztna dial`
// reaches those.
func (t *Tunnel) want(list []client.Service) map[string]*wanted {
	out := map[string]*wanted{}
	for _, svc := range list {
		if svc.Protocol != "" && svc.Protocol != api.ProtocolTCP {
			t.warnOnce("proto/"+svc.Name, "service is not TCP; the tunnel carries TCP only", "service", svc.Name, "protocol", svc.Protocol)
			continue
		}
		if _, err := netip.ParseAddr(svc.Address); err == nil {
			t.warnOnce("ip/"+svc.Name, "service is addressed by IP, not by name; the tunnel cannot answer DNS for it", "service", svc.Name, "address", svc.Address)
			continue
		}
		if _, ok := dns.IsDomainName(svc.Address); !ok || svc.Address == "" {
			t.warnOnce("name/"+svc.Name, "service address is not a valid DNS name; skipped", "service", svc.Name, "address", svc.Address)
			continue
		}
		name := canonical(svc.Address)
		w := out[name]
		if w == nil {
			w = &wanted{host: svc.Address}
			out[name] = w
		}
		w.ports = append(w.ports, svc.Port)
		for _, r := range svc.PortRanges {
			for p := r.From; p <= r.To && p > 0 && p <= 65535; p++ {
				w.ports = append(w.ports, p)
			}
		}
	}
	for name, w := range out {
		slices.Sort(w.ports)
		w.ports = slices.Compact(w.ports)
		if len(w.ports) > t.cfg.MaxPortsPerName {
			t.warnOnce("ports/"+name, "service name exposes more ports than the tunnel serves per name; the highest are not served",
				"name", w.host, "ports", len(w.ports), "served_up_to", w.ports[t.cfg.MaxPortsPerName-1], "max_ports_per_name", t.cfg.MaxPortsPerName)
			w.ports = w.ports[:t.cfg.MaxPortsPerName]
		}
	}
	return out
}

// warnOnce logs a condition the first time it is seen.
func (t *Tunnel) warnOnce(key, msg string, args ...any) {
	if !t.warned[key] {
		t.warned[key] = true
		t.log.Warn(msg, args...)
	}
}

// apply makes the served names and listeners match want. Names stop resolving before their
// listeners close, and start resolving only once a listener is up, so a program never gets an
// address that nothing listens on. Called with t.mu held.
func (t *Tunnel) apply(want map[string]*wanted) {
	changed := false
	for name := range t.served {
		if _, ok := want[name]; !ok {
			changed = true
		}
	}
	if changed {
		t.publish(want)
		for name := range t.served {
			if _, ok := want[name]; !ok {
				t.log.Info("service name removed", "name", t.served[name].host)
				t.unserve(name)
			}
		}
	}
	for name, w := range want {
		if t.serve(name, w) {
			changed = true
		}
	}
	if changed {
		t.publish(want)
	}
	t.metrics.names.Set(float64(len(t.served)))
}

// publish puts the names that are wanted into the DNS table, each with those of its addresses
// that have a listener.
func (t *Tunnel) publish(want map[string]*wanted) {
	table := map[string]localAddrs{}
	for name, s := range t.served {
		if _, ok := want[name]; !ok {
			continue
		}
		var la localAddrs
		if s.listening(s.addr) {
			la.v4 = s.addr
		}
		if s.addr6.IsValid() && s.listening(s.addr6) {
			la.v6 = s.addr6
		}
		if la.v4.IsValid() || la.v6.IsValid() {
			table[name] = la
		}
	}
	t.names.store(table)
	t.registerNames(table)
}

// serve opens and closes listeners of one name to match w; it reports whether the set of
// listeners changed.
func (t *Tunnel) serve(name string, w *wanted) bool {
	s := t.served[name]
	changed, added := false, s == nil
	if s == nil {
		addr, ln, err := t.place(t.pool, name, w.ports[0])
		if !addr.IsValid() {
			t.warnOnce("place/"+name, "no local address for service name", "name", w.host, "err", err)
			return false
		}
		s = &served{host: w.host, addr: addr, listeners: map[netip.AddrPort]*net.TCPListener{}}
		t.served[name] = s
		if ln != nil {
			t.listen(s, netip.AddrPortFrom(addr, uint16(w.ports[0])), ln)
			changed = true
		}
	}
	if t.pool6 != nil && !s.addr6.IsValid() {
		// Retried on every refresh until the name has one; said once.
		addr6, ln6, err := t.place(t.pool6, name, w.ports[0])
		if !addr6.IsValid() {
			t.warnOnce("place6/"+name, "no local IPv6 address for service name; it resolves to IPv4 only", "name", w.host, "err", err)
		}
		s.addr6 = addr6
		if ln6 != nil {
			t.listen(s, netip.AddrPortFrom(addr6, uint16(w.ports[0])), ln6)
			changed = true
		}
	}
	if added && s.addr6.IsValid() {
		t.log.Info("service name added", "name", w.host, "address", s.addr, "address6", s.addr6, "ports", portsString(w.ports))
	} else if added {
		t.log.Info("service name added", "name", w.host, "address", s.addr, "ports", portsString(w.ports))
	}
	for ap, ln := range s.listeners {
		if !slices.Contains(w.ports, int(ap.Port())) {
			ln.Close()
			delete(s.listeners, ap)
			changed = true
		}
	}
	for _, addr := range s.addrs() {
		for _, port := range w.ports {
			ap := netip.AddrPortFrom(addr, uint16(port))
			if _, ok := s.listeners[ap]; ok {
				continue
			}
			ln, err := listenOn(addr, port)
			key := "listen/" + name + "/" + ap.String()
			if err != nil {
				// Retried on every refresh; said once.
				t.warnOnce(key, "cannot listen for service", "name", w.host, "address", addr, "port", port, "err", err)
				continue
			}
			delete(t.warned, key)
			t.listen(s, ap, ln)
			changed = true
		}
	}
	t.metrics.listeners.Set(float64(t.listenerCount()))
	return changed
}

// maxPlacements bounds how many pool addresses a new name tries when its first port is taken.
const maxPlacements = 8

// place gives a new name an address and its first listener. An address whose port is already
// in use (most likely another tunnel on this host, serving the same name from the same pool)
// is skipped for the next free one: addresses are stable per name only as far as the host
// allows. On other listen errors the address is kept and the error returned.
func (t *Tunnel) place(p *pool, name string, port int) (netip.Addr, *net.TCPListener, error) {
	var avoid []netip.Addr
	for range maxPlacements {
		addr, err := p.assign(name, avoid...)
		if err != nil {
			return netip.Addr{}, nil, err
		}
		ln, err := listenOn(addr, port)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return addr, ln, err
		}
		p.release(name)
		avoid = append(avoid, addr)
	}
	return netip.Addr{}, nil, fmt.Errorf("port %d is in use on %d addresses of the pool", port, maxPlacements)
}

func listenOn(addr netip.Addr, port int) (*net.TCPListener, error) {
	if addr.Is4() {
		return net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	}
	lc := net.ListenConfig{Control: freebind}
	ln, err := lc.Listen(context.Background(), "tcp6", netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// checkLocal makes sure the IPv6 pool's addresses reach this host: a listener on one of them
// must accept a connection. Without the local route, IPv6 listeners would bind (freebind) but
// nothing could connect, and every AAAA answer would send programs nowhere.
func checkLocal(p *pool) error {
	probe := p.at(1)
	ln, err := listenOn(probe, 0)
	if err == nil {
		defer ln.Close()
		var c net.Conn
		if c, err = net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("IPv6 address pool %s is not local on this host (%w): route it to loopback first, as root: ip -6 route add local %s dev lo", p.prefix, err, p.prefix)
}

// listen adds a listener to a name and starts accepting on it.
func (t *Tunnel) listen(s *served, ap netip.AddrPort, ln *net.TCPListener) {
	s.listeners[ap] = ln
	t.wg.Add(1)
	go t.accept(ln, net.JoinHostPort(s.host, strconv.Itoa(int(ap.Port()))))
}

// unserve closes a name's listeners and frees its address. Called with t.mu held.
func (t *Tunnel) unserve(name string) {
	s := t.served[name]
	for _, ln := range s.listeners {
		ln.Close()
	}
	delete(t.served, name)
	t.pool.release(name)
	if t.pool6 != nil {
		t.pool6.release(name)
	}
	t.metrics.listeners.Set(float64(t.listenerCount()))
}

func (t *Tunnel) listenerCount() int {
	n := 0
	for _, s := range t.served {
		n += len(s.listeners)
	}
	return n
}

// accept carries every connection to ln over the overlay to target until ln closes.
func (t *Tunnel) accept(ln *net.TCPListener, target string) {
	defer t.wg.Done()
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.log.Warn("accept failed", "target", target, "err", err)
			}
			return
		}
		if !t.track(c) { // closed between accept and now: refuse, never an empty clean stream
			c.SetLinger(0)
			c.Close()
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.untrack(c)
			t.carry(c, target)
		}()
	}
}

// track registers a connection (either side) so that Close can end it; false once the tunnel
// is closed.
func (t *Tunnel) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Tunnel) untrack(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
}

// carry dials target over the overlay and relays c to it. A failed dial resets c, so the
// program sees a refused connection rather than an empty answer.
func (t *Tunnel) carry(c *net.TCPConn, target string) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	remote, err := t.cfg.Overlay.Dial(ctx, target)
	cancel()
	if err != nil {
		t.metrics.conns.WithLabelValues("dial_failed").Inc()
		t.log.Warn("overlay dial failed", "target", target, "client", c.RemoteAddr().String(), "err", err)
		c.SetLinger(0)
		c.Close()
		return
	}
	rs, ok := remote.(Stream)
	if !ok || !t.track(remote) {
		c.SetLinger(0)
		c.Close()
		remote.Close()
		return
	}
	defer t.untrack(remote)
	t.metrics.conns.WithLabelValues("relayed").Inc()
	t.metrics.active.Inc()
	defer t.metrics.active.Dec()
	t.log.Debug("connection opened", "target", target, "client", c.RemoteAddr().String())
	if err := Relay(c, rs); err != nil && t.ctx.Err() == nil {
		t.log.Debug("connection failed", "target", target, "err", err)
	}
}

// reset ends a connection without a clean end: a TCP reset for a program's connection, an
// aborted stream (no end-of-stream marker) on the overlay.
func reset(c net.Conn) {
	switch c := c.(type) {
	case *net.TCPConn:
		c.SetLinger(0)
		c.Close()
	case aborter:
		c.Abort()
	default:
		c.Close()
	}
}

// portsString renders sorted ports compactly: "80,443,8000-8010".
func portsString(ports []int) string {
	var b []byte
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(ports[i]), 10)
		if j > i {
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(ports[j]), 10)
		}
		i = j + 1
	}
	return string(b)
}
