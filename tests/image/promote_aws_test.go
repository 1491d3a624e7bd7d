package image

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ztna/ztna/cloud/aws/ec2fake"
	"github.com/ztna/ztna/internal/imagecatalog"
)

// TestAWSPromotionIntoAnotherAccount promotes dev's AMI into the prod account with the real
// Packer and examples/packer/promote.pkr.hcl, prod's credentials as a profile: the fake EC2
// checks every request's signature and account, and refuses prod's copy unless dev shared the
// AMI's snapshots as well as the AMI.
func TestAWSPromotionIntoAnotherAccount(t *testing.T) {
	const dev, prod = "111111111111", "222222222222"
	fake := ec2fake.New("eu-west-1")
	defer fake.Close()
	fake.AddAccount(dev, "AKIADEV", "dev-secret")
	fake.AddAccount(prod, "AKIAPROD", "prod-secret")
	fake.AddImage(ec2fake.Image{ID: "ami-0dev", Name: "ztna-router-1.2.3", Owner: dev, RootDevice: "/dev/xvda", Architecture: "x86_64"})

	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	write(t, creds, "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-secret\n\n[prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = prod-secret\n")
	catalog := filepath.Join(dir, "images.json")
	cat := &imagecatalog.Catalog{}
	if _, err := cat.Upsert(imagecatalog.Image{Cloud: "aws", Region: "eu-west-1", Environment: "dev", ImageID: "ami-0dev", Account: dev,
		RouterVersion: "1.2.3", BaseImage: "debian-12-amd64-20260110-2350", BuildTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(catalog); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := []string{"AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_CONFIG_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE="}
	out, err := packer(ctx, env, "build", "-var", "catalog_path="+catalog, "-var", "cloud=aws", "-var", "region=eu-west-1",
		"-var", "from=dev", "-var", "to=prod", "-var", "aws_source_profile=dev", "-var", "aws_profile=prod",
		"-var", "aws_endpoint="+fake.URL, "-var", "aws_sts_endpoint="+fake.URL, "examples/packer/promote.pkr.hcl")
	if err != nil {
		t.Fatalf("packer build promote.pkr.hcl: %v\n%s", err, out)
	}
	got, err := imagecatalog.Load(catalog)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := got.Lookup("aws", "eu-west-1", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if entry.Account != prod || entry.SourceImageID != "ami-0dev" || entry.ImageID == "ami-0dev" {
		t.Errorf("prod entry %+v: want prod's own copy of ami-0dev", entry)
	}
	images := fake.Images()
	i := slices.IndexFunc(images, func(img ec2fake.Image) bool { return img.ID == entry.ImageID })
	if i < 0 || images[i].Owner != prod {
		t.Fatalf("the recorded %s is not prod's in the fake: %+v", entry.ImageID, images)
	}
	for _, sn := range fake.Snapshots() {
		if slices.Contains(images[i].Snapshots, sn.ID) && (sn.Owner != prod || sn.Tags["ztna-environment"] != "prod") {
			t.Errorf("the copy's snapshot %+v: want prod's, tagged", sn)
		}
	}
}
