package gcp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/ztna/ztna/cloud"
	"google.golang.org/protobuf/proto"
)

func TestLatestDebian(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	if _, err := d.LatestDebian(ctx); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("empty family: %v", err)
	}
	for _, img := range []*computepb.Image{
		{Name: proto.String("debian-12-bookworm-v20250101"), Family: proto.String("debian-12"), CreationTimestamp: proto.String("2025-01-01T00:00:00.000-08:00")},
		{Name: proto.String("debian-12-bookworm-v20260110"), Family: proto.String("debian-12"), CreationTimestamp: proto.String("2026-01-10T00:00:00.000-08:00")},
		{Name: proto.String("debian-12-bookworm-v20260201"), Family: proto.String("debian-12"), CreationTimestamp: proto.String("2026-02-01T00:00:00.000-08:00"),
			Deprecated: &computepb.DeprecationStatus{State: proto.String("DEPRECATED")}},
		{Name: proto.String("debian-13-trixie-v20260301"), Family: proto.String("debian-13"), CreationTimestamp: proto.String("2026-03-01T00:00:00.000-08:00")},
	} {
		fake.AddImage("debian-cloud", img)
	}
	got, err := d.LatestDebian(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.Image{Cloud: "gcp", Region: "debian-cloud", ID: "projects/debian-cloud/global/images/debian-12-bookworm-v20260110",
		Name: "debian-12-bookworm-v20260110", Created: "2026-01-10T00:00:00.000-08:00"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestCreateImageFromImage(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	fake.AddImage("build", &computepb.Image{Name: proto.String("ztna-router-1-3-0"), DiskSizeGb: proto.Int64(10)})
	img, err := d.CreateImageFromImage(ctx, "ztna-router-1-3-0", "projects/build/global/images/ztna-router-1-3-0", "ztna-router", map[string]string{"environment": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != "projects/prod/global/images/ztna-router-1-3-0" || img.Region != "prod" {
		t.Fatalf("image = %+v", img)
	}
	var created *computepb.Image
	for _, i := range fake.Images("prod") {
		if i.GetName() == "ztna-router-1-3-0" {
			created = i
		}
	}
	if created == nil || created.GetSourceImage() != "projects/build/global/images/ztna-router-1-3-0" ||
		created.GetFamily() != "ztna-router" || created.GetLabels()["environment"] != "prod" {
		t.Fatalf("created = %v", created)
	}

	tests := []struct {
		name, image, source, want string
	}{
		{"duplicate", "ztna-router-1-3-0", "projects/build/global/images/ztna-router-1-3-0", "alreadyExists"},
		{"unknown source", "ztna-router-9", "projects/build/global/images/nope", "check the image"},
		{"bad name", "Router_1", "projects/build/global/images/ztna-router-1-3-0", "image name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.CreateImageFromImage(ctx, tt.image, tt.source, "", nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	fake.FailHTTP("images.insert", 403, "forbidden", "Required 'compute.images.create' permission for 'projects/prod/global/images/x'")
	if _, err := d.CreateImageFromImage(ctx, "x", "projects/build/global/images/ztna-router-1-3-0", "", nil); err == nil || !strings.Contains(err.Error(), "compute.images.create") {
		t.Fatalf("permission denied: %v", err)
	}
}
