package ztnarouter

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
	"time"
)

// Stanzas as dpkg and the Debian archive write them (fields trimmed).
const dpkgStatus = `Package: libssl3
Status: install ok installed
Architecture: amd64
Version: 3.0.20-1~deb12u1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libexpat1
Status: install ok installed
Architecture: amd64
Version: 2.5.0-1+deb12u2
`

const securityIndex = `Package: libssl3
Source: openssl
Version: 3.0.22-1~deb12u1
Architecture: amd64

Package: libexpat1
Source: expat
Version: 2.5.0-1+deb12u2
Architecture: amd64

Package: libexpat1
Source: expat
Version: 2.5.0-1+deb12u1
Architecture: amd64

Package: libexpat1
Version: 2.5.0-1+deb12u9
Architecture: arm64
`

func TestInstalledPackagesAndDigest(t *testing.T) {
	installed, err := installedPackages(strings.NewReader(dpkgStatus))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range installed {
		names = append(names, p.Package)
	}
	if got := strings.Join(names, " "); got != "libexpat1 libssl3 zlib1g" {
		t.Errorf("installed = %s, want the three installed ones, sorted", got)
	}
	d := packagesDigest(installed)
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Errorf("digest %q", d)
	}
	changed := strings.Replace(dpkgStatus, "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1", 1)
	other, _ := installedPackages(strings.NewReader(changed))
	if packagesDigest(other) == d {
		t.Error("a changed version kept the digest")
	}
}

func TestSecurityStatus(t *testing.T) {
	installed, _ := installedPackages(strings.NewReader(dpkgStatus))
	current, behind, err := securityStatus(installed, strings.NewReader(securityIndex))
	if err != nil {
		t.Fatal(err)
	}
	// libssl3 is behind; libexpat1 is at its amd64 security version (the arm64 one and the
	// older amd64 entry do not count); zlib1g has no security update.
	if len(behind) != 1 || behind[0] != "libssl3 3.0.20-1~deb12u1 (security: 3.0.22-1~deb12u1)" {
		t.Errorf("behind = %q", behind)
	}
	if len(current) != 1 || current[0] != "libexpat1" {
		t.Errorf("current = %q", current)
	}
}

func TestReleaseDate(t *testing.T) {
	release := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nCodename: bookworm-security\nDate: Sun, 06 Dec 2026 02:54:29 UTC\nValid-Until: Sun, 13 Dec 2026 02:54:29 UTC\n"
	got, err := releaseDate([]byte(release))
	if err != nil || !got.Equal(time.Date(2026, 12, 6, 2, 54, 29, 0, time.UTC)) {
		t.Errorf("releaseDate = %v, %v", got, err)
	}
	if _, err := releaseDate([]byte("Origin: Debian\n")); err == nil {
		t.Error("no Date accepted")
	}
}

func gzipped(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestNewestSecurityUpdate(t *testing.T) {
	installed := []dpkgPackage{{Package: "libexpat1", Version: "2.5.0-1+deb12u2"}, {Package: "libssl3", Version: "3.0.22-1~deb12u1"}, {Package: "nodocs", Version: "1"}}
	changelogs := map[string]string{
		"libexpat1": "expat (2.5.0-1+deb12u2) bookworm-security; urgency=medium\n\n  * CVE fix\n\n -- Maintainer <m@example.org>  Tue, 03 Nov 2026 10:00:00 +0000\n",
		"libssl3":   "openssl (3.0.22-1~deb12u1) bookworm-security; urgency=medium\n\n  * CVE fix\n\n -- Maintainer <m@example.org>  Fri, 27 Nov 2026 18:30:00 +0100\n",
	}
	got := newestSecurityUpdate(installed, []string{"libexpat1", "nodocs", "libssl3"}, func(pkg string) ([]byte, error) {
		c, ok := changelogs[pkg]
		if !ok {
			return nil, errors.New("no such file")
		}
		return gzipped(t, c), nil
	})
	if got == nil || got.Package != "libssl3" || got.Version != "3.0.22-1~deb12u1" || !got.Published.Equal(time.Date(2026, 11, 27, 17, 30, 0, 0, time.UTC)) {
		t.Errorf("newest = %+v", got)
	}
}
