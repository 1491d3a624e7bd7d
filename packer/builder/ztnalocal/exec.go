package ztnalocal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"
)

// halt records err for the builder and stops the step sequence.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put("error", err)
	state.Get("ui").(packersdk.Ui).Error(err.Error())
	return multistep.ActionHalt
}

// outputTail is how many lines of a failed command's output an error carries.
const outputTail = 15

// runCmd runs a host command, logging its output to the Packer log and returning the end of it
// in the error when the command fails.
func runCmd(ctx context.Context, name string, args ...string) error {
	_, err := outputCmd(ctx, name, args...)
	return err
}

// outputCmd runs a host command and returns its standard output.
func outputCmd(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	log.Printf("ztna-local: running %s %s", name, strings.Join(args, " "))
	err := cmd.Run()
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l != "" {
			log.Printf("ztna-local: %s: %s", name, l)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", name, err, tail(stdout.String()+stderr.String(), outputTail))
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Later mounts are listed later; unmount them first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, sc.Err()
}

// unescapeMountinfo decodes the octal escapes (\040 for space) of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything at or below dir.
func unmountAll(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, mp := range mps {
		if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
			return fmt.Errorf("umount %s: %v: %s", mp, err, out)
		}
	}
	return nil
}

// removeUnmounted deletes dir, but only after unmounting whatever is mounted below it: deleting
// through a bind mount of /dev would wipe the host's device nodes.
func removeUnmounted(dir string) error {
	dir = filepath.Clean(dir)
	if err := unmountAll(dir); err != nil {
		return fmt.Errorf("not deleting %s: %w", dir, err)
	}
	if mps, err := mountsUnder(dir); err != nil || len(mps) > 0 {
		return fmt.Errorf("not deleting %s: still mounted: %v %v", dir, mps, err)
	}
	return os.RemoveAll(dir)
}

// closeInheritedFDs marks every descriptor above stderr close-on-exec. Packer hands the plugin
// process descriptors without that flag, and passed on they push the descriptor numbers of
// mmdebstrap's own pipes above 9, which dash (Debian's /bin/sh) cannot redirect.
func closeInheritedFDs() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}
