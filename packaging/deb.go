// Package packaging builds the ztna-router Debian package (binary, sandboxed systemd units,
// dedicated system user) from the nfpm configuration in this directory. The ztna-router Packer
// provisioner calls it to turn a router binary into a .deb it installs in the image; the same
// nfpm.yaml works with the nfpm command line for releases.
package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

//go:embed nfpm.yaml copyright lintian-overrides-pure-go ztna-router.1 ztna-router.service ztna-router-bootstrap.service ztna-router.default scripts/*.sh
var packagingFiles embed.FS

// DebOptions says what goes into one package build.
type DebOptions struct {
	// Binary is the path of the ztna-router executable for Arch: position-independent (go
	// build -buildmode=pie), static or linked against glibc.
	Binary string
	// Version of the router as the binary reports it (a semantic version, e.g. "1.2.3",
	// "v1.3.0-rc1" or git describe's "v1.2.3-4-gabcdef0"); DebVersion maps it to the package
	// version.
	Version string
	// Arch is the Debian architecture: amd64 or arm64.
	Arch string
	// Now dates the package's changelog entry; zero means the current time.
	Now time.Time
}

var (
	semver = regexp.MustCompile(`^([0-9]+\.[0-9]+\.[0-9]+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$`)
	// git describe: the nearest tag, the commits since it and the commit.
	gitDescribe = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]{4,40})$`)
)

// DebVersion maps a router version to the Debian package version that sorts like it: a
// pre-release sorts before its release (1.3.0-rc1 → 1.3.0~rc1; dpkg would put 1.3.0-rc1 after
// 1.3.0 and read "rc1" as a Debian revision), build metadata and commits after a tag after it
// (v1.2.3-4-gabcdef0 → 1.2.3+git4.gabcdef0). A leading "v" is dropped.
func DebVersion(v string) (string, error) {
	v = strings.TrimPrefix(v, "v")
	v, dirty := strings.CutSuffix(v, "-dirty") // git describe --dirty: uncommitted changes
	suffix := ""
	if m := gitDescribe.FindStringSubmatch(v); m != nil && semver.MatchString(m[1]) {
		v, suffix = m[1], "+git"+m[2]+".g"+m[3]
	}
	m := semver.FindStringSubmatch(v)
	if m == nil {
		return "", fmt.Errorf("router version %q: not a semantic version such as 1.2.3, v1.3.0-rc1 or v1.2.3-4-gabcdef0 (tag the build or set its version)", v)
	}
	out := m[1]
	if m[2] != "" {
		out += "~" + strings.ReplaceAll(m[2], "-", ".")
	}
	if m[3] != "" {
		out += "+" + strings.ReplaceAll(m[3], "-", ".")
	}
	if suffix != "" {
		if m[3] == "" {
			out += suffix
		} else {
			out += "." + strings.TrimPrefix(suffix, "+")
		}
	}
	if dirty {
		if strings.Contains(out, "+") {
			out += ".dirty"
		} else {
			out += "+dirty"
		}
	}
	return out, nil
}

func (o DebOptions) validate() error {
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("router binary: path required"))
	} else if fi, err := os.Stat(o.Binary); err != nil {
		errs = append(errs, fmt.Errorf("router binary: %w", err))
	} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("router binary %s: not an executable file", o.Binary))
	}
	if _, err := DebVersion(o.Version); err != nil {
		errs = append(errs, err)
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		errs = append(errs, fmt.Errorf("architecture %q: must be amd64 or arm64", o.Arch))
	}
	return errors.Join(errs...)
}

// elfMachines are the ELF machines of the Debian architectures.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// linkage is what packaging needs to know about the router executable.
type linkage struct {
	// libc is the package's glibc dependency ("" for a static-pie executable).
	libc string
	// pureGo: loaded by ld.so but needing no shared library (a CGO_ENABLED=0 PIE).
	pureGo bool
}

// inspectBinary checks the router executable: it must be for arch and position-independent
// (Debian's hardening; lintian: hardening-no-pie); when it is linked against glibc the package
// depends on the newest glibc symbol version it uses, as dpkg-shlibdeps would say.
func inspectBinary(binary, arch string) (linkage, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return linkage{}, fmt.Errorf("router binary %s: not an ELF executable: %w", binary, err)
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		return linkage{}, fmt.Errorf("router binary %s: built for %s, not %s", binary, f.Machine, arch)
	}
	if f.Type != elf.ET_DYN {
		return linkage{}, fmt.Errorf("router binary %s: not position-independent; build it with go build -buildmode=pie", binary)
	}
	dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	if !dynamic {
		return linkage{}, nil // static-pie: no libc
	}
	libs, _ := f.ImportedLibraries()
	// Go's PIE is loaded by glibc's ld.so even without cgo; with cgo it needs glibc's symbols.
	syms, _ := f.ImportedSymbols()
	var newest [2]int
	for _, s := range syms {
		var v [2]int
		if _, err := fmt.Sscanf(s.Version, "GLIBC_%d.%d", &v[0], &v[1]); err == nil && (v[0] > newest[0] || v[0] == newest[0] && v[1] > newest[1]) {
			newest = v
		}
	}
	l := linkage{libc: "libc6", pureGo: len(libs) == 0}
	if newest != [2]int{} {
		l.libc = fmt.Sprintf("libc6 (>= %d.%d)", newest[0], newest[1])
	}
	return l, nil
}

// changelog is the package's Debian changelog: one entry for the version being packaged.
func changelog(version string, when time.Time) []byte {
	return gzipped(fmt.Appendf(nil, "ztna-router (%s) stable; urgency=medium\n\n  * ztna-router %s.\n\n -- ztna maintainers <ztna@users.noreply.github.com>  %s\n",
		version, version, when.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")))
}

// gzipped compresses data as Debian policy wants documentation: best compression, no name and
// no time stamp in the header (reproducible).
func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// BuildDeb writes the ztna-router .deb for opts to w.
func BuildDeb(opts DebOptions, w io.Writer) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("ztna-router package: %w", err)
	}
	version, _ := DebVersion(opts.Version)
	if opts.Now.IsZero() {
		opts.Now = time.Now()
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
	if err := os.CopyFS(dir, packagingFiles); err != nil {
		return fmt.Errorf("ztna-router package: extracting packaging files: %w", err)
	}

	link, err := inspectBinary(binary, opts.Arch)
	if err != nil {
		return fmt.Errorf("ztna-router package: %w", err)
	}
	manPage, err := fs.ReadFile(packagingFiles, "ztna-router.1")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"changelog.gz": changelog(version, opts.Now), "ztna-router.1.gz": gzipped(manPage)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}

	env := map[string]string{"ZTNA_ROUTER_BINARY": binary, "VERSION": version, "ARCH": opts.Arch}
	raw, err := fs.ReadFile(packagingFiles, "nfpm.yaml")
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
	if link.libc != "" {
		info.Depends = append(info.Depends, link.libc)
	}
	if link.pureGo {
		info.Contents = append(info.Contents, &files.Content{
			Source: filepath.Join(dir, "lintian-overrides-pure-go"), Destination: "/usr/share/lintian/overrides/ztna-router",
			FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
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
