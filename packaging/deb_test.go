package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztna/ztna/internal/testenv"
)

// routerBinary builds a small Go program the way the router is built (PIE, stripped), with or
// without cgo (glibc symbols) — a stand-in for ztna-router that dpkg, lintian and the ELF checks
// see as the real thing.
func routerBinary(t *testing.T, cgo bool) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module router\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport (\n\t\"fmt\"\n\t\"os/user\"\n)\n\nfunc main() { fmt.Println(user.Current()) }\n"), 0o644)
	bin := filepath.Join(dir, "ztna-router")
	cmd := exec.Command("go", "build", "-buildmode=pie", "-ldflags=-s -w -bindnow", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[cgo], "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func buildDeb(t *testing.T, opts DebOptions) string {
	t.Helper()
	deb := filepath.Join(t.TempDir(), "ztna-router.deb")
	f, err := os.Create(deb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := BuildDeb(opts, f); err != nil {
		t.Fatal(err)
	}
	return deb
}

func TestBuildDeb(t *testing.T) {
	testenv.Integration(t, "dpkg-deb")
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	// A symlinked binary (bin/ztna-router -> a versioned file) is packaged as the file itself.
	link := filepath.Join(t.TempDir(), "ztna-router")
	if err := os.Symlink(routerBinary(t, true), link); err != nil {
		t.Fatal(err)
	}
	deb := buildDeb(t, DebOptions{Binary: link, Version: "v1.4.0-rc1", Arch: "amd64"})

	fields := dpkgDeb(t, "-f", deb, "Package", "Version", "Architecture", "Depends")
	for _, want := range []string{"Package: ztna-router", "Version: 1.4.0~rc1", "Architecture: amd64", "Depends: systemd, passwd, libc6 (>= 2.34)"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control fields lack %q:\n%s", want, fields)
		}
	}
	listing := dpkgDeb(t, "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/ztna-router",
		"./usr/lib/systemd/system/ztna-router.service",
		"./usr/lib/systemd/system/ztna-router-bootstrap.service",
		"./etc/default/ztna-router",
		"./usr/share/doc/ztna-router/copyright",
		"./usr/share/doc/ztna-router/changelog.gz",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("package lacks %q:\n%s", want, listing)
		}
	}
	ctrl := t.TempDir()
	dpkgDeb(t, "-e", deb, ctrl)
	postinst, err := os.ReadFile(filepath.Join(ctrl, "postinst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"useradd --system", "deb-systemd-helper --quiet was-enabled", "deb-systemd-invoke try-restart ztna-router.service"} {
		if !strings.Contains(string(postinst), want) {
			t.Errorf("postinst lacks %q:\n%s", want, postinst)
		}
	}
	conffiles, _ := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if !strings.Contains(string(conffiles), "/etc/default/ztna-router") {
		t.Errorf("conffiles = %q, want /etc/default/ztna-router", conffiles)
	}
}

// lintian, Debian's package checker, has nothing to say about the package (overrides, if ever
// needed, live in packaging/ with their reason).
func TestLintian(t *testing.T) {
	if _, err := exec.LookPath("lintian"); err != nil {
		if os.Getenv("ZTNA_REQUIRE_POSTGRES") != "" { // make test: scripts/deps.sh installs it
			t.Fatal("lintian not installed (scripts/deps.sh test installs it)")
		}
		t.Skip("lintian not installed (scripts/deps.sh test installs it)")
	}
	for _, cgo := range []bool{true, false} {
		deb := buildDeb(t, DebOptions{Binary: routerBinary(t, cgo), Version: "1.3.0-rc1", Arch: "amd64"})
		out, err := exec.Command("lintian", "--allow-root", "--fail-on", "error,warning", "--tag-display-limit", "0", deb).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("lintian (cgo=%v): %v\n%s", cgo, err, out)
		}
	}
}

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3":                   "1.2.3",
		"v1.2.3":                  "1.2.3",
		"v1.3.0-rc1":              "1.3.0~rc1",
		"1.3.0-rc.1":              "1.3.0~rc.1",
		"1.3.0-beta-2":            "1.3.0~beta.2",
		"1.2.3+build.5":           "1.2.3+build.5",
		"v1.2.3-4-gabcdef0":       "1.2.3+git4.gabcdef0",
		"v1.3.0-rc1-2-g0123abcd":  "1.3.0~rc1+git2.g0123abcd",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3+git4.gabcdef0.dirty",
		"0.0.0-dev+gb07a3b3":      "0.0.0~dev+gb07a3b3",
	} {
		if got, err := DebVersion(in); err != nil || got != want {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "latest", "b07a3b3", "1.2", "1.2.3 ", "1.2.3-"} {
		if got, err := DebVersion(bad); err == nil {
			t.Errorf("DebVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// dpkg itself sorts the mapped versions in release order.
func TestDebVersionSortsLikeReleases(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed")
	}
	order := []string{"v1.2.3", "v1.2.3-4-gabcdef0", "v1.3.0-beta1", "v1.3.0-rc1", "v1.3.0-rc1-2-g0123abcd", "v1.3.0-rc2", "v1.3.0", "v1.3.0-1-gfedcba9"}
	for i := 1; i < len(order); i++ {
		a, _ := DebVersion(order[i-1])
		b, _ := DebVersion(order[i])
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg does not sort %s (%s) before %s (%s)", order[i-1], a, order[i], b)
		}
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestBuildDebRejectsBadOptions(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "router")
	os.WriteFile(notExec, []byte("x"), 0o644)
	script := filepath.Join(t.TempDir(), "router.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	nonPIE := filepath.Join(t.TempDir(), "ztna-router")
	cmd := exec.Command("go", "build", "-buildmode=exe", "-o", nonPIE, "./testdata/hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	router := routerBinary(t, false)
	tests := []struct {
		name string
		opts DebOptions
		want []string
	}{
		{"missing binary", DebOptions{Binary: "/nonexistent/ztna-router", Version: "1.0.0", Arch: "amd64"}, []string{"router binary: stat /nonexistent/ztna-router"}},
		{"not executable", DebOptions{Binary: notExec, Version: "1.0.0", Arch: "amd64"}, []string{"not an executable file"}},
		{"bad version and arch", DebOptions{Binary: router, Version: "latest", Arch: "x86"},
			[]string{`router version "latest": not a semantic version`, `architecture "x86": must be amd64 or arm64`}},
		{"not ELF", DebOptions{Binary: script, Version: "1.0.0", Arch: "amd64"}, []string{"not an ELF executable"}},
		{"not PIE", DebOptions{Binary: nonPIE, Version: "1.0.0", Arch: "amd64"}, []string{"not position-independent; build it with go build -buildmode=pie"}},
		{"other architecture", DebOptions{Binary: router, Version: "1.0.0", Arch: "arm64"}, []string{"built for EM_X86_64, not arm64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := BuildDeb(tt.opts, &out)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if out.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", out.Len())
			}
		})
	}
}
