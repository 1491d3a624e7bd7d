package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	"github.com/ztna/ztna/internal/netns"
	"github.com/ztna/ztna/internal/procid"
	"github.com/ztna/ztna/internal/statefile"
)

// Defaults of the demo network. The subnet is a /30: the host end of the veth and the
// namespace end, which carries the DNS server and the service.
const (
	defaultNamespace = "ztna-demo"
	defaultSubnet    = "10.233.0.0/30"
	defaultHost      = "app.customer.internal"
	stateFile        = "demo.json"
	readyFile        = "ready"
	logFile          = "demo.log"
	httpPort         = 80
	dnsPort          = 53
)

// names of the kernel objects of one demo network, derived from its namespace so that
// several demo networks (the quickstart's, a test's) can coexist.
type names struct{ hostVeth, nsVeth, table string }

var namespaceRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

func namesOf(namespace string) (names, error) {
	if !namespaceRE.MatchString(namespace) {
		return names{}, fmt.Errorf("--namespace %q: use up to 31 lower-case letters, digits and '-', starting with a letter", namespace)
	}
	sum := sha256.Sum256([]byte(namespace))
	id := hex.EncodeToString(sum[:4])
	// Interface names have at most 15 bytes; nftables table names no '-'.
	return names{hostVeth: "zd" + id + "h", nsVeth: "zd" + id + "n", table: strings.ReplaceAll(namespace, "-", "_")}, nil
}

// state is what up built, in <state dir>/demo.json; down removes exactly this.
type state struct {
	// Veth is the namespace and its veth pair; the DNS server and the service listen on its
	// namespace end, NSAddr (ns_addr).
	netns.Veth
	Table     string         `json:"table"`
	FQDN      string         `json:"fqdn"`
	DNSServer string         `json:"dns_server"`
	URL       string         `json:"url"`
	Process   procid.Process `json:"process"`
	// Linked are router veths whose forwarding link-router turned on; down turns it off.
	Linked []string `json:"linked_interfaces,omitempty"`
}

func loadState(dir string) (state, error) {
	return statefile.Load[state](filepath.Join(dir, stateFile))
}

func saveState(dir string, st state) error {
	return statefile.Save(filepath.Join(dir, stateFile), st)
}

