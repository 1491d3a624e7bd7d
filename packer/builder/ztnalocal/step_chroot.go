package ztnalocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/chroot"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// chrootMounts make the root filesystem usable as a chroot for provisioners (dpkg, systemctl
// enable, nft -c need /proc, /sys and /dev).
var chrootMounts = [][]string{
	{"proc", "proc", "/proc"},
	{"sysfs", "sysfs", "/sys"},
	{"bind", "/dev", "/dev"},
	{"bind", "/dev/pts", "/dev/pts"},
}

// chrootSteps prepare the chroot, run the provisioners through the SDK's chroot communicator and
// take the chroot apart again. The host's resolv.conf is copied in so provisioners can use apt.
func chrootSteps() []multistep.Step {
	return []multistep.Step{
		&chroot.StepCopyFiles{Files: []string{"/etc/resolv.conf"}},
		&chroot.StepMountExtra{ChrootMounts: chrootMounts},
		&chroot.StepChrootProvision{},
		&stepLeaveChroot{},
	}
}

// stepLeaveChroot unmounts the chroot's special filesystems and removes the copied resolv.conf
// before the root filesystem is imaged (the SDK's StepEarlyCleanup expects device steps this
// builder does not have).
type stepLeaveChroot struct{}

func (s *stepLeaveChroot) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	for _, key := range []string{"mount_extra_cleanup", "copy_files_cleanup"} {
		if err := state.Get(key).(chroot.Cleanup).CleanupFunc(state); err != nil {
			return halt(state, fmt.Errorf("leaving the chroot: %w", err))
		}
	}
	return multistep.ActionContinue
}

func (s *stepLeaveChroot) Cleanup(multistep.StateBag) {}

// stepFinalizeRootfs sets the host name and removes what bootstrapping and provisioning leave
// behind that must not ship in an image (the build host's name and resolver, apt caches).
type stepFinalizeRootfs struct {
	config *Config
}

func (s *stepFinalizeRootfs) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	root := state.Get("rootfs").(string)
	ui := state.Get("ui").(packersdk.Ui)
	ui.Say("Cleaning the root filesystem")
	var errs []error
	// resolved's stub: the copied host resolver must not end up in the image.
	resolv := filepath.Join(root, "etc/resolv.conf")
	if err := os.Remove(resolv); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, os.Symlink("../run/systemd/resolve/stub-resolv.conf", resolv))
	name := s.config.Hostname
	errs = append(errs,
		os.WriteFile(filepath.Join(root, "etc/hostname"), []byte(name+"\n"), 0o644),
		os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1\tlocalhost\n127.0.1.1\t"+name+"\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644))
	// Every VM must generate its own machine-id on first boot.
	errs = append(errs, os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444))
	// The provisioner's attestation, for the artifact (ztna-catalog records its digest).
	if att, err := os.ReadFile(filepath.Join(root, "etc/ztna/image.json")); err == nil {
		state.Put("attestation", string(att))
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, dir := range []string{"tmp", "var/tmp", "var/cache/apt/archives", "var/lib/apt/lists"} {
		errs = append(errs, emptyDir(filepath.Join(root, dir)))
	}
	if err := errors.Join(errs...); err != nil {
		return halt(state, fmt.Errorf("cleaning the root filesystem: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepFinalizeRootfs) Cleanup(multistep.StateBag) {}

// emptyDir removes the regular contents of dir, keeping dir itself (and apt's partial/ and lock
// layout, recreated by apt on demand).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() == "partial" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
