package ztnalocal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/filelock"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// basePackages make the image boot on KVM and run the router: systemd with networkd (DHCP) and
// resolved (DNS for the controller and the customer's services), timesyncd (certificates need
// the right time), nftables, unattended-upgrades (daily security updates), the cloud kernel
// (virtio drivers) and GRUB for BIOS boot.
var basePackages = []string{
	"systemd", "systemd-sysv", "systemd-resolved", "systemd-timesyncd", "dbus", "udev", "kmod",
	"nftables", "iproute2", "ca-certificates", "e2fsprogs", "initramfs-tools", "unattended-upgrades",
	"linux-image-cloud-amd64", "grub-pc",
}

// recipeVersion changes whenever the bootstrap commands below change, so cached root filesystems
// built by an older recipe are not reused.
const recipeVersion = "3"

// essentialHook runs before the kernel is installed: an initramfs with only the virtio and ext4
// modules builds in seconds instead of minutes and is all a KVM guest needs.
const essentialHook = `set -e
mkdir -p "$1/etc/initramfs-tools/conf.d"
echo MODULES=list > "$1/etc/initramfs-tools/conf.d/ztna-local.conf"
printf '%s\n' virtio_pci virtio_blk virtio_scsi virtio_net ext4 > "$1/etc/initramfs-tools/modules"`

// customizeHook configures the base system: DHCP on every Ethernet link, resolved's stub as the
// resolver, a locked root account, no SSH host keys (extra_packages = ["openssh-server"] makes
// them; each VM makes its own), an empty machine-id so every VM gets its own, and without
// the unsafe-io setting that only speeds up the bootstrap.
const customizeHook = `set -e
rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
mkdir -p "$1/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$1/etc/systemd/network/80-ztna-dhcp.network"
chroot "$1" systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
ln -sf ../run/systemd/resolve/stub-resolv.conf "$1/etc/resolv.conf"
chroot "$1" passwd --lock root
rm -f "$1"/etc/ssh/ssh_host_*
: > "$1/etc/machine-id"`

// stepRootfs unpacks the base root filesystem into a fresh directory, bootstrapping it with
// mmdebstrap first when the cache has no entry for this configuration.
type stepRootfs struct {
	config *Config
	// now is the clock that dates the cache entry; tests pin it.
	now func() time.Time
	dir string
}

