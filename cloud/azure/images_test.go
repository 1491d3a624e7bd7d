package azure

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ztna/ztna/cloud"
)

func TestLatestDebian(t *testing.T) {
	fake := newFake()
	d := newTestDriver(t, fake, nil)
	ctx := context.Background()
	if _, err := d.LatestDebian(ctx); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("no images: %v", err)
	}
	// 0.20260110.999 sorts after 0.20251231.2000 numerically, and 0.9.0 is older than both.
	fake.AddMarketplaceImage("westeurope", "Debian", "debian-12", "12-gen2", "0.20251231.2000", "0.20260110.999", "0.9.0")
	fake.AddMarketplaceImage("eastus", "Debian", "debian-12", "12-gen2", "0.20270101.1")
	got, err := d.LatestDebian(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.Image{Cloud: "azure", Region: "westeurope", ID: "Debian:debian-12:12-gen2:0.20260110.999", Name: "0.20260110.999"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	fake.Fail("VirtualMachineImages.List", 403, "AuthorizationFailed", false)
	if _, err := d.LatestDebian(ctx); err == nil || !strings.Contains(err.Error(), "AuthorizationFailed") {
		t.Fatalf("permission denied: %v", err)
	}
}

// Looking up the base image needs no resource group (the Packer data source has none).
func TestLatestDebianWithoutResourceGroup(t *testing.T) {
	fake := newFake()
	fake.AddMarketplaceImage("westeurope", "Debian", "debian-12", "12-gen2", "0.20260110.999")
	d := newTestDriver(t, fake, func(o *Options) { o.ResourceGroup = "" })
	if img, err := d.LatestDebian(context.Background()); err != nil || img.Name != "0.20260110.999" {
		t.Fatalf("LatestDebian = %+v, %v", img, err)
	}
	if _, err := d.Create(context.Background(), testSpec(t, "med")); err == nil || !strings.Contains(err.Error(), "resource_group is empty") {
		t.Fatalf("Create without resource group: %v", err)
	}
}

func TestCreateGalleryImageVersion(t *testing.T) {
	fake := newFake()
	fake.AddGalleryImage("routers", "prod", "router")
	d := newTestDriver(t, fake, nil)
	ctx := context.Background()
	img, err := d.CreateGalleryImageVersion(ctx, GalleryImage{Gallery: "prod", Image: "router"}, "1.2.0", image, []string{"westeurope", "northeurope"}, map[string]string{"environment": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(img.ID, "/galleries/prod/images/router/versions/1.2.0") {
		t.Fatalf("image = %+v", img)
	}
	v := fake.Versions()["routers/prod/router/1.2.0"]
	p := v.Properties
	if *p.StorageProfile.Source.ID != image || len(p.PublishingProfile.TargetRegions) != 2 || *v.Tags["environment"] != "prod" {
		t.Fatalf("version = %+v", p)
	}
	// A promoted version boots router hosts.
	spec := testSpec(t, "med")
	spec.Image = img.ID
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		g          GalleryImage
		ver, src   string
		wantSubstr string
	}{
		{"bad version", GalleryImage{"prod", "router"}, "v1", image, "MAJOR.MINOR.PATCH"},
		{"no gallery", GalleryImage{"", "router"}, "1.0.0", image, "gallery and image definition"},
		{"unknown definition", GalleryImage{"prod", "nope"}, "1.0.0", image, "GalleryImageNotFound"},
		{"unknown source", GalleryImage{"prod", "router"}, "1.0.1", image + "x", "check the image"},
		{"source not an id", GalleryImage{"prod", "router"}, "1.0.1", "router:1.2.0", "not a resource id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.CreateGalleryImageVersion(ctx, tt.g, tt.ver, tt.src, nil, nil); err == nil || !strings.Contains(err.Error(), tt.wantSubstr) {
				t.Fatalf("err = %v, want %q", err, tt.wantSubstr)
			}
		})
	}
}
