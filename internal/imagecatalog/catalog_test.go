package imagecatalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testImage(cloud, region, env, id string) Image {
	return Image{
		Cloud: cloud, Region: region, Environment: env, ImageID: id,
		RouterVersion: "1.2.3", HardeningProfile: "ztna-cis-1",
		BuildTime: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		BaseImage: "debian-12-amd64-20250210-2019",
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "catalog.json")
	c := &Catalog{}
	for _, img := range []Image{
		testImage("gcp", "", "prod", "projects/p/global/images/ztna-router-1"),
		testImage("aws", "eu-west-1", "dev", "ami-0123456789abcdef0"),
		testImage("azure", "westeurope", "dev", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/ztna-router/versions/1.2.3"),
	} {
		if _, err := c.Upsert(img); err != nil {
			t.Fatal(err)
		}
	}
	promoted := testImage("aws", "eu-west-1", "prod", "ami-0fedcba9876543210")
	promoted.PromotedFrom, promoted.SourceImageID, promoted.Account = "dev", "ami-0123456789abcdef0", "123456789012"
	if _, err := c.Upsert(promoted); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != FormatVersion || len(got.Images) != 4 {
		t.Fatalf("loaded %+v", got)
	}
	img, err := got.Lookup("aws", "eu-west-1", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if img != promoted {
		t.Errorf("lookup = %+v, want %+v", img, promoted)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after save, want only the catalog (no temp files)", len(entries))
	}
}

func TestUpsertReplacesSameKey(t *testing.T) {
	c := &Catalog{}
	first := testImage("aws", "us-east-1", "dev", "ami-01")
	if old, err := c.Upsert(first); err != nil || old != nil {
		t.Fatalf("first upsert: old=%v err=%v", old, err)
	}
	second := testImage("aws", "us-east-1", "dev", "ami-02")
	old, err := c.Upsert(second)
	if err != nil {
		t.Fatal(err)
	}
	if old == nil || old.ImageID != "ami-01" {
		t.Errorf("replaced = %v, want ami-01", old)
	}
	if len(c.Images) != 1 || c.Images[0].ImageID != "ami-02" {
		t.Errorf("images = %+v", c.Images)
	}
}

func TestLookup(t *testing.T) {
	c := &Catalog{}
	for _, img := range []Image{
		testImage("gcp", "", "prod", "global-img"),
		testImage("gcp", "europe-west1", "prod", "regional-img"),
		testImage("aws", "us-east-1", "dev", "ami-dev"),
	} {
		if _, err := c.Upsert(img); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		cloud, region, env string
		want               string
		wantErr            string
	}{
		{"gcp", "europe-west1", "prod", "regional-img", ""},
		{"gcp", "us-central1", "prod", "global-img", ""},
		{"aws", "us-east-1", "dev", "ami-dev", ""},
		{"aws", "us-east-1", "prod", "", `no aws image for environment "prod" in region "us-east-1"; the catalog has: aws/us-east-1/dev (ami-dev)`},
		{"azure", "westeurope", "dev", "", "no azure images at all"},
	}
	for _, tt := range tests {
		t.Run(tt.cloud+"/"+tt.region+"/"+tt.env, func(t *testing.T) {
			img, err := c.Lookup(tt.cloud, tt.region, tt.env)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNotFound containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.ImageID != tt.want {
				t.Errorf("image = %s, want %s", img.ImageID, tt.want)
			}
		})
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Image)
		want   []string
	}{
		{"unknown cloud", func(i *Image) { i.Cloud = "ibm" }, []string{`cloud "ibm": must be one of aws, gcp, azure, local`}},
		{"aws without region", func(i *Image) { i.Region = "" }, []string{"region: required for aws images"}},
		{"bad environment", func(i *Image) { i.Environment = "Prod Env" }, []string{`environment "Prod Env"`}},
		{"not an AMI", func(i *Image) { i.ImageID = "img-1" }, []string{`an AWS image id starts with "ami-"`}},
		{"missing fields", func(i *Image) { i.RouterVersion, i.BaseImage, i.BuildTime = "", "", time.Time{} },
			[]string{"router_version: required", "base_image: required", "build_time: required"}},
		{"promoted to itself", func(i *Image) { i.PromotedFrom = "dev" }, []string{"cannot be promoted to the environment it comes from"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage("aws", "us-east-1", "dev", "ami-1")
			tt.modify(&img)
			err := img.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if err := testImage("local", "", "dev", "/var/lib/images/router.qcow2").Validate(); err != nil {
		t.Errorf("valid local image rejected: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := `{"cloud":"aws","region":"us-east-1","environment":"dev","image_id":"ami-1","router_version":"1","build_time":"2025-01-01T00:00:00Z","base_image":"debian-12"}`
	tests := []struct {
		name, json, want string
	}{
		{"syntax error with line", "{\n\"version\": 1,\n\"images\": [,]}", "invalid JSON at line 3"},
		{"wrong type", `{"version": "one"}`, "invalid JSON at line 1"},
		{"unknown field", `{"version": 1, "imagez": []}`, `unknown field "imagez"`},
		{"no version", `{"images": []}`, `"version" missing`},
		{"newer version", `{"version": 3, "images": []}`, "format version 3 is newer than this build understands (2)"},
		{"invalid entry", `{"version": 1, "images": [{"cloud":"aws"}]}`, "images[0]: "},
		{"duplicate", `{"version": 1, "images": [` + valid + `,` + valid + `]}`, "images[1]: a second entry for aws/us-east-1/dev"},
		{"trailing", `{"version": 1, "images": []} {}`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFileSaysWhatToDo(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "ztna-catalog post-processor") {
		t.Fatalf("err = %v", err)
	}
}

func TestUpdateConcurrentWritersKeepEveryEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.json")
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- Update(context.Background(), path, func(c *Catalog) error {
				_, err := c.Upsert(testImage("aws", fmt.Sprintf("region-%d", i), "dev", fmt.Sprintf("ami-%d", i)))
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Images) != writers {
		t.Errorf("catalog has %d images, want %d: a writer's entry was lost", len(c.Images), writers)
	}
}

func TestUpdateFailureLeavesFileUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.json")
	ctx := context.Background()
	if err := Update(ctx, path, func(c *Catalog) error {
		_, err := c.Upsert(testImage("aws", "us-east-1", "dev", "ami-1"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	err := Update(ctx, path, func(c *Catalog) error {
		if _, err := c.Upsert(testImage("aws", "us-east-1", "dev", "ami-2")); err != nil {
			return err
		}
		_, err := c.Upsert(testImage("aws", "", "prod", "ami-3")) // invalid: no region
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "region: required") {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("a failed update changed the catalog")
	}
}

func TestUpdateHonoursContextWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.json")
	unlock, err := lock(context.Background(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = Update(ctx, path, func(*Catalog) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another writer holds it") {
		t.Fatalf("err = %v", err)
	}
}