// cacheKey names the configuration of the base root filesystem (not its day).
func (s *stepRootfs) cacheKey() string {
	pkgs := slices.Concat(basePackages, s.config.ExtraPackages)
	slices.Sort(pkgs)
	h := sha256.New()
	fmt.Fprintf(h, "recipe=%s\nsuite=%s\nmirror=%s\nsecurity=%s\npackages=%s\n", recipeVersion, s.config.Suite,
		s.config.Mirror, s.config.SecurityMirror, strings.Join(slices.Compact(pkgs), ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// tarball is the cache entry for the configuration on the current UTC day: a base root
// filesystem is reused for one day at most, so even a build that skips the provisioner's upgrade
// starts from a base no older than a day.
func (s *stepRootfs) tarball() string {
	c := s.config
	return filepath.Join(c.CacheDir, fmt.Sprintf("debian-%s-amd64-%s-%s.tar", c.Suite, s.now().UTC().Format("20060102"), s.cacheKey()))
}

// sources are the apt sources the base is bootstrapped from and keeps: the suite, its point
// release updates and its security updates.
func sources(c *Config) []string {
	return []string{
		fmt.Sprintf("deb %s %s main", c.Mirror, c.Suite),
		fmt.Sprintf("deb %s %s-updates main", c.Mirror, c.Suite),
		fmt.Sprintf("deb %s %s-security main", c.SecurityMirror, c.Suite),
	}
}

func (s *stepRootfs) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	c := s.config
	tarball := s.tarball()

	if err := os.MkdirAll(c.CacheDir, 0o755); err != nil {
		return halt(state, fmt.Errorf("cache_dir: %w", err))
	}
	// Parallel builds of the same configuration wait for one bootstrap instead of racing.
	lock := filelock.New(tarball + ".lock")
	if err := lock.Lock(); err != nil {
		return halt(state, fmt.Errorf("locking %s: %w", tarball, err))
	}
	defer lock.Unlock()

	fi, err := os.Stat(tarball)
	if err != nil || c.RefreshBase {
		ui.Say(fmt.Sprintf("Bootstrapping Debian %s (+%s-updates, %s-security) from %s and %s (cached as %s)",
			c.Suite, c.Suite, c.Suite, c.Mirror, c.SecurityMirror, tarball))
		if err := s.bootstrap(ctx, ui, tarball); err != nil {
			return halt(state, err)
		}
		if fi, err = os.Stat(tarball); err != nil {
			return halt(state, err)
		}
		s.pruneCache(ui, tarball)
	} else {
		ui.Say(fmt.Sprintf("Using today's cached Debian %s root filesystem %s (refresh_base = true bootstraps afresh)", c.Suite, tarball))
	}

	s.dir, err = os.MkdirTemp("", "ztna-local-rootfs-")
	if err != nil {
		return halt(state, err)
	}
	if err := runCmd(ctx, "tar", "--extract", "--file", tarball, "--directory", s.dir,
		"--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*"); err != nil {
		return halt(state, fmt.Errorf("unpacking %s: %w", tarball, err))
	}

	// Named like the cloud images it stands in for: distribution, arch, bootstrap date, recipe.
	base := fmt.Sprintf("debian-%s-amd64-%s-%s", c.Suite, fi.ModTime().UTC().Format("20060102"), s.cacheKey())
	state.Put("rootfs", s.dir)
	state.Put("mount_path", s.dir) // the SDK's chroot steps read this key
	state.Put("base_image", base)
	state.Put("generated_data", map[string]interface{}{"SourceImageName": base})
	return multistep.ActionContinue
}

// bootstrap runs mmdebstrap into a temporary tarball and renames it into place, so an
// interrupted bootstrap never leaves a truncated cache entry.
func (s *stepRootfs) bootstrap(ctx context.Context, ui packersdk.Ui, tarball string) error {
	c := s.config
	tmp := tarball + ".tmp"
	defer os.Remove(tmp)
	pkgs := slices.Concat(basePackages, c.ExtraPackages)
	// Each source is a one-line sources.list entry: mmdebstrap installs from all of them and
	// writes them to the image's /etc/apt/sources.list.
	args := slices.Concat([]string{
		"--mode=root", "--variant=minbase", "--format=tar",
		"--dpkgopt=force-unsafe-io", // the result is tarred, so fsync per file only costs time
		"--include=" + strings.Join(pkgs, ","),
		"--essential-hook=" + essentialHook,
		"--customize-hook=" + customizeHook,
		c.Suite, tmp}, sources(c))
	err := runCmd(ctx, "mmdebstrap", args...)
	if err != nil {
		return fmt.Errorf("mmdebstrap failed (are %s and %s reachable?): %w", c.Mirror, c.SecurityMirror, err)
	}
	return os.Rename(tmp, tarball)
}

// pruneCache removes the earlier days' tarballs of the same configuration once a new one is in
// place: they are never used again.
func (s *stepRootfs) pruneCache(ui packersdk.Ui, keep string) {
	c := s.config
	old, _ := filepath.Glob(filepath.Join(c.CacheDir, fmt.Sprintf("debian-%s-amd64-*-%s.tar", c.Suite, s.cacheKey())))
	for _, f := range old {
		if f == keep {
			continue
		}
		if err := os.Remove(f); err != nil {
			ui.Error(fmt.Sprintf("removing the outdated base %s: %v", f, err))
		}
	}
}

func (s *stepRootfs) Cleanup(state multistep.StateBag) {
	if s.dir == "" {
		return
	}
	if err := removeUnmounted(s.dir); err != nil {
		state.Get("ui").(packersdk.Ui).Error(err.Error())
	}
}
