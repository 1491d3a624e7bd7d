package version

import (
	"os"
	"regexp"
	"testing"
)

// semver is semver.org's regular expression for a version.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func TestDevelopment(t *testing.T) {
	for _, tc := range []struct{ release, commit, want string }{
		{"0.3.0", "", "0.3.1-dev"},
		{"0.3.0", "319a2abf477f", "0.3.1-dev+319a2abf477f"},
		{"1.9.9", "319a2abf477f.dirty", "1.9.10-dev+319a2abf477f.dirty"},
	} {
		got := development(tc.release, tc.commit)
		if got != tc.want || !semver.MatchString(got) {
			t.Errorf("development(%q, %q) = %q, want %q (a semantic version)", tc.release, tc.commit, got, tc.want)
		}
	}
}

func TestVersionIsSemantic(t *testing.T) {
	if !semver.MatchString(Version) {
		t.Fatalf("Version %q is not a semantic version", Version)
	}
	if !releaseFormat.MatchString(Release()) {
		t.Fatalf("VERSION holds %q: want MAJOR.MINOR.PATCH", Release())
	}
}

// The VERSION file and the changelog name the same latest release.
func TestReleaseIsTheChangelogsLatest(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("CHANGELOG.md names no release (## [X.Y.Z] - date)")
	}
	if string(m[1]) != Release() {
		t.Fatalf("CHANGELOG.md's latest release is %s, internal/version/VERSION says %s: a release changes both", m[1], Release())
	}
}
