package ztnarouter

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"pault.ag/go/debian/changelog"
	debcontrol "pault.ag/go/debian/control"
	"pault.ag/go/debian/version"

	"github.com/ztna/ztna/internal/control"
)

// dpkgPackage is one stanza of /var/lib/dpkg/status or of an apt Packages index.
type dpkgPackage struct {
	Package      string
	Version      string
	Architecture string
	Status       string
}

func parsePackages(r io.Reader) ([]dpkgPackage, error) {
	var pkgs []dpkgPackage
	if err := debcontrol.Unmarshal(&pkgs, r); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// installedPackages returns the packages dpkg lists as installed, sorted by name and architecture.
func installedPackages(status io.Reader) ([]dpkgPackage, error) {
	all, err := parsePackages(status)
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	var installed []dpkgPackage
	for _, p := range all {
		if p.Status == "install ok installed" {
			installed = append(installed, p)
		}
	}
	slices.SortFunc(installed, func(a, b dpkgPackage) int {
		return strings.Compare(a.Package+":"+a.Architecture, b.Package+":"+b.Architecture)
	})
	return installed, nil
}

// packagesDigest is the SHA-256 of the sorted "name:arch version" lines of the installed
// packages: two images with the same digest carry the same package versions.
func packagesDigest(installed []dpkgPackage) string {
	h := sha256.New()
	for _, p := range installed {
		fmt.Fprintf(h, "%s:%s %s\n", p.Package, p.Architecture, p.Version)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// securityStatus compares the installed packages with the security suite's Packages index:
// behind lists the installed packages the suite has a newer version of, current the ones
// installed at the suite's version (the security updates the image includes).
func securityStatus(installed []dpkgPackage, index io.Reader) (current, behind []string, err error) {
	suite, err := parsePackages(index)
	if err != nil {
		return nil, nil, fmt.Errorf("security Packages index: %w", err)
	}
	newest := map[string]version.Version{}
	for _, p := range suite {
		v, err := version.Parse(p.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("security Packages index: %s: %w", p.Package, err)
		}
		key := p.Package + ":" + p.Architecture
		if old, ok := newest[key]; !ok || version.Compare(v, old) > 0 {
			newest[key] = v
		}
	}
	for _, p := range installed {
		sec, ok := newest[p.Package+":"+p.Architecture]
		if !ok {
			continue
		}
		v, err := version.Parse(p.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("dpkg status: %s: %w", p.Package, err)
		}
		switch c := version.Compare(v, sec); {
		case c < 0:
			behind = append(behind, fmt.Sprintf("%s %s (security: %s)", p.Package, p.Version, sec))
		case c == 0:
			current = append(current, p.Package)
		}
	}
	return current, behind, nil
}

// releaseDate reads the Date field of an apt Release/InRelease file.
func releaseDate(release []byte) (time.Time, error) {
	sc := bufio.NewScanner(bytes.NewReader(release))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Date:"); ok {
			return time.Parse(time.RFC1123, strings.TrimSpace(v))
		}
	}
	return time.Time{}, errors.New("no Date field")
}

// changelogDate is the date of the newest entry of a changelog.Debian.gz: when that version
// of the package was published.
func changelogDate(gz []byte) (time.Time, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return time.Time{}, err
	}
	entry, err := changelog.ParseOne(bufio.NewReader(zr))
	if err != nil {
		return time.Time{}, err
	}
	return entry.When, nil
}

// newestSecurityUpdate picks, among the packages installed at their security suite version, the
// one whose changelog is newest. changelogOf returns a package's changelog.Debian.gz, or an
// error when the image has none (docs excluded), in which case the package is not considered.
func newestSecurityUpdate(installed []dpkgPackage, current []string, changelogOf func(pkg string) ([]byte, error)) *control.SecurityUpdate {
	var newest *control.SecurityUpdate
	for _, name := range current {
		gz, err := changelogOf(name)
		if err != nil {
			continue
		}
		when, err := changelogDate(gz)
		if err != nil {
			continue
		}
		if newest == nil || when.After(newest.Published) {
			i := slices.IndexFunc(installed, func(p dpkgPackage) bool { return p.Package == name })
			newest = &control.SecurityUpdate{Package: name, Version: installed[i].Version, Published: when.UTC()}
		}
	}
	return newest
}
