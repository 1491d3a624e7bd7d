// Package version holds the build version of every ztna binary: a semantic version.
//
// The committed source of truth is the file VERSION beside this one: the latest release
// (MAJOR.MINOR.PATCH). `make build` links in what scripts/version.sh derives from it: the release
// itself on a release commit (subject "Release X.Y.Z", clean tree), otherwise the next patch as a
// development build, X.Y.(Z+1)-dev+<commit>[.dirty], which sorts after the release and before the
// next one. A binary built without make (go build, go test) derives the same from the embedded
// file and the VCS stamp Go puts into the build, without knowing whether it is a release.
package version

import (
	_ "embed"
	"fmt"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
)

// Version is the binary's version. make build sets it with
// -ldflags "-X github.com/ztna/ztna/internal/version.Version=$(scripts/version.sh)".
var Version = ""

//go:embed VERSION
var release string

// Release is the latest release, as VERSION says.
func Release() string { return strings.TrimSpace(release) }

func init() {
	if Version == "" {
		Version = development(Release(), vcsStamp())
	}
}

var releaseFormat = regexp.MustCompile(`^([0-9]+)\.([0-9]+)\.([0-9]+)$`)

// development is the version of a build after release: the next patch, pre-release "dev", and
// the commit (with ".dirty" for uncommitted changes) as build metadata when known.
func development(release, commit string) string {
	m := releaseFormat.FindStringSubmatch(release)
	if m == nil {
		panic(fmt.Sprintf("internal/version/VERSION holds %q: want MAJOR.MINOR.PATCH", release))
	}
	patch, _ := strconv.Atoi(m[3])
	v := fmt.Sprintf("%s.%s.%d-dev", m[1], m[2], patch+1)
	if commit != "" {
		v += "+" + commit
	}
	return v
}

// vcsStamp is the build's commit (12 hex digits) and ".dirty" when the tree had changes, from
// the VCS information go build records; "" when it recorded none (go test, -buildvcs=false).
func vcsStamp() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ".dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev[:min(12, len(rev))] + dirty
}
