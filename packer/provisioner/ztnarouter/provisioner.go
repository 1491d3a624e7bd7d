//go:generate go tool -modfile=../../../tools/go.mod packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool -modfile=../../../tools/go.mod packer-sdc struct-markdown

// Package ztnarouter is the ztna-router Packer provisioner: it installs the ztna router (as the
// ztna-router .deb) with its sandboxed systemd units and first-boot enrolment, hardens the image
// (nftables default-deny inbound, sysctl, optional SSH lock-down) and writes the attestation file
// /etc/ztna/image.json. It works through any communicator: SSH on cloud builders, chroot on
// ztna-local.
package ztnarouter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/packaging"
)

// Config is the provisioner's HCL block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Path of the ztna-router executable to install; the provisioner packages it as a .deb.
	// Exactly one of router_binary and router_deb is required.
	RouterBinary string `mapstructure:"router_binary"`
	// Path of a ready ztna-router .deb (from packaging/nfpm.yaml) to install instead.
	RouterDeb string `mapstructure:"router_deb"`
	// Version of the router: what `ztna-router version` prints (the build's one version
	// string, e.g. 1.2.3 or v1.3.0-rc1); the installation fails when the binary says otherwise.
	// It is recorded in the attestation and mapped to the package version (1.3.0-rc1 becomes
	// 1.3.0~rc1, which dpkg sorts before 1.3.0); with router_deb the package must have that
	// version.
	RouterVersion string `mapstructure:"router_version" required:"true"`
	// Debian architecture of the image: amd64 (default) or arm64.
	Arch string `mapstructure:"arch"`
	// Cloud the image is for: aws, gcp, azure or local. Recorded in the attestation.
	Cloud string `mapstructure:"cloud" required:"true"`
	// Where first boot reads the registration key: aws (EC2 user data, IMDSv2), gcp (metadata
	// item ztna-registration-key), azure (user data through IMDS, else custom data) or file
	// (/etc/ztna/registration-key). Defaults to the cloud; file for local.
	MetadataSource string `mapstructure:"metadata_source"`
	// The base image the build started from, for the attestation. Defaults to what the builder
	// reports (SourceAMIName/SourceAMI on amazon-ebs, SourceImageName on googlecompute and
	// ztna-local); required with builders that report none.
	BaseImage string `mapstructure:"base_image"`
	// Harden sshd when it is installed: keys only, no root login, no forwarding, MaxAuthTries 3
	// (/etc/ssh/sshd_config.d/00-ztna-lockdown.conf, read before cloud-init's drop-ins).
	// Default true.
	SSHLockdown config.Trilean `mapstructure:"ssh_lockdown"`
	// CIDRs allowed to reach SSH (tcp/22) through the image firewall. Default: none, so the
	// image accepts no inbound connection at all.
	SSHAllowFrom []string `mapstructure:"ssh_allow_from"`
	// NTP servers of systemd-timesyncd (certificates need the right time). Default: the
	// cloud's time service (aws 169.254.169.123, gcp metadata.google.internal), Debian's pool
	// otherwise; written to /etc/systemd/timesyncd.conf.d/50-ztna.conf. The image's egress
	// allowlist must allow udp/123 to them.
	NTPServers []string `mapstructure:"ntp_servers"`
	// PEM PKCS#8 Ed25519 private key that signs /etc/ztna/image.json (openssl genpkey
	// -algorithm ed25519 -out build.key); controllers given its public key (openssl pkey -in
	// build.key -pubout; attestation_keys in their config) report the router's attestation as
	// verified. Unset: the attestation is unsigned.
	AttestationKeyFile string `mapstructure:"attestation_key_file"`
	// Run the installation with `sudo -n` (cloud builders log in as an unprivileged user).
	UseSudo bool `mapstructure:"use_sudo"`
	// Bring every package up to the mirror's current version (apt-get update, then upgrade
	// with new dependencies such as a new kernel ABI) before installing the router, and fail
	// the build when a package is still behind the security suite. Default true.
	UpgradePackages config.Trilean `mapstructure:"upgrade_packages"`
	// Install and enable unattended-upgrades, so the image applies Debian security updates
	// daily (apt-daily-upgrade.timer: 06:00 plus up to an hour's random delay). Default true;
	// false disables the daily run.
	UnattendedUpgrades config.Trilean `mapstructure:"unattended_upgrades"`
	// Reboot right after a daily run whose updates need it (kernel, libc: the
	// /run/reboot-required flag), so routers of one network reboot at different moments of
	// the timer's random hour. Default true; false leaves the reboot to the operator.
	AutomaticReboot config.Trilean `mapstructure:"automatic_reboot"`

	ctx interpolate.Context
}

