package ztnaprovider

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAccExamplesValidate runs `terraform validate` on every example under examples/ (the
// ones the docs are generated from), with the built provider installed through dev_overrides.
func TestAccExamplesValidate(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..", "examples")
	var dirs []string
	for _, pattern := range []string{"provider/*.tf", "*/ztna_*/*.tf"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if d := filepath.Dir(m); !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	// provider + 5 resources + 5 data sources + 1 ephemeral resource
	if len(dirs) < 12 {
		t.Fatalf("found only %d example directories under %s: %v", len(dirs), root, dirs)
	}
	for _, dir := range dirs {
		t.Run(strings.TrimPrefix(dir, root+"/"), func(t *testing.T) {
			t.Parallel()
			cli := newTerraformCLI(t, "")
			files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), "required_providers") {
					// The example declares the provider source itself.
					cli.write("main.tf", "")
				}
				cli.write("example_"+filepath.Base(f), string(b))
			}
			cli.run(false, "validate")
		})
	}
}
