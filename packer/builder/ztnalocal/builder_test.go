package ztnalocal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if c.Suite != "bookworm" || c.Mirror != "http://deb.debian.org/debian" || c.ImageName != "ztna-router" {
		t.Errorf("defaults: %+v", c)
	}
	if len(vars) != 1 || vars[0] != "SourceImageName" {
		t.Errorf("generated vars %v", vars)
	}
}

func TestPrepareRejects(t *testing.T) {
	var b Builder
	_, _, err := b.Prepare(map[string]interface{}{
		"suite": "Bookworm 12", "mirror": "ftp://mirror", "extra_packages": []string{"ok-pkg", "rm -rf"},
		"format": "vmdk", "disk_size": "2T", "image_name": "a/b", "hostname": "Edge_1",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`suite "Bookworm 12"`, `mirror "ftp://mirror"`, `extra_packages[1] "rm -rf"`,
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
	base := Config{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", ExtraPackages: []string{"curl", "jq"}}
	key := func(c Config) string { return (&stepRootfs{config: &c}).cacheKey() }
	same := base
	same.ExtraPackages = []string{"jq", "curl", "curl"}
	same.DiskSize, same.Hostname = "8G", "other"
	if key(base) != key(same) {
		t.Error("package order, duplicates, disk size or hostname changed the cache key")
	}
	for name, c := range map[string]Config{
		"suite":    {Suite: "trixie", Mirror: base.Mirror, ExtraPackages: base.ExtraPackages},
		"mirror":   {Suite: base.Suite, Mirror: "http://mirror.example/debian", ExtraPackages: base.ExtraPackages},
		"packages": {Suite: base.Suite, Mirror: base.Mirror, ExtraPackages: []string{"curl"}},
	} {
		if key(c) == key(base) {
			t.Errorf("changing the %s kept the cache key", name)
		}
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
