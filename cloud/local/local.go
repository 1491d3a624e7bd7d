// Package local is the platform driver that runs a router host as a detached local process:
// for the quickstart, for tests, and for on-prem machines without a cloud API. Each host has
// its own state directory (<StateRoot>/<name>) holding the registration key file, the
// router's state, its log and the driver's record of the process (pid + start time, so a
// reused pid is never mistaken for the router). Read reports an exited process as gone
// (drift); Delete stops the process and removes the directory.
//
// With IsolationNetns (root) the router runs in its own network namespace, joined to the host
// by a veth pair, behind an nftables ruleset: no inbound connection at all, outbound only to
// the egress allowlist. Allowed ports on the host's 127.0.0.1 (a dev controller, a demo
// service) stay reachable at 127.0.0.1 inside the namespace through NAT.
//
// The namespace is built with the ip and nft commands (iproute2, nftables) rather than the
// netlink and google/nftables libraries: `nft -f` loads a whole ruleset atomically from text
// that is readable in code review and in tests, `ip netns exec` gives the process its own
// resolv.conf, and both commands are what an operator uses to inspect the result.
package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/netns"
	"github.com/ztna/ztna/internal/procid"
	"github.com/ztna/ztna/internal/statefile"
)

// Isolation says how a local router host is confined.
type Isolation string

// Isolation modes.
const (
	// IsolationNone runs the router as a plain process in the host's network; the egress
	// allowlist is not enforced.
	IsolationNone Isolation = "none"
	// IsolationNetns runs it in its own network namespace behind an egress-only firewall.
	IsolationNetns Isolation = "netns"
)

// ParseIsolation accepts "", "none" or "netns".
func ParseIsolation(s string) (Isolation, error) {
	switch Isolation(s) {
	case "", IsolationNone:
		return IsolationNone, nil
	case IsolationNetns:
		return IsolationNetns, nil
	}
	return "", fmt.Errorf("isolation %q is unknown: use \"none\" or \"netns\"", s)
}

// Launch is what a router process gets told about its host.
type Launch struct {
	// StateDir is the host's directory; RouterDir (inside it) is the router's --state-dir.
	StateDir  string
	RouterDir string
	// KeyFile holds the registration key (0600): the local equivalent of instance metadata.
	KeyFile string
	// LogFile receives the process's stdout and stderr.
	LogFile string
	// FailureDomain is "local/<machine>/<host name>".
	FailureDomain string
	// Namespace is the network namespace, empty without isolation.
	Namespace string
}

// RouterCommand runs a ztna-router binary the way a baked image does: bootstrap from the key
// file (enrol once; a no-op when already enrolled), then exec run. runArgs are appended to
// run (for example --local-addr, which must differ between non-isolated hosts).
func RouterCommand(binary string, runArgs ...string) func(Launch) []string {
	const script = `k="$1" d="$2" f="$3"; shift 3; "$0" bootstrap --from-metadata file --key-file "$k" --state-dir "$d" --failure-domain "$f" && exec "$0" run --state-dir "$d" "$@"`
	return func(l Launch) []string {
		return append([]string{"/bin/sh", "-c", script, binary, l.KeyFile, l.RouterDir, l.FailureDomain}, runArgs...)
	}
}

// Options configures a driver.
type Options struct {
	// StateRoot holds one directory per host (required; created 0700).
	StateRoot string
	// Command returns the argv of the router process (required); see RouterCommand. The
	// registration key is never on the command line: it is in Launch.KeyFile.
	Command func(Launch) []string
	// Env is added to the router's environment.
	Env []string
	// Isolation defaults to IsolationNone.
	Isolation Isolation
	// DNSServers become the namespace's resolv.conf (IsolationNetns); each must be allowed by
	// the egress allowlist (egress.Input.DNSServers). Empty keeps the host's resolv.conf.
	DNSServers []netip.Addr
	// AddressPool is where namespace /30s come from; default 10.231.0.0/16.
	AddressPool netip.Prefix
	// Resolver resolves DNS-name egress destinations for the namespace firewall, which matches
	// addresses; default net.DefaultResolver. Names are resolved once, at Create.
	Resolver egress.Resolver
	// StartupGrace is how long Create watches the new process before reporting it running:
	// a router that exits at once (bad flags, bad binary) fails Create with its log; default
	// 500 ms.
	StartupGrace time.Duration
	// StopTimeout is how long Delete waits after SIGTERM before SIGKILL; default 10 s.
	StopTimeout time.Duration
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
}

