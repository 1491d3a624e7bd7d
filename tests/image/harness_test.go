// Package image tests the router image bake path end to end with the real Packer 1.12 (go tool
// from tools/): examples/packer/local.pkr.hcl is built with the ztna-local builder, the
// ztna-router provisioner and the ztna-catalog post-processor, and the resulting disk image is
// inspected; the cloud examples are checked as far as Packer can without the cloud plugins.
//
// The build needs root (loop devices, chroot), mmdebstrap, fdisk and qemu-utils
// (scripts/deps.sh test) and a Debian mirror. The bootstrapped root filesystem is cached in
// $ZTNA_IMAGE_CACHE (default ~/.cache/ztna/packer), so only the first run pays for mmdebstrap.
package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/testenv"
)

// builtDirs are the image builds' directories, removed when the tests end.
var builtDirs []string

var (
	repoRoot string // the module root, where tools/go.mod and examples/ live
	binDir   string // ztna-router, packer-plugin-ztna, terraform-provider-ztna
	// pluginPath is a PACKER_PLUGIN_PATH holding only the plugin under test.
	pluginPath string
)

// Binaries the tests use, and the package each is built from.
var binaries = map[string]string{
	"ztna-router":             "./cmd/ztna-router",
	"ztna-controller":         "./cmd/ztna-controller",
	"packer-plugin-ztna":      "./cmd/packer-plugin-ztna",
	"terraform-provider-ztna": ".",
}

var (
	binMu    sync.Mutex
	binBuilt = map[string]error{}
)

// bin returns the path of a binary, building it on first use (tests only build what they need).
func bin(t *testing.T, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	err, done := binBuilt[name]
	if !done {
		err = binary(name, binaries[name])
		binBuilt[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	if addr := os.Getenv(relayEnv); addr != "" {
		os.Exit(relay(addr)) // spawned by QEMU for a guest connection (boot_test.go)
	}
	os.Exit(testenv.Main("packer, terraform and QEMU", func() int {
		code, err := setup(m)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tests/image:", err)
			return 1
		}
		return code
	}))
}

func setup(m *testing.M) (int, error) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	tmp, err := os.MkdirTemp("", "ztna-image-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)

	binDir = filepath.Join(tmp, "bin")
	if err := binary("packer-plugin-ztna", binaries["packer-plugin-ztna"]); err != nil {
		return 0, err
	}
	pluginPath = filepath.Join(tmp, "plugins")
	out, err := packer(context.Background(), nil, "plugins", "install", "--path", filepath.Join(binDir, "packer-plugin-ztna"), "github.com/ztna/ztna")
	if err != nil {
		return 0, fmt.Errorf("installing the plugin: %w\n%s", err, out)
	}
	code := m.Run()
	for _, dir := range builtDirs {
		os.RemoveAll(dir)
	}
	return code, nil
}

// binary puts name into binDir: the `make build` one from $ZTNA_BIN_DIR, else a fresh build.
// The router is always built here, as `make build` builds it (PIE) but reporting RouterVersion,
// the version the images are baked with: the provisioner checks the binary reports it.
func binary(name, pkg string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(binDir, name)
	args := []string{"build", "-o", dst}
	if name == "ztna-router" {
		args = append(args, "-buildmode=pie", "-ldflags=-s -w -bindnow -X github.com/ztna/ztna/internal/version.Version="+RouterVersion)
	} else if dir := os.Getenv("ZTNA_BIN_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return os.Symlink(filepath.Join(dir, name), dst)
		}
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// packer runs the pinned Packer with the plugin under test and returns its combined output.
func packer(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "-modfile=tools/go.mod", "packer"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+pluginPath, "CHECKPOINT_DISABLE=1", "PACKER_NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// imageCache is where the ztna-local builder keeps bootstrapped root filesystems between runs.
func imageCache() (string, error) {
	if dir := os.Getenv("ZTNA_IMAGE_CACHE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ztna", "packer"), nil
}

// needRoot skips tests that build or mount images when not running as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("building and mounting disk images needs root")
	}
}

// run runs a host command and fails the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// elapsed logs how long a phase took, for the report on test duration.
func elapsed(t *testing.T, what string, start time.Time) {
	t.Logf("%s took %s", what, time.Since(start).Round(time.Second))
}
