package image

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCatalogReadByTerraform reads the catalog entry that the ztna-catalog post-processor wrote
// during the local build with the provider's ztna_image data source, through the real terraform
// binary (dev_overrides, no init), so writer and reader cannot drift apart.
func TestCatalogReadByTerraform(t *testing.T) {
	img := localImage(t)
	provider := bin(t, "terraform-provider-ztna")
	tf, err := exec.LookPath("terraform")
	if err != nil {
		tf = "/usr/local/bin/terraform"
	}
	dir := t.TempDir()
	rc := filepath.Join(dir, "terraformrc")
	write(t, rc, fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"ztna/ztna\" = %q\n  }\n  direct {}\n}\n", filepath.Dir(provider)))
	write(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
terraform {
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

data "ztna_image" "router" {
  catalog     = %q
  cloud       = "local"
  region      = "anywhere"
  environment = "dev"
}

output "image" {
  value = data.ztna_image.router
}
`, img.catalog))
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	for _, args := range [][]string{{"apply", "-auto-approve", "-input=false", "-no-color"}, {"output", "-json", "image"}} {
		cmd := exec.Command(tf, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("terraform %v: %v\n%s", args, err, out)
		}
		if args[0] != "output" {
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if got["image_id"] != img.path || got["router_version"] != RouterVersion || got["promoted_from"] != nil {
			t.Errorf("ztna_image read %v, want image_id %s router_version %s", got, img.path, RouterVersion)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
