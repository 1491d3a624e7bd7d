// Package packaging builds the ztna-router Debian package (binary, sandboxed systemd units,
// dedicated system user) from the nfpm configuration in this directory. The ztna-router Packer
// provisioner calls it to turn a router binary into a .deb it installs in the image; the same
// nfpm.yaml works with the nfpm command line for releases.
package packaging

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

//go:embed nfpm.yaml ztna-router.service ztna-router-bootstrap.service ztna-router.default scripts/*.sh
var files embed.FS

// DebOptions says what goes into one package build.
type DebOptions struct {
	// Binary is the path of the ztna-router executable for Arch.
	Binary string
	// Version of the router, used as the package version (e.g. "1.2.3" or "1.2.3-rc1").
	Version string
	// Arch is the Debian architecture: amd64 or arm64.
	Arch string
}

// A Debian version must start with a digit; a leading "v" (git tags) is dropped by BuildDeb.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

func (o DebOptions) validate() error {
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("router binary: path required"))
	} else if fi, err := os.Stat(o.Binary); err != nil {
		errs = append(errs, fmt.Errorf("router binary: %w", err))
	} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("router binary %s: not an executable file", o.Binary))
	}
	if !debVersion.MatchString(o.Version) {
		errs = append(errs, fmt.Errorf("router version %q: must start with a digit and contain only letters, digits and .+~-", o.Version))
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		errs = append(errs, fmt.Errorf("architecture %q: must be amd64 or arm64", o.Arch))
	}
	return errors.Join(errs...)
}

// BuildDeb writes the ztna-router .deb for opts to w.
func BuildDeb(opts DebOptions, w io.Writer) error {
	opts.Version = strings.TrimPrefix(opts.Version, "v")
	if err := opts.validate(); err != nil {
		return fmt.Errorf("ztna-router package: %w", err)
	}
	// nfpm would package a symlink as a symlink; the image needs the file it points to.
	binary, err := filepath.EvalSymlinks(opts.Binary)
	if err != nil {
		return err
	}
	if binary, err = filepath.Abs(binary); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ztna-packaging-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, files); err != nil {
		return fmt.Errorf("ztna-router package: extracting packaging files: %w", err)
	}

	env := map[string]string{"ZTNA_ROUTER_BINARY": binary, "VERSION": opts.Version, "ARCH": opts.Arch}
	raw, err := fs.ReadFile(files, "nfpm.yaml")
	if err != nil {
		return err
	}
	cfg, err := nfpm.ParseWithEnvMapping(bytes.NewReader(raw), func(k string) string { return env[k] })
	if err != nil {
		return fmt.Errorf("ztna-router package: nfpm.yaml: %w", err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return err
	}
	// nfpm resolves relative paths against the working directory; ours are relative to the
	// extracted packaging directory.
	for _, c := range info.Contents {
		if c.Source != "" && !filepath.IsAbs(c.Source) {
			c.Source = filepath.Join(dir, c.Source)
		}
	}
	for _, s := range []*string{&info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *s != "" {
			*s = filepath.Join(dir, *s)
		}
	}
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("ztna-router package: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := packager.Package(info, w); err != nil {
		return fmt.Errorf("ztna-router package: %w", err)
	}
	return nil
}
