package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztna/ztna/internal/testenv"
)

func fakeRouter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ztna-router")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho ztna-router\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestBuildDeb(t *testing.T) {
	testenv.Integration(t, "dpkg-deb")
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	deb := filepath.Join(t.TempDir(), "ztna-router.deb")
	f, err := os.Create(deb)
	if err != nil {
		t.Fatal(err)
	}
	// A symlinked binary (bin/ztna-router -> a versioned file) is packaged as the file itself.
	link := filepath.Join(t.TempDir(), "ztna-router")
	if err := os.Symlink(fakeRouter(t), link); err != nil {
		t.Fatal(err)
	}
	if err := BuildDeb(DebOptions{Binary: link, Version: "v1.4.0-rc1", Arch: "amd64"}, f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	fields := dpkgDeb(t, "-f", deb, "Package", "Version", "Architecture", "Depends")
	for _, want := range []string{"Package: ztna-router", "Version: 1.4.0-rc1", "Architecture: amd64", "Depends: systemd, passwd"} {
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
	if !strings.Contains(string(postinst), "useradd --system") {
		t.Errorf("postinst does not create the system user:\n%s", postinst)
	}
	conffiles, _ := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if !strings.Contains(string(conffiles), "/etc/default/ztna-router") {
		t.Errorf("conffiles = %q, want /etc/default/ztna-router", conffiles)
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
	tests := []struct {
		name string
		opts DebOptions
		want []string
	}{
		{"missing binary", DebOptions{Binary: "/nonexistent/ztna-router", Version: "1.0.0", Arch: "amd64"}, []string{"router binary: stat /nonexistent/ztna-router"}},
		{"not executable", DebOptions{Binary: notExec, Version: "1.0.0", Arch: "amd64"}, []string{"not an executable file"}},
		{"bad version and arch", DebOptions{Binary: fakeRouter(t), Version: "latest", Arch: "x86"},
			[]string{`router version "latest": must start with a digit`, `architecture "x86": must be amd64 or arm64`}},
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
