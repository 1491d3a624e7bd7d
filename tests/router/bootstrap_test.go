package router_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/metadata/metadatatest"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestBootstrap: first-boot enrolment reads the key from each platform's metadata service (fakes
// speaking the real wire formats) or a file, records the failure domain, and enrols against the
// real controller; a second run leaves the enrolled router alone; no key means a clear failure
// and no state.
func TestBootstrap(t *testing.T) {
	c := harness.StartController(t)
	tests := []struct {
		source string
		serve  func(t *testing.T, key string) []string // extra flags pointing at where the key is
		wantFD string
	}{
		{"aws", func(t *testing.T, key string) []string {
			return []string{"--metadata-url", metadatatest.AWS(t, key+"\n").URL}
		}, "aws/eu-west-1/eu-west-1b"},
		{"gcp", func(t *testing.T, key string) []string {
			return []string{"--metadata-url", metadatatest.GCP(t, map[string]string{"ztna-registration-key": key}).URL}
		}, "gcp/europe-west1/europe-west1-b"},
		{"azure", func(t *testing.T, key string) []string {
			return []string{"--metadata-url", metadatatest.Azure(t, key+"\n").URL}
		}, "azure/westeurope/2"},
		{"file", func(t *testing.T, key string) []string {
			return []string{"--key-file", harness.WriteKey(t, key), "--failure-domain", "onprem/rack-7"}
		}, "onprem/rack-7"},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			_, key := c.NewRouter(t, "boot-"+tt.source, "edge")
			state := filepath.Join(t.TempDir(), "state")
			args := append([]string{"bootstrap", "--from-metadata", tt.source, "--state-dir", state, "--timeout", "30s"}, tt.serve(t, key)...)
			out, code := harness.Run(t, "ztna-router", args...)
			if code != 0 {
				t.Fatalf("bootstrap exited %d:\n%s", code, out)
			}
			if strings.Contains(out, key) {
				t.Fatal("bootstrap printed the registration key")
			}
			s, err := daemon.LoadSettings(state)
			if err != nil || s.FailureDomain != tt.wantFD {
				t.Fatalf("router.json: %+v %v, want failure domain %q", s, err, tt.wantFD)
			}
			if _, err := os.Stat(filepath.Join(state, "config.json")); err != nil {
				t.Fatal(err)
			}
			// Every later boot: nothing to do (and the used key is not touched again).
			out, code = harness.Run(t, "ztna-router", args...)
			if code != 0 || !strings.Contains(out, "already enrolled") {
				t.Fatalf("second bootstrap exited %d:\n%s", code, out)
			}
		})
	}

	t.Run("no key in user data", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state")
		out, code := harness.Run(t, "ztna-router", "bootstrap", "--from-metadata", "aws", "--state-dir", state,
			"--metadata-url", metadatatest.AWS(t, "#!/bin/sh\necho hello\n").URL)
		if code == 0 || !strings.Contains(out, "must contain a ztna-key-v1.") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if _, err := os.Stat(filepath.Join(state, "config.json")); err == nil {
			t.Fatal("failed bootstrap wrote config.json")
		}
	})
}
