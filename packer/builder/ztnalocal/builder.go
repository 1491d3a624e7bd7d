//go:generate go tool -modfile=../../../tools/go.mod packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool -modfile=../../../tools/go.mod packer-sdc struct-markdown

// Package ztnalocal is the ztna-local Packer builder: it bootstraps a Debian root filesystem
// with mmdebstrap (cached between builds), provisions it through a chroot communicator and writes
// it as a bootable raw or qcow2 disk image, for on-prem/KVM hosts and for testing the whole bake
// path on one machine. It needs root, mmdebstrap, sfdisk, losetup, mkfs.ext4 and, for qcow2,
// qemu-img.
package ztnalocal

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// BuilderID identifies ztna-local artifacts.
const BuilderID = "ztna.local"

// Config is the source block of the ztna-local builder.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Debian suite to bootstrap. Default "bookworm". The image is built from the suite, its
	// -updates suite (from mirror) and its -security suite (from security_mirror), and keeps
	// all three in its sources.list so unattended-upgrades can patch it.
	Suite string `mapstructure:"suite"`
	// Debian mirror for the suite and its -updates suite. Default "http://deb.debian.org/debian".
	Mirror string `mapstructure:"mirror"`
	// Debian security mirror for the -security suite. Default
	// "http://deb.debian.org/debian-security".
	SecurityMirror string `mapstructure:"security_mirror"`
	// Packages installed on top of the minimal base (systemd, networkd/resolved, nftables, the
	// cloud kernel and GRUB). Add openssh-server for SSH: its host keys are removed from the
	// base, and each VM generates its own on first boot.
	ExtraPackages []string `mapstructure:"extra_packages"`
	// Disk image format: qcow2 (default) or raw.
	Format string `mapstructure:"format"`
	// Size of the disk image, e.g. "2G" (default) or "2048M".
	DiskSize string `mapstructure:"disk_size"`
	// Directory the image is written to. Default "output-<build name>".
	OutputDir string `mapstructure:"output_directory"`
	// Image file name without extension. Default "ztna-router".
	ImageName string `mapstructure:"image_name"`
	// Host name of the image. Default "ztna-router".
	Hostname string `mapstructure:"hostname"`
	// Where bootstrapped root filesystems are cached, keyed by suite, mirrors, packages and the
	// UTC day of the bootstrap: a cached base is reused on the day it was made only, and the
	// provisioner's upgrade brings it up to date with the mirror. Default: the Packer cache
	// directory ($PACKER_CACHE_DIR) under "ztna-local".
	CacheDir string `mapstructure:"cache_dir"`
	// Bootstrap a new base root filesystem even when today's is cached (e.g. right after a
	// Debian security advisory). Default false.
	RefreshBase bool `mapstructure:"refresh_base"`

	ctx interpolate.Context
}

// Builder implements packersdk.Builder.
type Builder struct {
	config Config
	runner multistep.Runner
}

var _ packersdk.Builder = (*Builder)(nil)

// ConfigSpec returns the HCL2 spec of Config.
func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

