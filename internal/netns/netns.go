// Package netns builds the plumbing that cloud/local (a router host per namespace) and
// ztna-demo (the customer network) share: a network namespace joined to the host by a veth
// pair with a /30. It drives the ip and nft commands (iproute2, nftables), which an operator
// also uses to inspect the result, and whose text rulesets `nft -f` loads atomically.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CheckTools fails early, saying what to do, when this process cannot build namespaces: it
// needs root and the ip and nft commands.
func CheckTools() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces, veth pairs and nftables need root: run as root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the %q command is missing: install iproute2 and nftables (scripts/deps.sh)", tool)
		}
	}
	return nil
}

// Run executes a command, feeding it stdin, and returns its combined output in the error.
func Run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Exists reports whether the named namespace exists (ip netns add makes /run/netns/<name>).
func Exists(name string) bool {
	if name == "" {
		return false
	}
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// Veth is a namespace joined to the host by a veth pair: HostVeth with HostAddr on the host,
// NSVeth with NSAddr inside Namespace, both in one /30.
type Veth struct {
	Namespace string     `json:"namespace"`
	HostVeth  string     `json:"host_veth"`
	NSVeth    string     `json:"ns_veth"`
	HostAddr  netip.Addr `json:"host_addr"`
	NSAddr    netip.Addr `json:"ns_addr"`
}

// Create makes the namespace (with loopback up) and the veth pair, addressed and up. It stops
// at the first step that fails; the caller removes what was made (deleting the namespace
// deletes both ends of the pair).
func (v Veth) Create(ctx context.Context) error {
	ns := v.Namespace
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "link", "add", v.HostVeth, "type", "veth", "peer", "name", v.NSVeth, "netns", ns},
		{"ip", "addr", "add", v.HostAddr.String() + "/30", "dev", v.HostVeth},
		{"ip", "link", "set", v.HostVeth, "up"},
		{"ip", "-n", ns, "addr", "add", v.NSAddr.String() + "/30", "dev", v.NSVeth},
		{"ip", "-n", ns, "link", "set", v.NSVeth, "up"},
	}
	for _, s := range steps {
		if err := Run(ctx, "", s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}
