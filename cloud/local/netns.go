package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/netns"
)

// checkNetnsTools fails early, with what to install, when the commands are missing.
func checkNetnsTools() error {
	if err := netns.CheckTools(); err != nil {
		return fmt.Errorf(`isolation "netns": %w; or use isolation "none"`, err)
	}
	return nil
}

// allocate picks a free /30 in pool, starting at a slot derived from seed so hosts keep their
// addresses across restarts when they can, skipping any block that overlaps an address of the
// host. The caller holds the state root lock, so two creates cannot pick the same block.
func allocate(pool netip.Prefix, seed uint32) (hostAddr, nsAddr netip.Addr, err error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	var used []netip.Prefix
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			used = append(used, p)
		}
	}
	if !pool.Addr().Is4() || pool.Bits() > 30 {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("address pool %s: use an IPv4 prefix of /30 or larger", pool)
	}
	blocks := uint32(1) << (30 - pool.Bits())
	base := pool.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := range blocks {
		n := start + 4*((seed+i)%blocks)
		block := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 30)
		free := true
		for _, u := range used {
			if u.Overlaps(block) {
				free = false
				break
			}
		}
		if free {
			h := block.Addr().Next()
			return h, h.Next(), nil
		}
	}
	return netip.Addr{}, netip.Addr{}, fmt.Errorf("address pool %s has no free /30 left: delete unused router hosts or set a larger pool", pool)
}

// setupNamespace builds the namespace, its veth pair and both firewalls. The namespace
// firewall is in place before any process runs in it.
func setupNamespace(ctx context.Context, c netConfig, nsRules, hostRules string, dnsServers []netip.Addr) error {
	ns := c.Namespace
	if err := c.Veth.Create(ctx); err != nil {
		return err
	}
	if err := netns.Run(ctx, "", "ip", "-n", ns, "route", "add", "default", "via", c.HostAddr.String()); err != nil {
		return err
	}
	// Inside the namespace nftables is loaded before anything else runs there.
	if err := netns.Run(ctx, nsRules, "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("load the namespace firewall: %w", err)
	}
	// Translated loopback connections keep a 127.0.0.1 source until masqueraded, and arrive
	// on the host for 127.0.0.1: both ends must accept loopback addresses on the veth.
	if err := netns.Run(ctx, "", "ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", c.HostVeth, "route_localnet"), []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable route_localnet on %s: %w", c.HostVeth, err)
	}
	if err := netns.Run(ctx, hostRules, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("load the host-side table: %w", err)
	}
	if len(dnsServers) > 0 {
		// ip netns exec bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
		var conf strings.Builder
		for _, s := range dnsServers {
			fmt.Fprintf(&conf, "nameserver %s\n", s)
		}
		if err := os.MkdirAll(filepath.Join("/etc/netns", ns), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join("/etc/netns", ns, "resolv.conf"), []byte(conf.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// teardownNamespace removes everything setupNamespace made; parts already gone are skipped,
// so it also cleans up after a setup that failed half-way.
func teardownNamespace(ctx context.Context, c netConfig) error {
	var errs []error
	if tableExists(ctx, c.HostTable) {
		if err := netns.Run(ctx, "", "nft", "delete", "table", "ip", c.HostTable); err != nil {
			errs = append(errs, err)
		}
	}
	if netns.Exists(c.Namespace) {
		// Deleting the namespace destroys its veth end, and with it the host end.
		if err := netns.Run(ctx, "", "ip", "netns", "del", c.Namespace); err != nil {
			errs = append(errs, err)
		}
	}
	// The host end disappears asynchronously once its peer's namespace is gone; delete it
	// only if it is still there after a moment (a namespace-less leftover of a failed setup).
	for i := 0; i < 50 && interfaceExists(c.HostVeth); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if interfaceExists(c.HostVeth) {
		if err := netns.Run(ctx, "", "ip", "link", "del", c.HostVeth); err != nil && interfaceExists(c.HostVeth) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join("/etc/netns", c.Namespace)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func tableExists(ctx context.Context, table string) bool {
	return netns.Run(ctx, "", "nft", "list", "table", "ip", table) == nil
}

// namespaceFirewall is nft's listing of the namespace's table: the canonical form of what
// the kernel enforces, so that equal listings are equal firewalls.
func namespaceFirewall(ctx context.Context, ns string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "list", "table", "inet", nsTable)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("local: list the firewall of namespace %s: %w: %s", ns, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// lineDiff lists the lines only one of two listings has, "+ " for added and "- " for removed.
func lineDiff(want, have string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[strings.TrimSpace(l)]++
	}
	var added []string
	for _, l := range strings.Split(have, "\n") {
		l = strings.TrimSpace(l)
		if count[l] > 0 {
			count[l]--
		} else {
			added = append(added, "+ "+l)
		}
	}
	var removed []string
	for _, l := range strings.Split(want, "\n") {
		l = strings.TrimSpace(l)
		if count[l] > 0 {
			count[l]--
			removed = append(removed, "- "+l)
		}
	}
	return strings.Join(append(added, removed...), "\n")
}

// namespaceFirewallIntact reports whether the namespace still has its nftables table.
func namespaceFirewallIntact(ctx context.Context, ns string) bool {
	return netns.Run(ctx, "", "ip", "netns", "exec", ns, "nft", "list", "table", "inet", nsTable) == nil
}