var (
	diskSize    = regexp.MustCompile(`^([1-9][0-9]*)([MG])$`)
	packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	hostname    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	fileName    = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// Prepare decodes and validates the configuration.
func (b *Builder) Prepare(raws ...interface{}) (generatedVars []string, warnings []string, err error) {
	err = config.Decode(&b.config, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &b.config.ctx,
	}, raws...)
	if err != nil {
		return nil, nil, err
	}
	c := &b.config
	setDefault(&c.Suite, "bookworm")
	setDefault(&c.Mirror, "http://deb.debian.org/debian")
	setDefault(&c.SecurityMirror, "http://deb.debian.org/debian-security")
	setDefault(&c.Format, "qcow2")
	setDefault(&c.DiskSize, "2G")
	setDefault(&c.OutputDir, "output-"+c.PackerBuildName)
	setDefault(&c.ImageName, "ztna-router")
	setDefault(&c.Hostname, "ztna-router")
	if c.CacheDir == "" {
		if c.CacheDir, err = packersdk.CachePath("ztna-local"); err != nil {
			return nil, nil, err
		}
	}

	var errs []error
	if !regexp.MustCompile(`^[a-z]+$`).MatchString(c.Suite) {
		errs = append(errs, fmt.Errorf("suite %q: a Debian suite name such as bookworm", c.Suite))
	}
	for _, m := range []struct{ name, url string }{{"mirror", c.Mirror}, {"security_mirror", c.SecurityMirror}} {
		if !strings.HasPrefix(m.url, "http://") && !strings.HasPrefix(m.url, "https://") || strings.ContainsAny(m.url, " \t\n") {
			errs = append(errs, fmt.Errorf("%s %q: must be an http:// or https:// URL", m.name, m.url))
		}
	}
	for i, p := range c.ExtraPackages {
		if !packageName.MatchString(p) {
			errs = append(errs, fmt.Errorf("extra_packages[%d] %q: not a Debian package name", i, p))
		}
	}
	if !slices.Contains([]string{"qcow2", "raw"}, c.Format) {
		errs = append(errs, fmt.Errorf("format %q: must be qcow2 or raw", c.Format))
	}
	if _, err := diskBytes(c.DiskSize); err != nil {
		errs = append(errs, err)
	}
	if !fileName.MatchString(c.ImageName) {
		errs = append(errs, fmt.Errorf("image_name %q: letters, digits, '.', '_' and '-' only", c.ImageName))
	}
	if !hostname.MatchString(c.Hostname) {
		errs = append(errs, fmt.Errorf("hostname %q: a lower-case DNS label", c.Hostname))
	}
	for _, tool := range requiredTools(c.Format) {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s is not installed: the ztna-local builder needs it (scripts/deps.sh image installs it)", tool))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return []string{"SourceImageName"}, nil, nil
}

func requiredTools(format string) []string {
	tools := []string{"mmdebstrap", "sfdisk", "losetup", "partx", "mkfs.ext4", "mount", "umount", "chroot", "tar"}
	if format == "qcow2" {
		tools = append(tools, "qemu-img")
	}
	return tools
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// diskBytes parses disk_size.
func diskBytes(s string) (int64, error) {
	m := diskSize.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("disk_size %q: a size such as 2G or 2048M", s)
	}
	var n int64
	fmt.Sscan(m[1], &n)
	if m[2] == "G" {
		n *= 1024
	}
	if n < 512 {
		return 0, fmt.Errorf("disk_size %q: at least 512M", s)
	}
	return n << 20, nil
}

// Run builds the image.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	c := &b.config
	if err := closeInheritedFDs(); err != nil {
		return nil, err
	}
	state := new(multistep.BasicStateBag)
	state.Put("hook", hook)
	state.Put("ui", ui)
	state.Put("wrappedCommand", common.CommandWrapper(func(s string) (string, error) { return s, nil }))

	steps := []multistep.Step{
		&commonsteps.StepOutputDir{Force: c.PackerForce, Path: c.OutputDir},
		&stepRootfs{config: c, now: time.Now},
	}
	steps = append(steps, chrootSteps()...)
	steps = append(steps, &stepFinalizeRootfs{config: c}, &stepDisk{config: c})
	if c.Format == "qcow2" {
		steps = append(steps, &stepConvertQcow2{})
	}
	b.runner = commonsteps.NewRunner(steps, c.PackerConfig, ui)
	b.runner.Run(ctx, state)
	if err, ok := state.GetOk("error"); ok {
		return nil, err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}
	attestation, _ := state.Get("attestation").(string)
	return &Artifact{
		path:        state.Get("image_path").(string),
		format:      c.Format,
		baseImage:   state.Get("base_image").(string),
		generated:   state.Get("generated_data").(map[string]interface{}),
		attestation: attestation,
	}, nil
}
