package ztnalocal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"
)

// grubDefaults boot quietly to the serial console too, so `qemu -nographic` and virsh console
// show the boot.
const grubDefaults = `# Written by the ztna-local Packer builder.
GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
`

// diskChrootMounts are the filesystems grub-install and update-grub need. /dev is a private
// tmpfs (see populateDev) rather than the host's, so the links GRUB looks for can be added
// without touching the host.
var diskChrootMounts = [][]string{{"proc", "/proc"}, {"sysfs", "/sys"}, {"tmpfs", "/dev"}}

// populateDev creates the device nodes GRUB uses in dev: the loop disk and its partition, the
// usual character devices, and /dev/disk/by-uuid/<uuid>. Without that link (udev makes it on a
// running system) update-grub writes root=/dev/loopXp1 instead of root=UUID=..., and the image
// would not find its root filesystem when it boots.
func populateDev(dev, loop, part, fsUUID string) error {
	for _, node := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", loop, part} {
		var st unix.Stat_t
		if err := unix.Stat(node, &st); err != nil {
			return fmt.Errorf("%s: %w", node, err)
		}
		if err := unix.Mknod(filepath.Join(dev, filepath.Base(node)), st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", node, err)
		}
	}
	byUUID := filepath.Join(dev, "disk", "by-uuid")
	if err := os.MkdirAll(byUUID, 0o755); err != nil {
		return err
	}
	return os.Symlink("../../"+filepath.Base(part), filepath.Join(byUUID, fsUUID))
}

// stepDisk writes the root filesystem into a raw disk image with one bootable MBR partition
// (ext4, labelled ztna-root) and installs GRUB for BIOS boot.
type stepDisk struct {
	config *Config
	loop   string
	mnt    string
}

func (s *stepDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("rootfs").(string)
	c := s.config
	size, _ := diskBytes(c.DiskSize) // validated in Prepare

	used, err := treeBytes(root)
	if err != nil {
		return halt(state, err)
	}
	// ext4 metadata, the journal and reserved blocks need room besides the files.
	if need := used + used/4 + 128<<20; need > size {
		return halt(state, fmt.Errorf("disk_size %s is too small: the root filesystem holds %d MiB, so the disk needs at least %dM", c.DiskSize, used>>20, need>>20+1))
	}

	raw := filepath.Join(c.OutputDir, c.ImageName+".raw")
	ui.Say(fmt.Sprintf("Writing %d MiB root filesystem to %s (%s)", used>>20, raw, c.DiskSize))
	f, err := os.Create(raw)
	if err != nil {
		return halt(state, err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return halt(state, err)
	}
	sfdisk := exec.CommandContext(ctx, "sfdisk", "--quiet", raw)
	sfdisk.Stdin = strings.NewReader("label: dos\nstart=2048, type=83, bootable\n")
	if out, err := sfdisk.CombinedOutput(); err != nil {
		return halt(state, fmt.Errorf("partitioning %s: %v: %s", raw, err, out))
	}

	loop, err := outputCmd(ctx, "losetup", "--find", "--show", "--partscan", raw)
	if err != nil {
		return halt(state, err)
	}
	s.loop = strings.TrimSpace(loop)
	part := s.loop + "p1"
	// Kernels without partition table parsers (minimal VM kernels) ignore --partscan; partx
	// reads the table in user space and adds the partition itself.
	if err := runCmd(ctx, "partx", "--update", s.loop); err != nil {
		return halt(state, err)
	}
	if err := waitForDevice(ctx, part); err != nil {
		return halt(state, err)
	}

	fsUUID := uuid.NewString()
	if err := runCmd(ctx, "mkfs.ext4", "-q", "-F", "-L", "ztna-root", "-U", fsUUID, "-d", root, part); err != nil {
		return halt(state, err)
	}
	if s.mnt, err = os.MkdirTemp("", "ztna-local-disk-"); err != nil {
		return halt(state, err)
	}
	if err := runCmd(ctx, "mount", part, s.mnt); err != nil {
		return halt(state, err)
	}
	if err := s.installBootloader(ctx, ui, fsUUID); err != nil {
		return halt(state, err)
	}
	if err := s.release(); err != nil {
		return halt(state, err)
	}
	state.Put("image_path", raw)
	return multistep.ActionContinue
}

// installBootloader writes fstab and GRUB into the mounted filesystem. grub-install and
// update-grub run inside it, so the image's own GRUB version is installed.
func (s *stepDisk) installBootloader(ctx context.Context, ui packersdk.Ui, fsUUID string) error {
	ui.Say("Installing GRUB")
	fstab := fmt.Sprintf("# Written by the ztna-local Packer builder.\nUUID=%s / ext4 errors=remount-ro 0 1\n", fsUUID)
	if err := os.WriteFile(filepath.Join(s.mnt, "etc/fstab"), []byte(fstab), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.mnt, "etc/default/grub.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.mnt, "etc/default/grub.d/50-ztna-local.cfg"), []byte(grubDefaults), 0o644); err != nil {
		return err
	}
	for _, m := range diskChrootMounts {
		if err := runCmd(ctx, "mount", "-t", m[0], m[0], s.mnt+m[1]); err != nil {
			return err
		}
	}
	if err := populateDev(filepath.Join(s.mnt, "dev"), s.loop, s.loop+"p1", fsUUID); err != nil {
		return err
	}
	if err := runCmd(ctx, "chroot", s.mnt, "grub-install", "--target=i386-pc", s.loop); err != nil {
		return fmt.Errorf("grub-install: %w", err)
	}
	if err := runCmd(ctx, "chroot", s.mnt, "update-grub"); err != nil {
		return fmt.Errorf("update-grub: %w", err)
	}
	return nil
}

// release unmounts the filesystem and detaches the loop device.
func (s *stepDisk) release() error {
	var errs []error
	if s.mnt != "" {
		if err := removeUnmounted(s.mnt); err != nil {
			errs = append(errs, err)
		} else {
			s.mnt = ""
		}
	}
	if s.loop != "" {
		if out, err := exec.Command("losetup", "--detach", s.loop).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("losetup --detach %s: %v: %s", s.loop, err, out))
		} else {
			s.loop = ""
		}
	}
	return errors.Join(errs...)
}

func (s *stepDisk) Cleanup(state multistep.StateBag) {
	if err := s.release(); err != nil {
		state.Get("ui").(packersdk.Ui).Error(err.Error())
	}
}

// waitForDevice waits for the kernel to create a partition device node.
func waitForDevice(ctx context.Context, dev string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(dev); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear: does this kernel support loop device partitions?", dev)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// treeBytes sums the sizes of the regular files below root.
func treeBytes(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// stepConvertQcow2 turns the raw image into a qcow2, which stores only the blocks in use.
type stepConvertQcow2 struct{}

func (s *stepConvertQcow2) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	raw := state.Get("image_path").(string)
	qcow := strings.TrimSuffix(raw, ".raw") + ".qcow2"
	ui.Say("Converting to " + qcow)
	if err := runCmd(ctx, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow); err != nil {
		return halt(state, err)
	}
	if err := os.Remove(raw); err != nil {
		return halt(state, err)
	}
	state.Put("image_path", qcow)
	return multistep.ActionContinue
}

func (s *stepConvertQcow2) Cleanup(multistep.StateBag) {}
