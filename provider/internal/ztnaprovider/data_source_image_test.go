package ztnaprovider

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/imagecatalog"
)

// The catalog is written with imagecatalog.Update, the writer the Packer post-processor uses,
// and read back through the data source.
func TestAccImageDataSource(t *testing.T) {
	catalog := filepath.Join(t.TempDir(), "catalog.json")
	built := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	err := imagecatalog.Update(context.Background(), catalog, func(c *imagecatalog.Catalog) error {
		for _, img := range []imagecatalog.Image{
			{Cloud: "aws", Region: "eu-west-1", Environment: "prod", ImageID: "ami-0123456789abcdef0", Account: "123456789012",
				RouterVersion: "1.2.3", BuildTime: built, BaseImage: "debian-12-amd64", PromotedFrom: "dev", SourceImageID: "ami-0fedcba9876543210"},
			{Cloud: "aws", Region: "eu-west-1", Environment: "dev", ImageID: "ami-0fedcba9876543210", RouterVersion: "1.2.3", BuildTime: built, BaseImage: "debian-12-amd64"},
			{Cloud: "gcp", Environment: "prod", ImageID: "projects/p/global/images/ztna-router-1-2-3", RouterVersion: "1.2.3", BuildTime: built, BaseImage: "debian-12"},
		} {
			if _, err := c.Upsert(img); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	config := func(cloud, region, env string) string {
		return fmt.Sprintf(`data "ztna_image" "t" {
  catalog     = %q
  cloud       = %q
  region      = %q
  environment = %q
}`, catalog, cloud, region, env)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config("aws", "us-east-1", "prod"),
				ExpectError: expectError("No matching image", `no aws image for environment "prod" in region "us-east-1"`),
			},
			{
				Config:      config("openstack", "x", "prod"),
				ExpectError: expectError("Invalid Attribute Value Match", "cloud", `"aws"`),
			},
			{
				Config: config("aws", "eu-west-1", "prod"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.ztna_image.t", tfjsonpath.New("image_id"), knownvalue.StringExact("ami-0123456789abcdef0")),
					statecheck.ExpectKnownValue("data.ztna_image.t", tfjsonpath.New("account"), knownvalue.StringExact("123456789012")),
					statecheck.ExpectKnownValue("data.ztna_image.t", tfjsonpath.New("promoted_from"), knownvalue.StringExact("dev")),
					statecheck.ExpectKnownValue("data.ztna_image.t", tfjsonpath.New("build_time"), knownvalue.StringExact("2026-11-01T12:00:00Z")),
					statecheck.ExpectKnownValue("data.ztna_image.t", tfjsonpath.New("hardening_profile"), knownvalue.Null()),
				},
			},
			{
				// A global GCP image matches any region.
				Config: config("gcp", "europe-west1", "prod"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.ztna_image.t", tfjsonpath.New("image_id"), knownvalue.StringExact("projects/p/global/images/ztna-router-1-2-3")),
				},
			},
		},
	})
}

func TestAccImageDataSource_missingCatalog(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`data "ztna_image" "t" {
  catalog     = %q
  cloud       = "aws"
  region      = "eu-west-1"
  environment = "prod"
}`, filepath.Join(t.TempDir(), "nope.json")),
			ExpectError: expectError("Cannot read the image catalog", "does not exist"),
		}},
	})
}