func upCommand() *cobra.Command {
	var dir, subnet, fqdn, namespace string
	var asEnv bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build the demo network and start its DNS server and HTTP service",
		Long: `up creates the namespace, the veth pair and the host's nftables table, starts the DNS
server and the HTTP service inside the namespace (detached; 'down' stops them), waits until both
listen, and prints where they are: JSON by default, KEY=value lines with --env. Running up again
while the network is up only prints it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := up(cmd.Context(), dir, namespace, subnet, fqdn)
			if err != nil {
				return err
			}
			return printState(cmd.OutOrStdout(), st, asEnv)
		},
	}
	cmd.Flags().StringVar(&dir, "state-dir", "", "directory for the demo's state, log and readiness file (required)")
	cmd.Flags().StringVar(&subnet, "subnet", defaultSubnet, "IPv4 /30 of the veth pair (host end, namespace end)")
	cmd.Flags().StringVar(&fqdn, "name", defaultHost, "the service's DNS name, answered only by the demo DNS server")
	cmd.Flags().StringVar(&namespace, "namespace", defaultNamespace, "network namespace name")
	cmd.Flags().BoolVar(&asEnv, "env", false, "print DEMO_*=value lines instead of JSON")
	cmd.MarkFlagRequired("state-dir")
	return cmd
}

func printState(w io.Writer, st state, asEnv bool) error {
	if !asEnv {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	_, err := fmt.Fprintf(w, "DEMO_FQDN=%s\nDEMO_DNS_SERVER=%s\nDEMO_SERVICE_ADDR=%s\nDEMO_URL=%s\nDEMO_NAMESPACE=%s\nDEMO_TABLE=%s\n",
		st.FQDN, st.DNSServer, st.NSAddr, st.URL, st.Namespace, st.Table)
	return err
}

func checkRoot() error {
	if err := netns.CheckTools(); err != nil {
		return fmt.Errorf("the demo network: %w", err)
	}
	return nil
}

func up(ctx context.Context, dir, namespace, subnet, fqdn string) (state, error) {
	if err := checkRoot(); err != nil {
		return state{}, err
	}
	prefix, err := netip.ParsePrefix(subnet)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() != 30 || prefix.Masked() != prefix {
		return state{}, fmt.Errorf("--subnet %q: use an IPv4 /30 such as %s", subnet, defaultSubnet)
	}
	fqdn = strings.ToLower(strings.TrimSuffix(fqdn, "."))
	if labels, ok := dns.IsDomainName(fqdn); !ok || labels < 2 {
		return state{}, fmt.Errorf("--name %q: use a fully qualified name such as %s", fqdn, defaultHost)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return state{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return state{}, err
	}
	if old, err := loadState(dir); err == nil {
		if old.Process.Alive() && netns.Exists(old.Namespace) {
			return old, nil
		}
		if err := teardown(ctx, dir, old); err != nil {
			return state{}, fmt.Errorf("clean up the previous demo network: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return state{}, err
	}
	n, err := namesOf(namespace)
	if err != nil {
		return state{}, err
	}
	hostAddr := prefix.Addr().Next()
	st := state{
		Veth:  netns.Veth{Namespace: namespace, HostVeth: n.hostVeth, NSVeth: n.nsVeth, HostAddr: hostAddr, NSAddr: hostAddr.Next()},
		Table: n.table, FQDN: fqdn,
	}
	st.DNSServer = netip.AddrPortFrom(st.NSAddr, dnsPort).String()
	st.URL = fmt.Sprintf("http://%s/", fqdn)
	if netns.Exists(namespace) {
		return state{}, fmt.Errorf("network namespace %s exists and is not this demo's (no %s in %s): remove it (ip netns del %s) or choose --namespace", namespace, stateFile, dir, namespace)
	}
	if err := checkFree(prefix); err != nil {
		return state{}, err
	}
	if err := build(ctx, st, prefix); err != nil {
		return state{}, errors.Join(err, teardown(ctx, dir, st))
	}
	os.Remove(filepath.Join(dir, readyFile))
	proc, err := spawnServer(dir, st)
	if err != nil {
		return state{}, errors.Join(err, teardown(ctx, dir, st))
	}
	st.Process = proc
	if err := saveState(dir, st); err != nil {
		return state{}, errors.Join(err, teardown(ctx, dir, st))
	}
	if err := waitReady(ctx, dir, proc); err != nil {
		return state{}, errors.Join(err, teardown(ctx, dir, st))
	}
	return st, nil
}

// checkFree refuses a subnet that overlaps an address already on this host.
func checkFree(p netip.Prefix) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if q, err := netip.ParsePrefix(a.String()); err == nil && q.Overlaps(p) {
			return fmt.Errorf("--subnet %s overlaps %s on this host: choose another /30", p, q)
		}
	}
	return nil
}

// hostRuleset refuses every connection the host's own processes start into the demo network
// except DNS queries to the customer DNS server: a router host's firewall is built from
// addresses, so whoever creates it resolves the service names with the routers' DNS server.
// Routed traffic from router namespaces passes (it takes the forward path, not output).
func hostRuleset(table string, subnet netip.Prefix, dnsServer netip.Addr) string {
	return fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr %[3]s meta l4proto { tcp, udp } th dport %[4]d accept
		ip daddr %[2]s meta l4proto { tcp, udp } reject with icmpx admin-prohibited
	}
}
`, table, subnet, dnsServer, dnsPort)
}

func build(ctx context.Context, st state, subnet netip.Prefix) error {
	if err := st.Veth.Create(ctx); err != nil {
		return err
	}
	// Replies from the namespace to routers are forwarded by the host: only this interface
	// (and the router veths link-router names) forwards, the host's ip_forward stays as it is.
	if err := setForwarding(st.HostVeth, true); err != nil {
		return err
	}
	return netns.Run(ctx, hostRuleset(st.Table, subnet, st.NSAddr), "nft", "-f", "-")
}

func setForwarding(iface string, on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", iface, "forwarding"), []byte(v), 0o644); err != nil {
		return fmt.Errorf("set forwarding on %s: %w", iface, err)
	}
	return nil
}

// spawnServer starts 'ztna-demo serve' inside the namespace, detached in its own session so it
// outlives this command, with its output in the log file.
func spawnServer(dir string, st state) (procid.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return procid.Process{}, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return procid.Process{}, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", st.Namespace, self, "serve",
		"--dns", st.DNSServer,
		"--http", netip.AddrPortFrom(st.NSAddr, httpPort).String(),
		"--name", st.FQDN, "--answer", st.NSAddr.String(),
		"--ready-file", filepath.Join(dir, readyFile))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return procid.Process{}, fmt.Errorf("start the demo servers: %w", err)
	}
	p, err := procid.Of(cmd.Process.Pid)
	go cmd.Wait() // reap it if it exits while up still runs
	return p, err
}

