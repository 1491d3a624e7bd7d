package main

import (
	"testing"

	"github.com/ztna/ztna/internal/version"
)

// Packer gets the binary's own semantic version, pre-release and build metadata included.
func TestPluginVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0.3.0", "0.3.0"},
		{"v0.3.0", "0.3.0"},
		{"0.3.1-dev+319a2abf477f.dirty", "0.3.1-dev+319a2abf477f.dirty"},
		{"319a2ab", "0.0.0-dev"},
		{version.Version, version.Version},
	} {
		if got := pluginVersion(tc.in).String(); got != tc.want {
			t.Errorf("pluginVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
