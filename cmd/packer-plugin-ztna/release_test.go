package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// make plugin-release's output is what Packer installs: zips and binaries named
// packer-plugin-ztna_v<version>_x<api>_<os>_<arch>, a SHA256SUMS that matches the zips, a binary
// that packer-sdc plugin-check accepts, and one that the real Packer 1.12 installs from a path
// into an empty PACKER_PLUGIN_PATH and then lists — all without network.
func TestPluginRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin and runs packer and packer-sdc")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const version = "1.4.2" // a release version, as on a "Release X.Y.Z" commit
	platform := runtime.GOOS + "_" + runtime.GOARCH
	dist := t.TempDir()
	run(t, root, []string{"DIST=" + dist, "PLUGIN_PLATFORMS=" + runtime.GOOS + "/" + runtime.GOARCH, "VERSION=" + version},
		"scripts/plugin-release.sh")

	const api = "x5.0" // packer-plugin-sdk v0.6's plugin protocol
	base := "packer-plugin-ztna_v" + version + "_" + api + "_" + platform
	sums := "packer-plugin-ztna_v" + version + "_SHA256SUMS"
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	var names []string // sorted, as ReadDir returns them
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{sums, base + ".zip"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("dist holds %q, want %q", names, want)
	}

	zipped, err := os.ReadFile(filepath.Join(dist, base+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(zipped)
	sumsText, err := os.ReadFile(filepath.Join(dist, sums))
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(digest[:]) + "  " + base + ".zip\n"; string(sumsText) != want {
		t.Fatalf("%s = %q, want %q", sums, sumsText, want)
	}

	// The zip holds the binary alone, under the name Packer installs it by.
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != base {
		var got []string
		for _, f := range zr.File {
			got = append(got, f.Name)
		}
		t.Fatalf("zip holds %q, want [%q]", got, base)
	}
	bin := t.TempDir()
	binary := filepath.Join(bin, base)
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(binary, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}

	if got := run(t, root, nil, binary, "describe"); !strings.Contains(got, `"version":"`+version+`"`) || !strings.Contains(got, `"api_version":"`+api+`"`) {
		t.Fatalf("describe = %s, want version %s and API %s", got, version, api)
	}
	// plugin-check wants the binary's file name, relative to its working directory, where go
	// tool cannot run (no module): run the tool's binary, which go tool -n names.
	sdc := strings.TrimSpace(run(t, root, nil, "go", "tool", "-modfile=tools/go.mod", "-n", "packer-sdc"))
	run(t, bin, nil, sdc, "plugin-check", base)

	plugins := t.TempDir()
	env := []string{"PACKER_PLUGIN_PATH=" + plugins, "CHECKPOINT_DISABLE=1", "PACKER_NO_COLOR=1", "PACKER_CONFIG_DIR=" + t.TempDir()}
	packer := func(args ...string) string {
		return run(t, root, env, "go", append([]string{"tool", "-modfile=tools/go.mod", "packer"}, args...)...)
	}
	packer("plugins", "install", "--path", binary, "github.com/ztna/ztna")
	installed := filepath.Join(plugins, "github.com", "ztna", "ztna", "packer-plugin-ztna_v"+version+"_"+api+"_"+platform)
	if got := packer("plugins", "installed"); strings.TrimSpace(got) != installed {
		t.Fatalf("packer plugins installed = %q, want %q", got, installed)
	}
	want, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	if got, err := os.ReadFile(installed + "_SHA256SUM"); err != nil || string(got) != hex.EncodeToString(sum[:]) {
		t.Fatalf("installed SHA256SUM = %q (%v), want the binary's %x", got, err, sum)
	}
}

// run runs name in dir with env added and returns its output; it fails the test when the
// command fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), stderr.String())
	}
	return out.String()
}
