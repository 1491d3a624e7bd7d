package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztna/ztna/internal/testenv"
)

// TestTunnelUnit: systemd loads ztna-tunnel.service without a complaint (unknown directives, bad
// values, a missing executable), and the unit keeps its sandbox.
func TestTunnelUnit(t *testing.T) {
	unit, err := os.ReadFile("ztna-tunnel.service")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sandbox", func(t *testing.T) {
		for _, want := range []string{"DynamicUser=yes\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=yes\n",
			"PrivateTmp=yes\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
			"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n", "SystemCallFilter=@system-service\n", "SystemCallFilter=~@privileged\n",
			"StateDirectory=ztna-tunnel\n", "StateDirectoryMode=0700\n", "--identity /var/lib/ztna-tunnel/identity", "--drain 5s"} {
			if !bytes.Contains(unit, []byte(want)) {
				t.Errorf("ztna-tunnel.service lacks %q", strings.TrimSpace(want))
			}
		}
	})
	t.Run("verify", func(t *testing.T) {
		testenv.Integration(t, "systemd-analyze")
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze not installed")
		}
		// A root with the host's targets and slices (which the unit's dependencies name), the
		// unit and an executable /usr/bin/ztna.
		root := t.TempDir()
		units := filepath.Join(root, "usr/lib/systemd/system")
		os.MkdirAll(units, 0o755)
		os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
		var host []string
		for _, pattern := range []string{"*.target", "*.slice"} {
			m, _ := filepath.Glob(filepath.Join("/usr/lib/systemd/system", pattern))
			host = append(host, m...)
		}
		if len(host) == 0 {
			t.Skip("no systemd units on this host to verify against")
		}
		for _, src := range append(host, "ztna-tunnel.service") {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(units, filepath.Base(src)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "usr/bin/ztna"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "--man=no", "ztna-tunnel.service").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}
