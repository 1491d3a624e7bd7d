package aws

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/aws/ec2fake"
)

func TestLatestDebian(t *testing.T) {
	d, fake := newTestDriver(t)
	for _, img := range []ec2fake.Image{
		{ID: "ami-old", Name: "debian-12-amd64-20250101-1980", Owner: DebianOwner, Public: true, Created: "2025-01-01T10:00:00.000Z", Architecture: "x86_64"},
		{ID: "ami-new", Name: "debian-12-amd64-20260110-2350", Owner: DebianOwner, Public: true, Created: "2026-01-10T10:00:00.000Z", Architecture: "x86_64"},
		{ID: "ami-arm", Name: "debian-12-arm64-20260201-2400", Owner: DebianOwner, Public: true, Created: "2026-02-01T10:00:00.000Z", Architecture: "arm64"},
		{ID: "ami-13", Name: "debian-13-amd64-20260201-2400", Owner: DebianOwner, Public: true, Created: "2026-02-01T10:00:00.000Z", Architecture: "x86_64"},
		{ID: "ami-fake", Name: "debian-12-amd64-20270101-9999", Owner: "999999999999", Public: true, Created: "2027-01-01T10:00:00.000Z", Architecture: "x86_64"},
		{ID: "ami-pending", Name: "debian-12-amd64-20260301-2500", Owner: DebianOwner, Public: true, Created: "2026-03-01T10:00:00.000Z", Architecture: "x86_64", State: "pending"},
	} {
		fake.AddImage(img)
	}
	got, err := d.LatestDebian(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.Image{Cloud: "aws", Region: "eu-west-1", ID: "ami-new", Name: "debian-12-amd64-20260110-2350", Created: "2026-01-10T10:00:00.000Z"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestLatestDebianNone(t *testing.T) {
	d, _ := newTestDriver(t)
	if _, err := d.LatestDebian(context.Background()); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestCopyAndShareImage(t *testing.T) {
	d, fake := newTestDriver(t)
	fake.AddForeignImage("us-east-1", ec2fake.Image{ID: "ami-src", Name: "ztna-router-1.2.0", RootDevice: "/dev/xvda", Architecture: "x86_64", State: "available"})
	ctx := context.Background()
	img, err := d.CopyImage(ctx, "us-east-1", "ami-src", "ztna-router-1.2.0-prod", map[string]string{"environment": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Region != "eu-west-1" || img.Name != "ztna-router-1.2.0-prod" || img.ID == "" {
		t.Fatalf("copy = %+v", img)
	}
	if err := d.ShareImage(ctx, img.ID, []string{"210987654321"}); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(fake.Images(), func(x ec2fake.Image) bool { return x.ID == img.ID })
	got := fake.Images()[i]
	if got.SourceRegion != "us-east-1" || got.SourceImageID != "ami-src" || got.State != "available" ||
		got.Tags["environment"] != "prod" || !slices.Equal(got.LaunchUsers, []string{"210987654321"}) {
		t.Fatalf("image in fake = %+v", got)
	}

	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"unknown source", func() error { _, err := d.CopyImage(ctx, "us-east-1", "ami-nope", "copy-x", nil); return err }, "check the image"},
		{"bad name", func() error { _, err := d.CopyImage(ctx, "us-east-1", "ami-src", "x", nil); return err }, "image name"},
		{"bad account", func() error { return d.ShareImage(ctx, img.ID, []string{"12"}) }, "12-digit"},
		{"no account", func() error { return d.ShareImage(ctx, img.ID, nil) }, "no account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	fake.Fail("ModifyImageAttribute", 403, "UnauthorizedOperation", "You are not authorized")
	if err := d.ShareImage(ctx, img.ID, []string{"210987654321"}); err == nil || !strings.Contains(err.Error(), "ec2:ModifyImageAttribute") {
		t.Fatalf("permission denied: %v", err)
	}
}
