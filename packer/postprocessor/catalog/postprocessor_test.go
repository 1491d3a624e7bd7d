package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"google.golang.org/protobuf/proto"

	"github.com/ztna/ztna/cloud/aws/ec2fake"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/cloud/azure/azurefake"
	"github.com/ztna/ztna/cloud/gcp/computefake"
	"github.com/ztna/ztna/internal/imagecatalog"
	"github.com/ztna/ztna/packer/internal/spectest"
)

// artifact is a build result as another plugin's builder hands it over.
type artifact struct {
	builderID, id string
	state         map[string]interface{}
}

func (a artifact) BuilderId() string             { return a.builderID }
func (a artifact) Files() []string               { return nil }
func (a artifact) Id() string                    { return a.id }
func (a artifact) String() string                { return a.id }
func (a artifact) State(name string) interface{} { return a.state[name] }
func (a artifact) Destroy() error                { return nil }
func (a artifact) with(k string, v any) artifact {
	state := map[string]interface{}{k: v}
	for k, v := range a.state {
		state[k] = v
	}
	a.state = state
	return a
}
func newPP(t *testing.T, raw map[string]interface{}) *PostProcessor {
	t.Helper()
	p := &PostProcessor{now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	if err := p.Configure(raw); err != nil {
		t.Fatal(err)
	}
	return p
}

var ui = &packersdk.BasicUi{Writer: os.Stderr, ErrorWriter: os.Stderr}

func TestConfigSpecCoversConfig(t *testing.T) {
	var p PostProcessor
	spectest.AssertCoversConfig(t, p.ConfigSpec(), &p.config)
	v := spectest.Decode(t, p.ConfigSpec(), `
catalog_path   = "images.json"
environment    = "prod"
cloud          = "aws"
region         = "eu-west-1"
promote_from   = "staging"
aws_share_with = ["123456789012"]
aws_profile    = "prod"
`)
	if err := p.Configure(v); err != nil {
		t.Fatal(err)
	}
	if p.config.PromoteFrom != "staging" || p.config.AWSShareWith[0] != "123456789012" || p.config.AWSProfile != "prod" {
		t.Errorf("decoded %+v", p.config)
	}
}

func TestConfigureRejects(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{"empty", map[string]interface{}{}, []string{"catalog_path: required", `environment ""`, "router_version: required"}},
		{"bad cloud", map[string]interface{}{"catalog_path": "c.json", "environment": "dev", "router_version": "1", "cloud": "ibm"}, []string{`cloud "ibm"`}},
		{"promote to itself", map[string]interface{}{"catalog_path": "c.json", "environment": "dev", "promote_from": "dev", "cloud": "local"}, []string{"must differ from environment"}},
		{"promote without cloud", map[string]interface{}{"catalog_path": "c.json", "environment": "prod", "promote_from": "dev"}, []string{"cloud: required with promote_from"}},
		{"aws promote without region", map[string]interface{}{"catalog_path": "c.json", "environment": "prod", "promote_from": "dev", "cloud": "aws"}, []string{"region: required for aws promotion"}},
		{"gcp promote without project", map[string]interface{}{"catalog_path": "c.json", "environment": "prod", "promote_from": "dev", "cloud": "gcp"}, []string{"gcp_target_project: required"}},
		{"azure promote", map[string]interface{}{"catalog_path": "c.json", "environment": "prod", "promote_from": "dev", "cloud": "azure"},
			[]string{"region: required for azure", "azure_subscription_id: required", "azure_gallery: required", "azure_gallery_image: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p PostProcessor
			err := p.Configure(tt.raw)
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
}

func TestRecordArtifacts(t *testing.T) {
	localImage := filepath.Join(t.TempDir(), "ztna-router.qcow2")
	os.WriteFile(localImage, []byte("disk"), 0o644)
	diskSum := sha256.Sum256([]byte("disk"))
	tests := []struct {
		name     string
		raw      map[string]interface{}
		artifact artifact
		want     []imagecatalog.Image
		wantErr  string
	}{
		{"amazon-ebs in two regions", map[string]interface{}{"base_image": "debian-12-amd64-20260110-2350"},
			artifact{builderID: amazonEBS, id: "eu-west-1:ami-0aaa,us-east-1:ami-0bbb"},
			[]imagecatalog.Image{{Cloud: "aws", Region: "eu-west-1", ImageID: "ami-0aaa"}, {Cloud: "aws", Region: "us-east-1", ImageID: "ami-0bbb"}}, ""},
		{"googlecompute", map[string]interface{}{"base_image": "debian-12-bookworm-v20260110"},
			artifact{builderID: googleCompute, id: "ztna-router-1-2-3"}.with("ProjectId", "build-proj"),
			[]imagecatalog.Image{{Cloud: "gcp", ImageID: "projects/build-proj/global/images/ztna-router-1-2-3", Account: "build-proj"}}, ""},
		{"googlecompute with image_project_id", map[string]interface{}{"base_image": "debian-12-bookworm-v20260110", "account": "images-proj"},
			artifact{builderID: googleCompute, id: "ztna-router-1-2-3"}.with("ProjectId", "build-proj"),
			[]imagecatalog.Image{{Cloud: "gcp", ImageID: "projects/images-proj/global/images/ztna-router-1-2-3", Account: "images-proj"}}, ""},
		{"azure-arm", map[string]interface{}{"base_image": "Debian:debian-12:12-gen2:latest", "region": "westeurope"},
			artifact{builderID: azureARM, id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/ztna-router-1.2.3"},
			[]imagecatalog.Image{{Cloud: "azure", Region: "westeurope", ImageID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/ztna-router-1.2.3"}}, ""},
		{"ztna-local reports its base", map[string]interface{}{},
			artifact{builderID: ztnaLocal, id: localImage}.with("base_image", "debian-bookworm-amd64-20260101-abc"),
			[]imagecatalog.Image{{Cloud: "local", ImageID: localImage, BaseImage: "debian-bookworm-amd64-20260101-abc", Checksum: "sha256:" + hex.EncodeToString(diskSum[:])}}, ""},
		{"unknown builder", map[string]interface{}{"base_image": "x"}, artifact{builderID: "foo.bar", id: "x"}, nil, `cannot tell the cloud of a "foo.bar" artifact: set cloud`},
		{"no base image", map[string]interface{}{}, artifact{builderID: amazonEBS, id: "eu-west-1:ami-1"}, nil, "base_image: not set"},
		{"bad amazon id", map[string]interface{}{"base_image": "x"}, artifact{builderID: amazonEBS, id: "ami-1"}, nil, "not region:ami-id pairs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.json")
			raw := map[string]interface{}{"catalog_path": path, "environment": "dev", "router_version": "v1.2.3", "hardening_profile": "ztna-v2"}
			for k, v := range tt.raw {
				raw[k] = v
			}
			p := newPP(t, raw)
			out, keep, force, err := p.PostProcess(context.Background(), ui, tt.artifact)
			if !keep || force {
				t.Errorf("keep=%v force=%v: the build's artifact must be kept", keep, force)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, statErr := os.Stat(path); statErr == nil {
					t.Error("a failed run wrote the catalog")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cat, err := imagecatalog.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				got, err := cat.Lookup(w.Cloud, w.Region, "dev")
				if err != nil {
					t.Fatal(err)
				}
				if got.Checksum != w.Checksum {
					t.Errorf("checksum %q, want %q", got.Checksum, w.Checksum)
				}
				if got.ImageID != w.ImageID || got.RouterVersion != "1.2.3" || got.HardeningProfile != "ztna-v2" || got.BuildTime.IsZero() {
					t.Errorf("entry %+v, want image %s router 1.2.3", got, w.ImageID)
				}
				if w.Account != "" && got.Account != w.Account || w.BaseImage != "" && got.BaseImage != w.BaseImage {
					t.Errorf("entry %+v, want account %q base %q", got, w.Account, w.BaseImage)
				}
			}
			if !strings.Contains(out.String(), tt.want[0].ImageID) {
				t.Errorf("artifact %q does not name %s", out.String(), tt.want[0].ImageID)
			}
		})
	}
}

// seed writes a catalog holding one image of environment "dev".
func seed(t *testing.T, img imagecatalog.Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.json")
	img.Environment, img.RouterVersion, img.BaseImage = "dev", "1.2.3", "debian-12"
	img.BuildTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &imagecatalog.Catalog{}
	if _, err := c.Upsert(img); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func promoteToProd(t *testing.T, path string, raw map[string]interface{}) imagecatalog.Image {
	t.Helper()
	raw["catalog_path"], raw["environment"], raw["promote_from"] = path, "prod", "dev"
	p := newPP(t, raw)
	if _, _, _, err := p.PostProcess(context.Background(), ui, nil); err != nil {
		t.Fatal(err)
	}
	cat, err := imagecatalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	region, _ := raw["region"].(string)
	if r, ok := raw["aws_target_region"].(string); ok {
		region = r
	}
	img, err := cat.Lookup(raw["cloud"].(string), region, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if img.PromotedFrom != "dev" || img.RouterVersion != "1.2.3" || len(cat.Images) != 2 {
		t.Errorf("promoted entry %+v (catalog has %d images)", img, len(cat.Images))
	}
	return img
}

const (
	devAccount  = "111111111111"
	prodAccount = "222222222222"
	prodRole    = "arn:aws:iam::222222222222:role/ztna-promoter"
)

// awsAccounts is an EC2 fake with a dev and a prod account, a prod role dev may assume and dev's
// image ami-0dev (two snapshots); the shared credentials file has a profile for each account,
// and the environment's default credentials are dev's.
func awsAccounts(t *testing.T) *ec2fake.Server {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "credentials")
	os.WriteFile(creds, []byte("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-secret\n\n[prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = prod-secret\n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIADEV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "dev-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	fake := ec2fake.New("eu-west-1")
	t.Cleanup(fake.Close)
	fake.AddAccount(devAccount, "AKIADEV", "dev-secret")
	fake.AddAccount(prodAccount, "AKIAPROD", "prod-secret")
	fake.AddRole(prodRole, devAccount)
	fake.AddSnapshot(ec2fake.Snapshot{ID: "snap-root", Owner: devAccount, VolumeGiB: 8})
	fake.AddSnapshot(ec2fake.Snapshot{ID: "snap-data", Owner: devAccount, VolumeGiB: 2})
	fake.AddImage(ec2fake.Image{ID: "ami-0dev", Name: "ztna-router-1.2.3", Owner: devAccount, Architecture: "x86_64", RootDevice: "/dev/xvda",
		Snapshots: []string{"snap-root", "snap-data"}})
	return fake
}

// TestPromoteAWSIntoAnotherAccount promotes dev's AMI into the prod account, with prod's
// credentials given as a profile and as a role to assume. The fake refuses prod's CopyImage
// unless dev shared the snapshots too, so the test fails if the snapshot share is left out.
func TestPromoteAWSIntoAnotherAccount(t *testing.T) {
	for name, creds := range map[string]map[string]interface{}{
		"profiles":    {"aws_source_profile": "dev", "aws_profile": "prod"},
		"assume role": {"aws_assume_role_arn": prodRole},
	} {
		t.Run(name, func(t *testing.T) {
			fake := awsAccounts(t)
			const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			path := seed(t, imagecatalog.Image{Cloud: "aws", Region: "eu-west-1", ImageID: "ami-0dev", Account: devAccount, AttestationDigest: digest})
			raw := map[string]interface{}{"cloud": "aws", "region": "eu-west-1", "aws_endpoint": fake.URL, "aws_sts_endpoint": fake.URL}
			for k, v := range creds {
				raw[k] = v
			}
			img := promoteToProd(t, path, raw)
			if img.ImageID == "ami-0dev" || !strings.HasPrefix(img.ImageID, "ami-") || img.SourceImageID != "ami-0dev" ||
				img.Account != prodAccount || img.AttestationDigest != digest {
				t.Errorf("promoted %+v, want prod's own AMI copied from ami-0dev with dev's attestation digest", img)
			}
			i := slices.IndexFunc(fake.Images(), func(x ec2fake.Image) bool { return x.ID == img.ImageID })
			if i < 0 {
				t.Fatalf("%s is not in the fake", img.ImageID)
			}
			copied := fake.Images()[i]
			if copied.Owner != prodAccount || copied.Tags["ztna-environment"] != "prod" || copied.Tags["ztna-attestation-digest"] != digest {
				t.Errorf("copy %+v: want prod's, tagged", copied)
			}
			snaps := map[string]ec2fake.Snapshot{}
			for _, sn := range fake.Snapshots() {
				snaps[sn.ID] = sn
			}
			for _, id := range copied.Snapshots {
				if sn := snaps[id]; sn.Owner != prodAccount || sn.Tags["ztna-environment"] != "prod" || sn.Tags["ztna-promoted-from"] != "dev" {
					t.Errorf("copied snapshot %+v: want prod's, tagged", sn)
				}
			}
			for _, id := range []string{"snap-root", "snap-data"} {
				if !slices.Equal(snaps[id].CreateVolumeUsers, []string{prodAccount}) {
					t.Errorf("%s shared with %v, want %s", id, snaps[id].CreateVolumeUsers, prodAccount)
				}
			}
			for _, r := range fake.Requests() {
				if r.Action == "CopyImage" && r.Account != prodAccount || r.Action == "ModifySnapshotAttribute" && r.Account != devAccount {
					t.Errorf("%s made by account %s", r.Action, r.Account)
				}
			}
		})
	}
}

func TestPromoteAWSRefusals(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]interface{}
		// launch gives prod launch permission on ami-0dev: it sees the image but cannot share it.
		launch bool
		want   string
	}{
		{"target account is not the one named", map[string]interface{}{"aws_profile": "prod", "aws_source_profile": "dev", "account": "333333333333"}, false,
			"target credentials (aws_profile, aws_assume_role_arn) are of account 222222222222"},
		{"source credentials do not see the image", map[string]interface{}{"aws_profile": "prod"}, false,
			"the source image ami-0dev, seen from account 222222222222"},
		{"source credentials are not the owner's", map[string]interface{}{"aws_profile": "prod", "aws_source_assume_role_arn": prodRole, "aws_source_profile": "dev"}, true,
			"owned by account 111111111111, but the source credentials are of account 222222222222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := awsAccounts(t)
			if tt.launch {
				fake.AddImage(ec2fake.Image{ID: "ami-0dev", Name: "ztna-router-1.2.3", Owner: devAccount, RootDevice: "/dev/xvda",
					Snapshots: []string{"snap-root", "snap-data"}, LaunchUsers: []string{prodAccount}})
			}
			path := seed(t, imagecatalog.Image{Cloud: "aws", Region: "eu-west-1", ImageID: "ami-0dev"})
			raw := map[string]interface{}{"cloud": "aws", "region": "eu-west-1", "aws_endpoint": fake.URL, "aws_sts_endpoint": fake.URL,
				"catalog_path": path, "environment": "prod", "promote_from": "dev"}
			for k, v := range tt.raw {
				raw[k] = v
			}
			_, _, _, err := newPP(t, raw).PostProcess(context.Background(), ui, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			for _, r := range fake.Requests() {
				if r.Action == "CopyImage" || strings.HasPrefix(r.Action, "Modify") {
					t.Errorf("%s sent by account %s before the refusal", r.Action, r.Account)
				}
			}
		})
	}
}

func TestPromoteGCPCreatesImageFromSource(t *testing.T) {
	fake := computefake.New()
	defer fake.Close()
	fake.AddImage("build", &computepb.Image{Name: proto.String("ztna-router-1-2-3")})
	path := seed(t, imagecatalog.Image{Cloud: "gcp", ImageID: "projects/build/global/images/ztna-router-1-2-3"})

	img := promoteToProd(t, path, map[string]interface{}{"cloud": "gcp", "gcp_target_project": "prod-proj", "gcp_endpoint": fake.URL, "gcp_access_token": "t", "gcp_image_family": "ztna-router"})
	if img.ImageID != "projects/prod-proj/global/images/ztna-router-1-2-3-prod" || img.Account != "prod-proj" {
		t.Errorf("promoted %+v", img)
	}
	imgs := fake.Images("prod-proj")
	if len(imgs) != 1 || imgs[0].GetSourceImage() != "projects/build/global/images/ztna-router-1-2-3" || imgs[0].GetFamily() != "ztna-router" {
		t.Errorf("images in prod-proj: %v", imgs)
	}
}

func TestPromoteAzureCreatesGalleryVersion(t *testing.T) {
	const sub = "00000000-0000-0000-0000-000000000001"
	source := "/subscriptions/" + sub + "/resourceGroups/build/providers/Microsoft.Compute/images/ztna-router-1.2.3"
	fake := azurefake.New(sub)
	fake.AddImageSource(source)
	fake.AddGalleryImage("prod-images", "ztna", "router")
	path := seed(t, imagecatalog.Image{Cloud: "azure", Region: "westeurope", ImageID: source})

	p := &PostProcessor{azureOptions: func(o *azure.Options) {
		o.Credential, o.ClientOptions, o.PollInterval = fake.Credential(), fake.ClientOptions(), time.Millisecond
	}}
	err := p.Configure(map[string]interface{}{"catalog_path": path, "environment": "prod", "promote_from": "dev", "cloud": "azure", "region": "westeurope",
		"azure_subscription_id": sub, "azure_resource_group": "prod-images", "azure_gallery": "ztna", "azure_gallery_image": "router",
		"azure_replication_regions": []string{"westeurope", "northeurope"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := p.PostProcess(context.Background(), ui, nil); err != nil {
		t.Fatal(err)
	}
	cat, _ := imagecatalog.Load(path)
	img, err := cat.Lookup("azure", "westeurope", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(img.ImageID, "/galleries/ztna/images/router/versions/1.2.3") || img.SourceImageID != source || img.Account != sub {
		t.Errorf("promoted %+v", img)
	}
	v, ok := fake.Versions()["prod-images/ztna/router/1.2.3"]
	if !ok || *v.Properties.StorageProfile.Source.ID != source || len(v.Properties.PublishingProfile.TargetRegions) != 2 {
		t.Errorf("gallery versions: %v", fake.Versions())
	}
}

// Local promotion is a copy checked against the recorded digest: prod gets a file of its own,
// which a later rebuild of dev does not touch, and an artifact changed since it was recorded is
// refused.
func TestPromoteLocalCopiesFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "output", "ztna-router.qcow2")
	os.MkdirAll(filepath.Dir(src), 0o755)
	catalog := filepath.Join(dir, "images.json")
	build := func(content string) {
		t.Helper()
		os.WriteFile(src, []byte(content), 0o644)
		p := newPP(t, map[string]interface{}{"catalog_path": catalog, "environment": "dev", "router_version": "1.2.3"})
		if _, _, _, err := p.PostProcess(context.Background(), ui, artifact{builderID: ztnaLocal, id: src}.with("base_image", "debian-12")); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(env string) imagecatalog.Image {
		t.Helper()
		cat, err := imagecatalog.Load(catalog)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cat.Lookup("local", "", env)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	build("disk v1")
	dev := lookup("dev")
	if want, _ := imagecatalog.FileDigest(src); dev.Checksum != want {
		t.Fatalf("dev checksum %q, want %q", dev.Checksum, want)
	}

	// Default target: images/prod next to the catalog.
	prod := promoteToProd(t, catalog, map[string]interface{}{"cloud": "local"})
	wantPath := filepath.Join(dir, "images", "prod", "ztna-router-"+strings.TrimPrefix(dev.Checksum, "sha256:")[:12]+".qcow2")
	if prod.ImageID != wantPath || prod.Checksum != dev.Checksum || prod.SourceImageID != src {
		t.Errorf("promoted %+v, want a copy at %s with dev's checksum", prod, wantPath)
	}

	build("disk v2") // a rebuild of dev
	if got := lookup("prod"); got.ImageID != prod.ImageID || got.Checksum != prod.Checksum {
		t.Errorf("prod after rebuilding dev: %+v, want %+v", got, prod)
	}
	if b, _ := os.ReadFile(prod.ImageID); string(b) != "disk v1" {
		t.Errorf("prod's file holds %q after rebuilding dev", b)
	}
	if sum, _ := imagecatalog.FileDigest(prod.ImageID); sum != prod.Checksum {
		t.Errorf("prod's file digest %s, catalog %s", sum, prod.Checksum)
	}

	// dev's file altered after it was recorded: promotion refuses and prod stays.
	os.WriteFile(src, []byte("disk v2 with a backdoor"), 0o644)
	p := newPP(t, map[string]interface{}{"catalog_path": catalog, "environment": "prod", "promote_from": "dev", "cloud": "local"})
	_, _, _, err := p.PostProcess(context.Background(), ui, nil)
	if err == nil || !strings.Contains(err.Error(), "is not the image the catalog recorded") {
		t.Fatalf("promoting a tampered artifact: %v", err)
	}
	if got := lookup("prod"); got.ImageID != prod.ImageID || got.Checksum != prod.Checksum {
		t.Errorf("prod after a refused promotion: %+v", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "images", "prod", ".*tmp*")); len(left) > 0 {
		t.Errorf("refused promotion left %v", left)
	}
}

func TestPromoteLocalWithoutChecksumRefused(t *testing.T) {
	src := filepath.Join(t.TempDir(), "ztna-router.qcow2")
	os.WriteFile(src, []byte("disk"), 0o644)
	path := seed(t, imagecatalog.Image{Cloud: "local", ImageID: src})
	p := newPP(t, map[string]interface{}{"catalog_path": path, "environment": "prod", "promote_from": "dev", "cloud": "local", "local_target_directory": t.TempDir()})
	if _, _, _, err := p.PostProcess(context.Background(), ui, nil); err == nil || !strings.Contains(err.Error(), "has no checksum in the catalog") {
		t.Fatalf("err = %v", err)
	}
}

// The ztna-local artifact reports the image's attestation: the entry takes its hardening
// profile, build time and digest, and a router_version that contradicts it is refused.
func TestRecordFromAttestation(t *testing.T) {
	img := filepath.Join(t.TempDir(), "ztna-router.qcow2")
	os.WriteFile(img, []byte("disk"), 0o644)
	att := `{"router_version":"1.2.3","hardening_profile":"ztna-v2+ssh-lockdown","build_time":"2026-12-07T10:00:00Z","base_image":"debian-12"}`
	a := artifact{builderID: ztnaLocal, id: img}.with("base_image", "debian-12").with("attestation", att)
	catalog := filepath.Join(t.TempDir(), "c.json")
	p := newPP(t, map[string]interface{}{"catalog_path": catalog, "environment": "dev", "router_version": "v1.2.3"})
	if _, _, _, err := p.PostProcess(context.Background(), ui, a); err != nil {
		t.Fatal(err)
	}
	cat, _ := imagecatalog.Load(catalog)
	e, _ := cat.Lookup("local", "", "dev")
	sum := sha256.Sum256([]byte(att))
	if e.HardeningProfile != "ztna-v2+ssh-lockdown" || !e.BuildTime.Equal(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)) || e.AttestationDigest != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("entry %+v", e)
	}
	p = newPP(t, map[string]interface{}{"catalog_path": catalog, "environment": "dev", "router_version": "1.2.4"})
	if _, _, _, err := p.PostProcess(context.Background(), ui, a); err == nil || !strings.Contains(err.Error(), "router_version 1.2.4, but the image's attestation says 1.2.3") {
		t.Errorf("contradicting router_version: %v", err)
	}
}

func TestPromoteWithoutSourceSaysWhatExists(t *testing.T) {
	path := seed(t, imagecatalog.Image{Cloud: "local", ImageID: "/images/a.qcow2"})
	p := newPP(t, map[string]interface{}{"catalog_path": path, "environment": "prod", "promote_from": "staging", "cloud": "local"})
	_, _, _, err := p.PostProcess(context.Background(), ui, nil)
	if err == nil || !strings.Contains(err.Error(), `no local image for environment "staging"`) || !strings.Contains(err.Error(), "local/any region/dev") {
		t.Fatalf("err = %v", err)
	}
}
