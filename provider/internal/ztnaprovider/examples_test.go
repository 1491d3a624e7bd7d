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
	for _, pattern := range []string{"provider/*.tf", "*/ztna_*/*.tf", "guides/*/*.tf"} {
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
	// provider + 6 resources + 5 data sources + 2 ephemeral resources + 1 guide
	if len(dirs) < 15 {
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

// TestAccGuideExposeService applies the guide's configuration against the dev controller: it
// must work as written, leave an empty plan, and destroy cleanly.
func TestAccGuideExposeService(t *testing.T) {
	t.Parallel()
	needController(t)
	guide, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "guides", "expose_service", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	cli := newTerraformCLI(t, "")
	cli.write("main.tf", "") // the guide declares the provider source itself
	cli.write("guide.tf", string(guide))
	out := strings.Join(strings.Fields(cli.run(false, "apply", "-auto-approve")), " ")
	for _, want := range []string{"Resources: 7 added", `"tcp prod-db.customerdomain.me:5432"`, `"aws" = "c6i.large"`} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if out := cli.run(false, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes") {
		t.Errorf("plan after apply is not empty:\n%s", out)
	}
	cli.run(false, "destroy", "-auto-approve")
}