func waitReady(ctx context.Context, dir string, p procid.Process) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, readyFile)); err == nil {
			return nil
		}
		if !p.Alive() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, logFile))
	return fmt.Errorf("the demo servers did not start; %s says:\n%s", filepath.Join(dir, logFile), bytes.TrimSpace(log))
}

func downCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the demo servers and remove the namespace, veth and nftables table",
		Long: `down removes everything up created and turns forwarding off again on the router veths
link-router enabled. It succeeds when there is nothing left to remove.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadState(dir)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			return teardown(cmd.Context(), dir, st)
		},
	}
	cmd.Flags().StringVar(&dir, "state-dir", "", "the directory given to up (required)")
	cmd.MarkFlagRequired("state-dir")
	return cmd
}

// teardown removes what st describes; parts already gone are skipped.
func teardown(ctx context.Context, dir string, st state) error {
	var errs []error
	st.Process.StopSession(5 * time.Second)
	if st.Process.Alive() {
		errs = append(errs, fmt.Errorf("demo server process %d did not stop", st.Process.PID))
	}
	if st.Table != "" && netns.Run(ctx, "", "nft", "list", "table", "inet", st.Table) == nil {
		errs = append(errs, netns.Run(ctx, "", "nft", "delete", "table", "inet", st.Table))
	}
	if netns.Exists(st.Namespace) {
		errs = append(errs, netns.Run(ctx, "", "ip", "netns", "del", st.Namespace))
	}
	// Deleting the namespace destroys the veth pair, asynchronously: the host end may still
	// be listed, or already gone, by now.
	if _, err := net.InterfaceByName(st.HostVeth); err == nil && st.HostVeth != "" {
		if err := netns.Run(ctx, "", "ip", "link", "del", st.HostVeth); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	for _, iface := range st.Linked {
		if _, err := net.InterfaceByName(iface); err == nil {
			errs = append(errs, setForwarding(iface, false))
		}
	}
	for _, f := range []string{stateFile, readyFile, logFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func linkRouterCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "link-router ADDRESS...",
		Short: "Let namespaced routers reach the demo network",
		Long: `link-router takes the private addresses of namespaced router hosts (ztna_router_host
private_address) and turns on IPv4 forwarding on the host end of each router's veth, the
interface the host routes that address through. Without it, traffic from a router namespace to
an address beyond the host is dropped. The router's own nftables ruleset still limits it to its
egress allowlist. Only veth interfaces are accepted; down turns forwarding off again.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRoot(); err != nil {
				return err
			}
			st, err := loadState(dir)
			if err != nil {
				return fmt.Errorf("the demo network is not up (%w): run ztna-demo up first", err)
			}
			for _, a := range args {
				iface, err := linkRouter(cmd.Context(), a)
				if err != nil {
					return err
				}
				if !containsString(st.Linked, iface) {
					st.Linked = append(st.Linked, iface)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "router %s: forwarding on %s\n", a, iface)
			}
			return saveState(dir, st)
		},
	}
	cmd.Flags().StringVar(&dir, "state-dir", "", "the directory given to up (required)")
	cmd.MarkFlagRequired("state-dir")
	return cmd
}

func linkRouter(ctx context.Context, address string) (string, error) {
	addr, err := netip.ParseAddr(address)
	if err != nil || !addr.Is4() {
		return "", fmt.Errorf("%q is not an IPv4 address: pass a router host's private_address", address)
	}
	out, err := exec.CommandContext(ctx, "ip", "-o", "route", "get", addr.String()).Output()
	if err != nil {
		return "", fmt.Errorf("ip route get %s: %w", addr, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) > 0 && fields[0] == "local" {
		return "", fmt.Errorf("%s is an address of this host, not of a router namespace", addr)
	}
	iface := ""
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "dev" {
			iface = fields[i+1]
		}
	}
	if iface == "" {
		return "", fmt.Errorf("no route to %s: is the router host running?", addr)
	}
	link, err := exec.CommandContext(ctx, "ip", "-d", "-o", "link", "show", "dev", iface).Output()
	if err != nil || !strings.Contains(string(link), " veth ") {
		return "", fmt.Errorf("%s is reached through %s, which is not a veth: only namespaced routers can be linked", addr, iface)
	}
	return iface, setForwarding(iface, true)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
