package image

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/imagecatalog"
	"github.com/ztna/ztna/packer/nftest"
)

// RouterVersion is the version the test images are baked with.
const RouterVersion = "0.1.0-test"

// builtImage is the result of one `packer build examples/packer/local.pkr.hcl`, shared by the
// tests of this package.
type builtImage struct {
	dir, path, catalog string
	// buildKey is the public key of the key that signed the image's attestation.
	buildKey ed25519.PublicKey
	started  time.Time
	err      error
}

var (
	buildOnce, sshBuildOnce sync.Once
	built, sshBuilt         builtImage
)

// localImage builds the example once per test binary run.
func localImage(t *testing.T) builtImage {
	t.Helper()
	buildOnce.Do(func() { built = buildImage(t) })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built
}

// sshImage builds the example with openssh-server once per test binary run.
func sshImage(t *testing.T) builtImage {
	t.Helper()
	sshBuildOnce.Do(func() {
		sshBuilt = buildImage(t, "-var", `extra_packages=["openssh-server"]`, "-var", `ssh_allow_from=["192.0.2.0/24"]`)
	})
	if sshBuilt.err != nil {
		t.Fatal(sshBuilt.err)
	}
	return sshBuilt
}

// buildImage runs packer build examples/packer/local.pkr.hcl with vars.
func buildImage(t *testing.T, vars ...string) (b builtImage) {
	t.Helper()
	needRoot(t)
	router := bin(t, "ztna-router")
	b.started = time.Now().UTC().Truncate(time.Second)
	cache, err := imageCache()
	if err != nil {
		b.err = err
		return b
	}
	dir, err := os.MkdirTemp("", "ztna-image-")
	if err != nil {
		b.err = err
		return b
	}
	builtDirs = append(builtDirs, dir)
	b.dir = dir
	b.catalog = filepath.Join(dir, "images.json")
	keyFile := filepath.Join(dir, "build.key")
	if b.buildKey, err = writeBuildKey(keyFile); err != nil {
		b.err = err
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := append([]string{"build",
		"-var", "router_binary=" + router,
		"-var", "router_version=" + RouterVersion,
		"-var", "output_directory=" + filepath.Join(dir, "output"),
		"-var", "catalog_path=" + b.catalog,
		"-var", "attestation_key_file=" + keyFile}, vars...)
	out, err := packer(ctx, []string{"PACKER_CACHE_DIR=" + cache}, append(args, "examples/packer/local.pkr.hcl")...)
	if err != nil {
		b.err = fmt.Errorf("packer build %v: %w\n%s", vars, err, out)
		return b
	}
	b.path = filepath.Join(dir, "output", "ztna-router.qcow2")
	t.Logf("packer build examples/packer/local.pkr.hcl %v took %s", vars, time.Since(b.started).Round(time.Second))
	return b
}

// mountImage converts the qcow2 image to raw, attaches it read-only and mounts its root
// partition; everything is undone when the test ends.
func mountImage(t *testing.T, qcow2 string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw)
	loop := run(t, "losetup", "--find", "--show", "--read-only", "--partscan", raw)
	t.Cleanup(func() { exec.Command("losetup", "--detach", loop).Run() })
	run(t, "partx", "--update", loop) // kernels without partition parsers
	mnt := t.TempDir()
	run(t, "mount", "-o", "ro,noload", loop+"p1", mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

func TestLocalImage(t *testing.T) {
	img := localImage(t)
	root := mountImage(t, img.path)

	t.Run("router binary", func(t *testing.T) {
		want, err := os.ReadFile(bin(t, "ztna-router"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "usr/bin/ztna-router"))
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Error("/usr/bin/ztna-router differs from the binary given to the provisioner")
		}
		if fi, _ := os.Stat(filepath.Join(root, "usr/bin/ztna-router")); fi.Mode().Perm() != 0o755 {
			t.Errorf("mode %v, want 0755", fi.Mode().Perm())
		}
	})

	t.Run("units enabled", func(t *testing.T) {
		for _, unit := range []string{"ztna-router.service", "ztna-router-bootstrap.service", "nftables.service", "systemd-networkd.service", "systemd-resolved.service"} {
			out, err := exec.Command("systemctl", "--root="+root, "is-enabled", unit).CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != "enabled" {
				t.Errorf("systemctl is-enabled %s = %q (%v), want enabled", unit, got, err)
			}
		}
	})

	t.Run("units verify", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze not installed")
		}
		// systemd checks the units (and the drop-in) as the image will load them: unknown
		// directives, bad specifiers and missing executables are reported.
		out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "--man=no",
			"ztna-router.service", "ztna-router-bootstrap.service").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("sandbox", func(t *testing.T) {
		unit := readFile(t, root, "usr/lib/systemd/system/ztna-router.service")
		for _, want := range []string{"User=ztna-router", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
			"PrivateTmp=yes", "CapabilityBoundingSet=\n", "AmbientCapabilities=\n", "StateDirectory=ztna-router",
			"ConditionPathExists=/var/lib/ztna-router/config.json", "RestartPreventExitStatus=3\n"} {
			if !strings.Contains(unit, want) {
				t.Errorf("ztna-router.service lacks %q", strings.TrimSpace(want))
			}
		}
		passwd := readFile(t, root, "etc/passwd")
		var user string
		for _, l := range strings.Split(passwd, "\n") {
			if strings.HasPrefix(l, "ztna-router:") {
				user = l
			}
		}
		f := strings.Split(user, ":")
		var uid int
		if len(f) == 7 {
			fmt.Sscan(f[2], &uid)
		}
		if len(f) != 7 || uid == 0 || uid >= 1000 || f[6] != "/usr/sbin/nologin" {
			t.Errorf("ztna-router user %q: want a system user (uid 1-999) with /usr/sbin/nologin", user)
		}
		dropIn := readFile(t, root, "etc/systemd/system/ztna-router-bootstrap.service.d/10-metadata-source.conf")
		for _, want := range []string{"ZTNA_METADATA_SOURCE=file", "LoadCredential=registration-key:/etc/ztna/registration-key",
			"ExecStartPost=+/bin/rm -f /etc/ztna/registration-key"} {
			if !strings.Contains(dropIn, want) {
				t.Errorf("metadata drop-in lacks %q:\n%s", want, dropIn)
			}
		}
	})

	t.Run("first boot retried", func(t *testing.T) {
		unit := readFile(t, root, "usr/lib/systemd/system/ztna-router-bootstrap.service")
		for _, want := range []string{"Restart=on-failure\n", "StartLimitIntervalSec=0\n", "OnSuccess=ztna-router.service\n"} {
			if !strings.Contains(unit, want) {
				t.Errorf("ztna-router-bootstrap.service lacks %q", strings.TrimSpace(want))
			}
		}
	})

	t.Run("package", func(t *testing.T) {
		// dpkg's database in the image: the pre-release maps to a version that sorts before
		// the release, and the package depends on the glibc its binary needs.
		status := readFile(t, root, "var/lib/dpkg/status")
		i := strings.Index(status, "Package: ztna-router\n")
		if i < 0 {
			t.Fatal("ztna-router not in the image's dpkg database")
		}
		stanza, _, _ := strings.Cut(status[i:], "\n\n")
		for _, want := range []string{"Version: 0.1.0~test\n", "libc6 (>= 2."} {
			if !strings.Contains(stanza, want) {
				t.Errorf("ztna-router's dpkg entry lacks %q:\n%s", want, stanza)
			}
		}
	})

	t.Run("resolver and clock", func(t *testing.T) {
		resolved := readFile(t, root, "etc/systemd/resolved.conf.d/50-ztna.conf")
		for _, want := range []string{"LLMNR=no\n", "MulticastDNS=no\n"} {
			if !strings.Contains(resolved, want) {
				t.Errorf("resolved drop-in lacks %q:\n%s", want, resolved)
			}
		}
		readFile(t, root, "etc/systemd/timesyncd.conf.d/50-ztna.conf")
	})

	t.Run("nftables drops inbound", func(t *testing.T) {
		nftest.New(t).CheckDefaultDenyInbound(t, filepath.Join(root, "etc/nftables.conf"))
	})

	t.Run("sysctl", func(t *testing.T) {
		set := map[string]string{}
		for _, l := range strings.Split(readFile(t, root, "etc/sysctl.d/90-ztna-hardening.conf"), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				set[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		for k, want := range map[string]string{
			"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0",
			"net.ipv4.conf.all.accept_redirects": "0", "net.ipv6.conf.all.accept_redirects": "0",
			"net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.all.accept_source_route": "0",
			"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.tcp_syncookies": "1",
			"kernel.kptr_restrict": "2", "kernel.dmesg_restrict": "1", "kernel.unprivileged_bpf_disabled": "1",
			"fs.protected_symlinks": "1", "fs.suid_dumpable": "0",
			// A fabric link's grown windows in flight (internal/fabric: 32 MiB at the most).
			"net.ipv4.tcp_wmem": "4096 16384 33554432", "net.ipv4.tcp_rmem": "4096 131072 33554432",
		} {
			if set[k] != want {
				t.Errorf("%s = %q, want %s", k, set[k], want)
			}
		}
	})

	t.Run("attestation", func(t *testing.T) {
		dec := json.NewDecoder(strings.NewReader(readFile(t, root, "etc/ztna/image.json")))
		dec.DisallowUnknownFields()
		var a control.Attestation
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("/etc/ztna/image.json: %v", err)
		}
		if a.RouterVersion != RouterVersion || a.HardeningProfile != "ztna-v2+ssh-lockdown" || a.Cloud != "local" {
			t.Errorf("attestation %+v", a)
		}
		if !strings.HasPrefix(a.BaseImage, "debian-bookworm-amd64-") {
			t.Errorf("base_image %q: want the ztna-local base (debian-bookworm-amd64-<date>-<recipe>)", a.BaseImage)
		}
		if a.BuildTime.Before(img.started) || a.BuildTime.After(time.Now()) {
			t.Errorf("build_time %v outside the build (started %v)", a.BuildTime, img.started)
		}
		if a.ProvisionerRunID == "" {
			t.Error("provisioner_run_id empty: Packer's run UUID should be recorded")
		}
		// Signed by the build key, as the controller checks it.
		trusted := control.TrustedKeys{control.AttestationKeyID(img.buildKey): img.buildKey}
		if got := trusted.Verify(&a); got != control.AttestationVerified {
			t.Errorf("attestation signature: %s, want verified by the build key", got)
		}
	})

	t.Run("patched", func(t *testing.T) {
		checkPatched(t, root)
	})

	t.Run("first boot state", func(t *testing.T) {
		if h := readFile(t, root, "etc/hostname"); h != "ztna-router\n" {
			t.Errorf("hostname %q, want the builder's hostname ztna-router", h)
		}
		if b := readFile(t, root, "etc/machine-id"); b != "" {
			t.Errorf("machine-id %q baked into the image: every VM would share it", b)
		}
		if target, err := os.Readlink(filepath.Join(root, "etc/resolv.conf")); err != nil || target != "../run/systemd/resolve/stub-resolv.conf" {
			t.Errorf("resolv.conf -> %q (%v): the builder's resolver leaked into the image", target, err)
		}
		if _, err := os.Stat(filepath.Join(root, "var/lib/ztna-router/config.json")); err == nil {
			t.Error("the image is already enrolled")
		}
		if !strings.Contains(readFile(t, root, "etc/fstab"), "UUID=") || !strings.Contains(readFile(t, root, "boot/grub/grub.cfg"), "root=UUID=") {
			t.Error("fstab or grub.cfg does not mount the root filesystem by UUID")
		}
	})

	t.Run("catalog", func(t *testing.T) {
		cat, err := imagecatalog.Load(img.catalog)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cat.Lookup("local", "", "dev")
		if err != nil {
			t.Fatal(err)
		}
		if e.ImageID != img.path || e.RouterVersion != RouterVersion || !strings.HasPrefix(e.BaseImage, "debian-bookworm-amd64-") {
			t.Errorf("catalog entry %+v, want image %s router %s", e, img.path, RouterVersion)
		}
	})
}

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeBuildKey writes a new Ed25519 attestation signing key as the provisioner reads it.
func writeBuildKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pub, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// TestLocalImageSSH: with openssh-server the image carries no SSH host key — each VM makes its
// own on first boot (ztna-ssh-hostkeys.service, before ssh.service), so two VMs from the image
// differ — sshd accepted the locked-down configuration at build time (in the chroot, where
// /run/sshd and host keys are missing), and SSH is let in from ssh_allow_from only.
func TestLocalImageSSH(t *testing.T) {
	img := sshImage(t)
	root := mountImage(t, img.path)
	if keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(keys) > 0 {
		t.Errorf("host keys baked into the image: %v", keys)
	}
	if _, err := os.Stat(filepath.Join(root, "run/sshd")); err == nil {
		t.Error("the build left /run/sshd in the image")
	}
	out, err := exec.Command("systemctl", "--root="+root, "is-enabled", "ztna-ssh-hostkeys.service").CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != "enabled" {
		t.Errorf("ztna-ssh-hostkeys.service is-enabled = %q (%v)", got, err)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "--man=no", "ztna-ssh-hostkeys.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
	if !strings.Contains(readFile(t, root, "etc/ssh/sshd_config.d/00-ztna-lockdown.conf"), "PasswordAuthentication no") {
		t.Error("sshd lock-down missing")
	}
	if !strings.Contains(readFile(t, root, "etc/nftables.conf"), "tcp dport 22 ip saddr { 192.0.2.0/24 } accept") {
		t.Error("nftables does not let SSH in from ssh_allow_from")
	}
	unit := readFile(t, root, "etc/systemd/system/ztna-ssh-hostkeys.service")
	for _, want := range []string{"ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key\n", "Before=ssh.service\n", "ExecStart=/usr/bin/ssh-keygen -A\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("ztna-ssh-hostkeys.service lacks %q", strings.TrimSpace(want))
		}
	}
}
