package router_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ztna/ztna/tests/dataplane/harness"
)

// semver is semver.org's regular expression for a version.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// The router binary reports a semantic version; the one make build links in is what
// scripts/version.sh says of the tree (a stale $ZTNA_BIN_DIR fails here).
func TestBinaryReportsSemanticVersion(t *testing.T) {
	out, code := harness.Run(t, "ztna-router", "version")
	got := strings.TrimSpace(out)
	if code != 0 || !semver.MatchString(got) {
		t.Fatalf("ztna-router version: exit %d, %q is not a semantic version", code, got)
	}
	if os.Getenv("ZTNA_BIN_DIR") == "" {
		return // built here without make: the embedded release's development version
	}
	want, err := exec.Command("../../scripts/version.sh").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Fatalf("ztna-router version %q, scripts/version.sh says %q: rebuild with make build", got, strings.TrimSpace(string(want)))
	}
}