// Provisioner implements packersdk.Provisioner.
type Provisioner struct {
	config  Config
	sshFrom []netip.Prefix
	// signer signs the attestation; nil leaves it unsigned.
	signer Signer
	// now is the clock for the attestation's build time; tests pin it.
	now func() time.Time
}

var _ packersdk.Provisioner = (*Provisioner)(nil)

// Clouds and metadata sources the provisioner knows.
var (
	clouds          = []string{"aws", "gcp", "azure", "local"}
	metadataSources = []string{"aws", "gcp", "azure", "file"}
)

// defaultNTPServers are the clouds' own time services, reachable from any instance at a
// link-local or metadata address; elsewhere timesyncd keeps Debian's pool.
var defaultNTPServers = map[string][]string{
	"aws": {"169.254.169.123"},
	"gcp": {"metadata.google.internal"},
}

var ntpServer = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$`)

// ConfigSpec returns the HCL2 spec of Config.
func (p *Provisioner) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Prepare decodes and validates the configuration, reporting every problem at once.
func (p *Provisioner) Prepare(raws ...interface{}) error {
	err := config.Decode(&p.config, &config.DecodeOpts{
		PluginType:         "ztna-router",
		Interpolate:        true,
		InterpolateContext: &p.config.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	c := &p.config
	var errs []error
	switch {
	case c.RouterBinary == "" && c.RouterDeb == "":
		errs = append(errs, errors.New("router_binary or router_deb: one is required"))
	case c.RouterBinary != "" && c.RouterDeb != "":
		errs = append(errs, errors.New("router_binary and router_deb: set only one"))
	}
	for name, file := range map[string]string{"router_binary": c.RouterBinary, "router_deb": c.RouterDeb} {
		if file == "" {
			continue
		}
		if fi, err := os.Stat(file); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		} else if !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s %s: not a regular file", name, file))
		}
	}
	if c.RouterVersion == "" {
		errs = append(errs, errors.New("router_version: required, the version the router binary reports (ztna-router version), such as 1.2.3 or v1.3.0-rc1"))
	} else if _, err := packaging.DebVersion(c.RouterVersion); err != nil {
		errs = append(errs, fmt.Errorf("router_version: %w", err))
	}
	if c.Arch == "" {
		c.Arch = "amd64"
	}
	if c.Arch != "amd64" && c.Arch != "arm64" {
		errs = append(errs, fmt.Errorf("arch %q: must be amd64 or arm64", c.Arch))
	}
	if !slices.Contains(clouds, c.Cloud) {
		errs = append(errs, fmt.Errorf("cloud %q: must be one of %s", c.Cloud, strings.Join(clouds, ", ")))
	}
	if c.MetadataSource == "" {
		c.MetadataSource = c.Cloud
		if c.Cloud == "local" {
			c.MetadataSource = "file"
		}
	}
	if !slices.Contains(metadataSources, c.MetadataSource) {
		errs = append(errs, fmt.Errorf("metadata_source %q: must be one of %s", c.MetadataSource, strings.Join(metadataSources, ", ")))
	}
	if c.NTPServers == nil {
		c.NTPServers = defaultNTPServers[c.Cloud]
	}
	for i, server := range c.NTPServers {
		if !ntpServer.MatchString(server) {
			errs = append(errs, fmt.Errorf("ntp_servers[%d] %q: a host name or IP address", i, server))
		}
	}
	if c.AttestationKeyFile != "" {
		if signer, err := loadKeyFile(c.AttestationKeyFile); err != nil {
			errs = append(errs, err)
		} else {
			p.signer = signer
		}
	}
	sshFrom, err := parseCIDRs(c.SSHAllowFrom)
	if err != nil {
		errs = append(errs, err)
	}
	p.sshFrom = sshFrom
	if p.now == nil {
		p.now = time.Now
	}
	return errors.Join(errs...)
}

// baseImageKeys are the generated-data keys under which builders report their source image,
// most descriptive first.
var baseImageKeys = []string{"SourceAMIName", "SourceAMI", "SourceImageName"}

func (p *Provisioner) baseImage(generated map[string]interface{}) (string, error) {
	if p.config.BaseImage != "" {
		return p.config.BaseImage, nil
	}
	for _, k := range baseImageKeys {
		if v, ok := generated[k].(string); ok && v != "" {
			return v, nil
		}
	}
	return "", errors.New("base_image: not set and the builder reports no source image; set base_image")
}

// Provision installs the router and the hardening on the machine behind comm.
func (p *Provisioner) Provision(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, generated map[string]interface{}) error {
	c := &p.config
	base, err := p.baseImage(generated)
	if err != nil {
		return err
	}
	runID, _ := generated["PackerRunUUID"].(string)

	deb, err := p.routerDeb(ui)
	if err != nil {
		return err
	}
	lockdown := !c.SSHLockdown.False()
	profile := hardeningProfile(lockdown, p.sshFrom)
	ruleset, err := nftablesRuleset(p.sshFrom)
	if err != nil {
		return err
	}
	staging, err := stagingDir()
	if err != nil {
		return err
	}
	upgrade := !c.UpgradePackages.False()
	debVersion, err := packaging.DebVersion(c.RouterVersion)
	if err != nil {
		return err
	}
	script, err := installScript(installParams{
		Staging: staging, SSHLockdown: lockdown, Version: strings.TrimPrefix(c.RouterVersion, "v"), DebVersion: debVersion,
		Upgrade: upgrade, UnattendedUpgrades: !c.UnattendedUpgrades.False(),
	})
	if err != nil {
		return err
	}

	ui.Say(fmt.Sprintf("Installing ztna-router %s (hardening %s, key from %s, base image %s)", c.RouterVersion, profile, c.MetadataSource, base))
	if err := run(ctx, ui, comm, "mkdir -m 0700 -p "+staging); err != nil {
		return err
	}
	uploads := []struct {
		name string
		data []byte
	}{
		{"ztna-router.deb", deb},
		{"nftables.conf", ruleset},
		{"sysctl.conf", sysctlConf},
		{"sshd-lockdown.conf", sshdLockdown},
		{"metadata-source.conf", metadataDropIn(c.MetadataSource)},
		{"auto-upgrades.conf", autoUpgradesConf(!c.UnattendedUpgrades.False(), !c.AutomaticReboot.False())},
		{"resolved.conf", resolvedConf},
		{"ssh-hostkeys.service", sshHostKeysUnit},
		{"timesyncd.conf", timesyncdConf(c.NTPServers)},
		{"install.sh", script},
	}
	for _, u := range uploads {
		if err := comm.Upload(path.Join(staging, u.name), bytes.NewReader(u.data), nil); err != nil {
			return fmt.Errorf("uploading %s: %w", u.name, err)
		}
	}
	if err := run(ctx, ui, comm, p.sudo("sh "+path.Join(staging, "install.sh"))); err != nil {
		return err
	}

	pkgs, err := p.packageSet(ui, comm, path.Join(staging, "inventory"), upgrade)
	if err != nil {
		return err
	}
	att := control.Attestation{
		RouterVersion:    strings.TrimPrefix(c.RouterVersion, "v"),
		HardeningProfile: profile,
		BuildTime:        p.now().UTC().Truncate(time.Second),
		BaseImage:        base,
		Cloud:            c.Cloud,
		ProvisionerRunID: runID,
		Packages:         pkgs,
	}
	if p.signer != nil {
		if err := sign(ctx, p.signer, &att); err != nil {
			return err
		}
		ui.Say("Attestation signed with " + p.signer.KeyID())
	}
	image, err := attestation(att)
	if err != nil {
		return err
	}
	if err := comm.Upload(path.Join(staging, "image.json"), bytes.NewReader(image), nil); err != nil {
		return fmt.Errorf("uploading image.json: %w", err)
	}
	return run(ctx, ui, comm, p.sudo(fmt.Sprintf("sh -c 'install -D -m 0644 %[1]s/image.json %[2]s && rm -rf %[1]s'", staging, control.AttestationPath)))
}

func (p *Provisioner) sudo(cmd string) string {
	if p.config.UseSudo {
		return "sudo -n " + cmd
	}
	return cmd
}

// packageSet reads the inventory install.sh left in dir (dpkg status, the security suite's
// Packages index and InRelease) and summarises it for the attestation. After an upgrade, a
// package still behind the security suite (held, or its update needs a removal) fails the build.
func (p *Provisioner) packageSet(ui packersdk.Ui, comm packersdk.Communicator, dir string, upgraded bool) (*control.PackageSet, error) {
	download := func(name string) ([]byte, error) {
		var buf bytes.Buffer
		if err := comm.Download(path.Join(dir, name), &buf); err != nil {
			return nil, fmt.Errorf("reading the package inventory %s: %w", name, err)
		}
		return buf.Bytes(), nil
	}
	status, err := download("status")
	if err != nil {
		return nil, err
	}
	installed, err := installedPackages(bytes.NewReader(status))
	if err != nil {
		return nil, err
	}
	set := &control.PackageSet{Count: len(installed), Digest: packagesDigest(installed)}
	release, err := download("security-InRelease")
	if err != nil || len(release) == 0 {
		msg := "the image has no Debian security suite in its apt sources: it cannot be patched (add <suite>-security to the base image's sources.list)"
		if upgraded {
			return nil, errors.New(msg)
		}
		ui.Error("warning: " + msg)
		return set, nil
	}
	if set.SecurityIndexDate, err = releaseDate(release); err != nil {
		return nil, fmt.Errorf("security suite InRelease: %w", err)
	}
	set.SecurityIndexDate = set.SecurityIndexDate.UTC()
	index, err := download("security-Packages")
	if err != nil {
		return nil, err
	}
	current, behind, err := securityStatus(installed, bytes.NewReader(index))
	if err != nil {
		return nil, err
	}
	if len(behind) > 0 {
		msg := fmt.Sprintf("%d packages are behind the security suite of %s: %s", len(behind), set.SecurityIndexDate.Format(time.RFC3339), strings.Join(behind, ", "))
		if upgraded {
			return nil, errors.New(msg + " (held packages? the upgrade could not install them)")
		}
		ui.Error("warning: " + msg + " (upgrade_packages = false)")
	}
	set.SecurityUpdates = len(current)
	set.NewestSecurityUpdate = newestSecurityUpdate(installed, current, func(pkg string) ([]byte, error) {
		var buf bytes.Buffer
		err := comm.Download("/usr/share/doc/"+pkg+"/changelog.Debian.gz", &buf)
		return buf.Bytes(), err
	})
	ui.Say(fmt.Sprintf("%d packages (%s), %d at their security suite version, security suite of %s",
		set.Count, set.Digest, set.SecurityUpdates, set.SecurityIndexDate.Format(time.RFC3339)))
	return set, nil
}

// routerDeb returns the package to install: router_deb as is, or router_binary packaged.
func (p *Provisioner) routerDeb(ui packersdk.Ui) ([]byte, error) {
	c := &p.config
	if c.RouterDeb != "" {
		deb, err := os.ReadFile(c.RouterDeb)
		if err != nil {
			return nil, fmt.Errorf("router_deb: %w", err)
		}
		return deb, nil
	}
	ui.Say(fmt.Sprintf("Packaging %s as ztna-router %s (%s)", c.RouterBinary, c.RouterVersion, c.Arch))
	var buf bytes.Buffer
	if err := packaging.BuildDeb(packaging.DebOptions{Binary: c.RouterBinary, Version: c.RouterVersion, Arch: c.Arch}, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var installTmpl = template.Must(template.New("install").Parse(installTemplate))

// installParams fill files/install.sh.tmpl.
type installParams struct {
	Staging     string
	SSHLockdown bool
	// Version is what the router binary must report, DebVersion the package's version.
	Version            string
	DebVersion         string
	Upgrade            bool
	UnattendedUpgrades bool
}

func installScript(params installParams) ([]byte, error) {
	var buf bytes.Buffer
	err := installTmpl.Execute(&buf, params)
	return buf.Bytes(), err
}

// stagingDir is a fresh directory name on the target, so concurrent or repeated runs never reuse
// files another run left behind.
func stagingDir() (string, error) {
	b := make([]byte, 8)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", err
	}
	return "/tmp/ztna-provision-" + hex.EncodeToString(b), nil
}

// run runs command on the target, streaming its output to the UI, and fails on a non-zero exit.
func run(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, command string) error {
	cmd := &packersdk.RemoteCmd{Command: command}
	if err := cmd.RunWithUi(ctx, comm, ui); err != nil {
		return fmt.Errorf("running %q: %w", command, err)
	}
	if s := cmd.ExitStatus(); s != 0 {
		return fmt.Errorf("%q exited with status %d", command, s)
	}
	return nil
}
