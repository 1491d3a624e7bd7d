package ztnalocal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/testenv"
	"github.com/ztna/ztna/packer/internal/spectest"
)

func TestConfigSpecCoversConfig(t *testing.T) {
	var b Builder
	spectest.AssertCoversConfig(t, b.ConfigSpec(), &b.config)
}

func TestPrepareFromHCL(t *testing.T) {
	var b Builder
	v := spectest.Decode(t, b.ConfigSpec(), `
format           = "raw"
disk_size        = "3072M"
extra_packages   = ["openssh-server", "curl"]
hostname         = "edge-1"
output_directory = "out"
cache_dir        = "/var/cache/ztna"
`)
	vars, _, err := b.Prepare(v)
	if err != nil {
		t.Fatal(err)
	}
	c := b.config
	if c.Format != "raw" || c.DiskSize != "3072M" || len(c.ExtraPackages) != 2 || c.Hostname != "edge-1" || c.CacheDir != "/var/cache/ztna" {
		t.Errorf("decoded %+v", c)
	}
	if c.Suite != "bookworm" || c.Mirror != "http://deb.debian.org/debian" || c.SecurityMirror != "http://deb.debian.org/debian-security" ||
		c.ImageName != "ztna-router" || c.RefreshBase {
		t.Errorf("defaults: %+v", c)
	}
	if len(vars) != 1 || vars[0] != "SourceImageName" {
		t.Errorf("generated vars %v", vars)
	}
}

func TestPrepareRejects(t *testing.T) {
	var b Builder
	_, _, err := b.Prepare(map[string]interface{}{
		"suite": "Bookworm 12", "mirror": "ftp://mirror", "security_mirror": "http://a b", "extra_packages": []string{"ok-pkg", "rm -rf"},
		"format": "vmdk", "disk_size": "2T", "image_name": "a/b", "hostname": "Edge_1",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`suite "Bookworm 12"`, `mirror "ftp://mirror"`, `security_mirror "http://a b"`, `extra_packages[1] "rm -rf"`,
		`format "vmdk": must be qcow2 or raw`, `disk_size "2T"`, `image_name "a/b"`, `hostname "Edge_1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDiskBytes(t *testing.T) {
	for in, want := range map[string]int64{"2G": 2 << 30, "512M": 512 << 20} {
		if got, err := diskBytes(in); err != nil || got != want {
			t.Errorf("diskBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"100M", "0G", "2g", "2", "-1G"} {
		if _, err := diskBytes(bad); err == nil {
			t.Errorf("diskBytes(%q) accepted", bad)
		}
	}
}

// The cache key changes with anything that changes the bootstrapped root filesystem, and only
// then, so a cached tarball is never reused for a different configuration.
func TestCacheKey(t *testing.T) {
	base := Config{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", SecurityMirror: "http://deb.debian.org/debian-security", ExtraPackages: []string{"curl", "jq"}}
	key := func(c Config) string { return (&stepRootfs{config: &c}).cacheKey() }
	same := base
	same.ExtraPackages = []string{"jq", "curl", "curl"}
	same.DiskSize, same.Hostname, same.RefreshBase = "8G", "other", true
	if key(base) != key(same) {
		t.Error("package order, duplicates, disk size, hostname or refresh_base changed the cache key")
	}
	for name, change := range map[string]func(*Config){
		"suite":           func(c *Config) { c.Suite = "trixie" },
		"mirror":          func(c *Config) { c.Mirror = "http://mirror.example/debian" },
		"security_mirror": func(c *Config) { c.SecurityMirror = "http://mirror.example/debian-security" },
		"packages":        func(c *Config) { c.ExtraPackages = []string{"curl"} },
	} {
		c := base
		change(&c)
		if key(c) == key(base) {
			t.Errorf("changing the %s kept the cache key", name)
		}
	}
}

// A cached base is used on the UTC day it was bootstrapped only.
func TestCacheExpiresDaily(t *testing.T) {
	c := Config{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", SecurityMirror: "http://deb.debian.org/debian-security", CacheDir: "/cache"}
	at := func(ts string) string {
		tm, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			t.Fatal(err)
		}
		return (&stepRootfs{config: &c, now: func() time.Time { return tm }}).tarball()
	}
	morning, evening, next := at("2026-12-07T00:10:00Z"), at("2026-12-07T23:50:00+00:00"), at("2026-12-08T00:10:00Z")
	if morning != evening {
		t.Errorf("same day, different entries: %s, %s", morning, evening)
	}
	if morning == next {
		t.Errorf("the next day reuses %s", morning)
	}
	if want := "/cache/debian-bookworm-amd64-20261207-"; !strings.HasPrefix(morning, want) {
		t.Errorf("tarball %s, want the day in its name (%s...)", morning, want)
	}
}

// The image is bootstrapped from, and keeps, the suite with its -updates and -security suites.
func TestSources(t *testing.T) {
	c := Config{Suite: "bookworm", Mirror: "http://m.example/debian", SecurityMirror: "http://s.example/debian-security"}
	got := strings.Join(sources(&c), "\n")
	want := "deb http://m.example/debian bookworm main\ndeb http://m.example/debian bookworm-updates main\ndeb http://s.example/debian-security bookworm-security main"
	if got != want {
		t.Errorf("sources:\n%s\nwant:\n%s", got, want)
	}
}

func TestRemoveUnmountedRefusesMountedTrees(t *testing.T) {
	testenv.Integration(t, "mount and umount")
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	inner := filepath.Join(dir, "proc")
	os.Mkdir(inner, 0o755)
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	if err := runCmd(t.Context(), "mount", "-t", "tmpfs", "tmpfs", inner); err != nil {
		t.Fatal(err)
	}
	// removeUnmounted unmounts first, then deletes; the host side of the mount is untouched.
	if err := removeUnmounted(dir); err != nil {
		t.Fatal(err)
	}
	if mps, _ := mountsUnder(dir); len(mps) != 0 {
		t.Errorf("still mounted: %v", mps)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", dir, err)
	}
}