// DefaultAddressPool is the default source of namespace addresses.
var DefaultAddressPool = netip.MustParsePrefix("10.231.0.0/16")

// Driver manages local router hosts under one state root.
type Driver struct {
	opts Options
	log  *slog.Logger
}

// New checks the options.
func New(opts Options) (*Driver, error) {
	if opts.StateRoot == "" || !filepath.IsAbs(opts.StateRoot) {
		return nil, fmt.Errorf("local: state root %q must be an absolute directory path", opts.StateRoot)
	}
	if opts.Command == nil {
		return nil, errors.New("local: no router command: set Options.Command (see RouterCommand)")
	}
	iso, err := ParseIsolation(string(opts.Isolation))
	if err != nil {
		return nil, err
	}
	opts.Isolation = iso
	if iso == IsolationNetns {
		if err := checkNetnsTools(); err != nil {
			return nil, err
		}
	}
	if !opts.AddressPool.IsValid() {
		opts.AddressPool = DefaultAddressPool
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.StartupGrace <= 0 {
		opts.StartupGrace = 500 * time.Millisecond
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	d := &Driver{opts: opts, log: opts.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// state is the driver's record of a host, <state dir>/host.json.
type state struct {
	Name      string         `json:"name"`
	RouterID  string         `json:"router_id,omitempty"`
	DNS       []string       `json:"dns_servers,omitempty"`
	Image     string         `json:"image,omitempty"`
	Isolation Isolation      `json:"isolation"`
	Process   procid.Process `json:"process"`
	Net       *netConfig     `json:"net,omitempty"`
	// Egress is the allowlist the namespace firewall implements (rule strings, names
	// resolved), and Firewall what nft listed right after loading it: Read compares the live
	// listing with it, so any rule added, changed or removed out of band is drift.
	Egress   []string  `json:"egress,omitempty"`
	Firewall string    `json:"firewall,omitempty"`
	Created  time.Time `json:"created"`
}

const (
	stateFile = "host.json"
	keyFile   = "registration-key"
	logFile   = "router.log"
	routerDir = "router"
)

func loadState(dir string) (state, error) {
	st, err := statefile.Load[state](filepath.Join(dir, stateFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("local: %w (delete the directory to start over)", err)
	}
	return st, err
}

func saveState(dir string, st state) error {
	return statefile.Save(filepath.Join(dir, stateFile), st)
}

// lock serialises creates and deletes under the state root across processes (Terraform
// creates hosts in parallel), so names and namespace addresses are never handed out twice.
func (d *Driver) lock() (unlock func(), err error) {
	if err := os.MkdirAll(d.opts.StateRoot, 0o700); err != nil {
		return nil, fmt.Errorf("local: create state root: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(d.opts.StateRoot, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// netNames derives short, stable interface and namespace names from the state directory
// (interface names have at most 15 bytes).
func netNames(dir string) (netConfig, uint32) {
	sum := sha256.Sum256([]byte(dir))
	id := hex.EncodeToString(sum[:4])
	return netConfig{
		Veth:      netns.Veth{Namespace: "ztna-" + id, HostVeth: "zt" + id + "h", NSVeth: "zt" + id + "n"},
		HostTable: "ztna_" + id,
	}, binary.BigEndian.Uint32(sum[4:8])
}

func machineName() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// Create starts the router process for spec. A host of the same name whose process has exited
// (drift) is restarted in place and keeps its enrolled router state, so it needs no new key
// (unless spec names another router than the saved one); a running one is an error.
func (d *Driver) Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error) {
	if err := spec.Validate(); err != nil {
		return cloud.Host{}, err
	}
	unlock, err := d.lock()
	if err != nil {
		return cloud.Host{}, err
	}
	defer unlock()
	dir := filepath.Join(d.opts.StateRoot, spec.Name)
	if old, err := loadState(dir); err == nil {
		if old.Process.Alive() {
			return cloud.Host{}, fmt.Errorf("local: router host %q already runs (pid %d): choose another name or import %s: %w", spec.Name, old.Process.PID, dir, cloud.ErrNameInUse)
		}
		if old.Net != nil {
			if err := teardownNamespace(ctx, *old.Net); err != nil {
				return cloud.Host{}, fmt.Errorf("local: clean up the exited host's namespace: %w", err)
			}
		}
		if spec.RouterID != "" && old.RouterID != spec.RouterID {
			// The saved enrolment is another router's (deleted and re-created, its certificate
			// revoked): enrol with the new key instead of restarting with it.
			d.log.DebugContext(ctx, "discarding the enrolment of another router", "host", spec.Name, "was", old.RouterID, "now", spec.RouterID)
			if err := os.RemoveAll(filepath.Join(dir, routerDir)); err != nil {
				return cloud.Host{}, fmt.Errorf("local: remove the old router state: %w", err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return cloud.Host{}, err
	} else if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return cloud.Host{}, fmt.Errorf("local: %s exists and is not a router host's state directory: remove it or choose another name", dir)
	}
	fresh := true
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		fresh = false
	}
	h, err := d.start(ctx, spec, dir)
	if err != nil && fresh {
		// Nothing half-made stays behind: a later Create starts clean.
		os.RemoveAll(dir)
	}
	return h, err
}

func (d *Driver) start(ctx context.Context, spec cloud.HostSpec, dir string) (cloud.Host, error) {
	if err := os.MkdirAll(filepath.Join(dir, routerDir), 0o700); err != nil {
		return cloud.Host{}, fmt.Errorf("local: create state directory: %w", err)
	}
	l := Launch{
		StateDir: dir, RouterDir: filepath.Join(dir, routerDir), KeyFile: filepath.Join(dir, keyFile),
		LogFile: filepath.Join(dir, logFile), FailureDomain: failureDomain(spec.Name).String(),
	}
	if err := atomicfile.Write(l.KeyFile, cloud.UserData(spec.RegistrationKey), 0o600); err != nil {
		return cloud.Host{}, fmt.Errorf("local: write the key file: %w", err)
	}
	st := state{Name: spec.Name, RouterID: spec.RouterID, DNS: spec.DNSServers, Image: spec.Image, Isolation: d.opts.Isolation, Created: time.Now().UTC()}
	argv := d.opts.Command(l)
	if len(argv) == 0 {
		return cloud.Host{}, errors.New("local: the router command is empty")
	}
	if d.opts.Isolation == IsolationNetns {
		c, resolved, err := d.buildNamespace(ctx, dir, spec.Egress)
		if err != nil {
			return cloud.Host{}, err
		}
		st.Net, l.Namespace = &c, c.Namespace
		if st.Firewall, err = namespaceFirewall(ctx, c.Namespace); err != nil {
			return cloud.Host{}, errors.Join(err, d.teardown(ctx, st))
		}
		st.Egress = ruleStrings(resolved)
		argv = append([]string{"ip", "netns", "exec", c.Namespace}, argv...)
	}
	proc, err := d.spawn(argv, l)
	if err != nil {
		return cloud.Host{}, errors.Join(err, d.teardown(ctx, st))
	}
	st.Process = proc
	if err := saveState(dir, st); err != nil {
		proc.StopSession(d.opts.StopTimeout)
		return cloud.Host{}, errors.Join(err, d.teardown(ctx, st))
	}
	d.log.DebugContext(ctx, "started local router host", "host", spec.Name, "pid", proc.PID, "isolation", st.Isolation)
	select {
	case <-ctx.Done():
	case <-time.After(d.opts.StartupGrace):
	}
	if !proc.Alive() {
		tail := logTail(l.LogFile, 2048)
		return cloud.Host{}, errors.Join(
			fmt.Errorf("local: router process exited right after start; its log (%s) ends with:\n%s", l.LogFile, tail),
			d.teardown(ctx, st))
	}
	return d.host(ctx, dir, st), nil
}

func failureDomain(name string) cloud.FailureDomain {
	return cloud.FailureDomain{Cloud: "local", Region: machineName(), Zone: name}
}

func (d *Driver) buildNamespace(ctx context.Context, dir string, rules []egress.Rule) (netConfig, []egress.Rule, error) {
	c, seed := netNames(dir)
	// A namespace of the same name is a leftover of a crashed create: start from scratch.
	if err := teardownNamespace(ctx, c); err != nil {
		return c, nil, fmt.Errorf("local: remove leftover namespace %s: %w", c.Namespace, err)
	}
	resolved, err := d.resolve(ctx, rules)
	if err != nil {
		return c, nil, err
	}
	if c.HostAddr, c.NSAddr, err = allocate(d.opts.AddressPool, seed); err != nil {
		return c, nil, fmt.Errorf("local: %w", err)
	}
	nsRules, hostRules, err := rulesets(c, resolved)
	if err != nil {
		return c, nil, err
	}
	if err := setupNamespace(ctx, c, nsRules, hostRules, d.opts.DNSServers); err != nil {
		return c, nil, errors.Join(fmt.Errorf("local: build namespace %s: %w", c.Namespace, err), teardownNamespace(ctx, c))
	}
	return c, resolved, nil
}

// resolve turns the allowlist's names into addresses (the namespace firewall matches
// addresses) and checks that the namespace's resolvers stay reachable.
func (d *Driver) resolve(ctx context.Context, rules []egress.Rule) ([]egress.Rule, error) {
	resolved, err := egress.ResolveNames(ctx, d.opts.Resolver, rules)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	for _, s := range d.opts.DNSServers {
		if !allowsDNS(resolved, s) {
			return nil, fmt.Errorf("local: DNS server %s is not in the egress allowlist: add it to the DNS servers of the egress rules", s)
		}
	}
	return resolved, nil
}

func rulesets(c netConfig, resolved []egress.Rule) (nsRules, hostRules string, err error) {
	if nsRules, err = namespaceRuleset(c, resolved); err != nil {
		return "", "", fmt.Errorf("local: %w", err)
	}
	if hostRules, err = hostRuleset(c, resolved); err != nil {
		return "", "", fmt.Errorf("local: %w", err)
	}
	return nsRules, hostRules, nil
}

func ruleStrings(rules []egress.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.String()
	}
	return out
}

// UpdateEgress makes the namespace firewall of a host the allowlist rules, in place: both
// nftables tables are reloaded, each in one atomic transaction (nft -f), while the router
// keeps running; established connections stay (conntrack outlives the reload) and a
// connection the new allowlist refuses cannot start. Names are resolved again here. A host
// without isolation has no firewall: nothing to do.
func (d *Driver) UpdateEgress(ctx context.Context, id string, rules []egress.Rule) error {
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(id)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local: router host %s: %w", id, cloud.ErrNotFound)
	}
	if err != nil || st.Net == nil {
		return err
	}
	if !netns.Exists(st.Net.Namespace) {
		return fmt.Errorf("local: network namespace %s of %s is gone: the host must be replaced", st.Net.Namespace, id)
	}
	resolved, err := d.resolve(ctx, rules)
	if err != nil {
		return err
	}
	nsRules, hostRules, err := rulesets(*st.Net, resolved)
	if err != nil {
		return err
	}
	// Host side first: a new loopback port is mapped before the namespace may use it.
	if err := netns.Run(ctx, hostRules, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("local: reload the host-side table: %w", err)
	}
	if err := netns.Run(ctx, nsRules, "ip", "netns", "exec", st.Net.Namespace, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("local: reload the namespace firewall: %w", err)
	}
	if st.Firewall, err = namespaceFirewall(ctx, st.Net.Namespace); err != nil {
		return err
	}
	st.Egress = ruleStrings(resolved)
	d.log.DebugContext(ctx, "updated namespace firewall", "host", st.Name, "rules", len(resolved))
	return saveState(id, st)
}

// EgressDrift lists how the host's namespace firewall differs from the allowlist rules: a
// firewall loaded from another allowlist, and any change made to it since it was loaded (a
// rule inserted, changed or deleted). Empty for a host without isolation.
func (d *Driver) EgressDrift(ctx context.Context, id string, rules []egress.Rule) ([]string, error) {
	st, err := loadState(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local: router host %s: %w", id, cloud.ErrNotFound)
	}
	if err != nil || st.Net == nil || !netns.Exists(st.Net.Namespace) {
		return nil, err // a missing namespace is Read's drift
	}
	var drift []string
	if resolved, err := egress.ResolveNames(ctx, d.opts.Resolver, rules); err == nil {
		drift = cloud.EgressDiff("namespace firewall "+st.Net.Namespace, ruleStrings(resolved), st.Egress)
	} else {
		drift = append(drift, fmt.Sprintf("the allowlist's names do not resolve (%v): the namespace firewall keeps its rules", err))
	}
	live, err := namespaceFirewall(ctx, st.Net.Namespace)
	if err != nil {
		return drift, nil // the table is gone: Read reports it
	}
	if st.Firewall != "" && live != st.Firewall {
		drift = append(drift, fmt.Sprintf("nftables table inet %s in namespace %s was changed outside Terraform:\n%s",
			nsTable, st.Net.Namespace, lineDiff(st.Firewall, live)))
	}
	return drift, nil
}

func allowsDNS(rules []egress.Rule, server netip.Addr) bool {
	for _, r := range rules {
		if p, ok := r.Prefix(); ok && p.Contains(server) && r.Protocol == egress.UDP && r.Ports.From <= egress.DNSPort && egress.DNSPort <= r.Ports.To {
			return true
		}
	}
	return false
}

// spawn starts the process detached: its own session (no signals from the caller's terminal
// or process group), stdin from /dev/null, output to the log file. It outlives the caller
// (Terraform's provider process exits after apply).
func (d *Driver) spawn(argv []string, l Launch) (procid.Process, error) {
	logf, err := os.OpenFile(l.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return procid.Process{}, fmt.Errorf("local: open log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = l.StateDir
	cmd.Env = append(os.Environ(), d.opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return procid.Process{}, fmt.Errorf("local: start router %q: %w", argv[0], err)
	}
	proc, err := procid.Of(cmd.Process.Pid)
	// Reap the process if it exits while this process still runs, so it does not linger as a
	// zombie that looks alive.
	go cmd.Wait()
	if err != nil {
		return procid.Process{}, fmt.Errorf("local: inspect router process: %w", err)
	}
	return proc, nil
}

func (d *Driver) teardown(ctx context.Context, st state) error {
	if st.Net == nil {
		return nil
	}
	return teardownNamespace(ctx, *st.Net)
}

func logTail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(bytes.TrimSpace(b))
}

func (d *Driver) host(ctx context.Context, dir string, st state) cloud.Host {
	h := cloud.Host{
		ID: dir, Name: st.Name, InstanceType: "process", PrivateAddress: "127.0.0.1", Image: st.Image,
		FailureDomain: failureDomain(st.Name), State: "running", Isolation: string(st.Isolation),
		RouterID: st.RouterID, DNSServers: st.DNS,
	}
	if st.Net != nil {
		h.PrivateAddress = st.Net.NSAddr.String()
		if !netns.Exists(st.Net.Namespace) {
			h.Drift = append(h.Drift, fmt.Sprintf("network namespace %s is gone", st.Net.Namespace))
		} else if !namespaceFirewallIntact(ctx, st.Net.Namespace) {
			h.Drift = append(h.Drift, fmt.Sprintf("nftables table inet %s in namespace %s is gone: the router is not confined", nsTable, st.Net.Namespace))
		}
	}
	return h
}

// Read returns the host, or an error wrapping cloud.ErrNotFound when its directory is gone or
// its process has exited (drift; the next Create restarts it).
func (d *Driver) Read(ctx context.Context, id string) (cloud.Host, error) {
	st, err := loadState(id)
	if errors.Is(err, fs.ErrNotExist) {
		return cloud.Host{}, fmt.Errorf("local: router host %s: %w", id, cloud.ErrNotFound)
	}
	if err != nil {
		return cloud.Host{}, err
	}
	if !st.Process.Alive() {
		return cloud.Host{}, fmt.Errorf("local: router process %d of %s exited (log: %s): %w", st.Process.PID, id, filepath.Join(id, logFile), cloud.ErrNotFound)
	}
	return d.host(ctx, id, st), nil
}

// Delete stops the process, removes the namespace (if any) and the state directory. Deleting
// a host that is already gone succeeds.
func (d *Driver) Delete(ctx context.Context, id string) error {
	if filepath.Dir(filepath.Clean(id)) != filepath.Clean(d.opts.StateRoot) {
		return fmt.Errorf("local: %q is not a router host of state root %s", id, d.opts.StateRoot)
	}
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.RemoveAll(id)
	case err != nil:
		return err
	}
	st.Process.StopSession(d.opts.StopTimeout)
	if st.Process.Alive() {
		return fmt.Errorf("local: router process %d did not stop", st.Process.PID)
	}
	if err := d.teardown(ctx, st); err != nil {
		return err
	}
	return os.RemoveAll(id)
}
