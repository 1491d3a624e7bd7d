package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/ztna/ztna/internal/atomicfile"
)

// Split DNS through a dnsmasq on the host: the tunnel keeps a dnsmasq servers-file (see
// dnsmasq(8), --servers-file) with one "server=/<service name>/<tunnel DNS>" line per name it
// serves, and dnsmasq, told by SIGHUP to re-read it, sends only those names to the tunnel.
// Every other name goes to dnsmasq's own upstream and never depends on the tunnel. On exit the
// file is emptied, so that the service names then get dnsmasq's normal answer (NXDOMAIN for a
// private name) instead of a timeout against a stopped tunnel.

// dnsmasqName is what a name must look like to be written as a dnsmasq server line: a
// character such as '/', '#' or a newline would change the line's meaning.
var dnsmasqName = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$`)

// dnsmasqServers renders the servers-file for the names in table, answered at dnsAddr.
func dnsmasqServers[V any](table map[string]V, dnsAddr netip.AddrPort) (b []byte, skipped []string) {
	ip := dnsAddr.Addr()
	if ip.IsUnspecified() { // the tunnel listens on every address: loopback is one of them
		ip = netip.IPv6Loopback()
		if dnsAddr.Addr().Is4() {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	server := ip.String() + "#" + strconv.Itoa(int(dnsAddr.Port()))
	names := make([]string, 0, len(table))
	for name := range table {
		name = strings.TrimSuffix(name, ".")
		if !dnsmasqName.MatchString(name) {
			skipped = append(skipped, name)
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	buf.WriteString("# Written by ztna tunnel: the service names it answers. Emptied when it stops.\n")
	for _, name := range names {
		fmt.Fprintf(&buf, "server=/%s/%s\n", name, server)
	}
	return buf.Bytes(), skipped
}

// registerNames writes the dnsmasq servers-file for table when it changed, and signals dnsmasq
// to re-read it. A failure is logged once and retried on the next change of names; t.mu is held.
func (t *Tunnel) registerNames(table map[string]localAddrs) {
	if t.cfg.DnsmasqServersFile == "" {
		return
	}
	dnsAddr, err := netip.ParseAddrPort(t.DNSAddr())
	if err != nil {
		t.warnOnce("dnsmasq", "cannot register the service names with dnsmasq", "err", err)
		return
	}
	b, skipped := dnsmasqServers(table, dnsAddr)
	for _, name := range skipped {
		t.warnOnce("dnsmasq/"+name, "service name has characters a dnsmasq server line cannot carry; not registered with dnsmasq", "name", name)
	}
	if t.dnsmasqWritten != nil && bytes.Equal(b, t.dnsmasqWritten) {
		return
	}
	// 0644: dnsmasq re-reads the file after dropping to its own user.
	if err := atomicfile.Write(t.cfg.DnsmasqServersFile, b, 0o644); err != nil {
		t.warnOnce("dnsmasq", "cannot write the dnsmasq servers-file; dnsmasq keeps sending the names it had to the tunnel", "path", t.cfg.DnsmasqServersFile, "err", err)
		return
	}
	t.dnsmasqWritten = b
	delete(t.warned, "dnsmasq")
	if err := signalDnsmasq(t.cfg.DnsmasqPIDFile); err != nil {
		t.warnOnce("dnsmasq-signal", "cannot tell dnsmasq to re-read its servers-file; it uses the new names after its next SIGHUP or restart",
			"pid_file", t.cfg.DnsmasqPIDFile, "err", err)
		return
	}
	delete(t.warned, "dnsmasq-signal")
	t.log.Info("service names registered with dnsmasq", "servers_file", t.cfg.DnsmasqServersFile, "names", len(table)-len(skipped))
}

// signalDnsmasq sends SIGHUP to the process whose pid is in pidFile; "" does nothing. A
// dnsmasq that is not running reads the file when it starts.
func signalDnsmasq(pidFile string) error {
	if pidFile == "" {
		return nil
	}
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist: is dnsmasq running with --pid-file=%[1]s?", pidFile)
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s holds %q, not a process id", pidFile, strings.TrimSpace(string(b)))
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("SIGHUP to dnsmasq (pid %d): %w", pid, err)
	}
	return nil
}
