package image

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/control"
	"pault.ag/go/debian/version"

	ztnacontrol "github.com/ztna/ztna/internal/control"
)

type debPackage struct {
	Package      string
	Version      string
	Architecture string
	Status       string
}

// checkPatched proves the patch story on the built image: it keeps the suite, -updates and
// -security in its apt sources, runs unattended-upgrades daily, and no installed package is
// behind the security suite's Packages index the build used (fetched again here from the
// image's own security source and compared with the image's dpkg database).
func checkPatched(t *testing.T, root string) {
	sources := readFile(t, root, "etc/apt/sources.list")
	var secURL, secSuite string
	suites := map[string]bool{}
	for _, l := range strings.Split(sources, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[0] != "deb" {
			continue
		}
		suites[f[2]] = true
		if strings.HasSuffix(f[2], "-security") {
			secURL, secSuite = f[1], f[2]
		}
	}
	for _, s := range []string{"bookworm", "bookworm-updates", "bookworm-security"} {
		if !suites[s] {
			t.Errorf("sources.list lacks %s:\n%s", s, sources)
		}
	}
	if secURL == "" {
		t.FailNow()
	}
	auto := readFile(t, root, "etc/apt/apt.conf.d/52ztna-auto-upgrades")
	for _, want := range []string{`APT::Periodic::Unattended-Upgrade "1"`, `Unattended-Upgrade::Automatic-Reboot "true"`} {
		if !strings.Contains(auto, want) {
			t.Errorf("52ztna-auto-upgrades lacks %s:\n%s", want, auto)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/unattended-upgrade")); err != nil {
		t.Errorf("unattended-upgrades not installed: %v", err)
	}

	var a ztnacontrol.Attestation
	if err := json.Unmarshal([]byte(readFile(t, root, "etc/ztna/image.json")), &a); err != nil {
		t.Fatal(err)
	}
	if a.Packages == nil || a.Packages.SecurityIndexDate.IsZero() {
		t.Fatalf("attestation records no package set or security suite: %+v", a.Packages)
	}

	status, err := os.Open(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	var all, installed []debPackage
	if err := control.Unmarshal(&all, status); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if p.Status == "install ok installed" {
			installed = append(installed, p)
		}
	}
	if a.Packages.Count != len(installed) {
		t.Errorf("attestation counts %d packages, the image's dpkg database %d", a.Packages.Count, len(installed))
	}

	release := fetch(t, fmt.Sprintf("%s/dists/%s/InRelease", secURL, secSuite))
	var date time.Time
	for _, l := range strings.Split(string(release), "\n") {
		if v, ok := strings.CutPrefix(l, "Date:"); ok {
			date, _ = time.Parse(time.RFC1123, strings.TrimSpace(v))
		}
	}
	if !date.Equal(a.Packages.SecurityIndexDate) {
		t.Skipf("the security suite was republished (%v) since the build used it (%v): rerun to compare", date, a.Packages.SecurityIndexDate)
	}
	zr, err := xz.NewReader(strings.NewReader(string(fetch(t, fmt.Sprintf("%s/dists/%s/main/binary-amd64/Packages.xz", secURL, secSuite)))))
	if err != nil {
		t.Fatal(err)
	}
	var index []debPackage
	if err := control.Unmarshal(&index, bufio.NewReader(zr)); err != nil {
		t.Fatal(err)
	}
	newest := map[string]version.Version{}
	for _, p := range index {
		v, err := version.Parse(p.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", p.Package, p.Version, err)
		}
		if old, ok := newest[p.Package+":"+p.Architecture]; !ok || version.Compare(v, old) > 0 {
			newest[p.Package+":"+p.Architecture] = v
		}
	}
	atSecurity := 0
	for _, p := range installed {
		sec, ok := newest[p.Package+":"+p.Architecture]
		if !ok {
			continue
		}
		v, err := version.Parse(p.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", p.Package, p.Version, err)
		}
		switch c := version.Compare(v, sec); {
		case c < 0:
			t.Errorf("%s %s is behind %s %s", p.Package, p.Version, secSuite, sec)
		case c == 0:
			atSecurity++
		}
	}
	if atSecurity != a.Packages.SecurityUpdates {
		t.Errorf("%d packages at their security version, the attestation says %d", atSecurity, a.Packages.SecurityUpdates)
	}
	t.Logf("%d packages, %d from %s of %v; newest security update %+v", len(installed), atSecurity, secSuite, date, a.Packages.NewestSecurityUpdate)
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
