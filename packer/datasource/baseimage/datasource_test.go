package baseimage

import (
	"fmt"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"

	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/aws/ec2fake"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/cloud/azure/azurefake"
	"github.com/ztna/ztna/cloud/gcp"
	"github.com/ztna/ztna/cloud/gcp/computefake"
	"github.com/ztna/ztna/packer/internal/spectest"
)

func TestSpecsCoverStructs(t *testing.T) {
	var d Datasource
	spectest.AssertCoversConfig(t, d.ConfigSpec(), &d.config)
	spectest.AssertCoversConfig(t, d.OutputSpec(), &DatasourceOutput{})
}

func TestConfigureRejects(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{"unknown cloud", map[string]interface{}{"cloud": "oci"}, []string{`cloud "oci": must be one of aws, gcp, azure`}},
		{"azure without location and subscription", map[string]interface{}{"cloud": "azure"}, []string{"region and azure_subscription_id: required for azure"}},
		{"aws without region", map[string]interface{}{"cloud": "aws"}, []string{"region: required for aws"}},
		{"gcp without project", map[string]interface{}{"cloud": "gcp"}, []string{"gcp_project: required for gcp"}},
		{"bad timeout and endpoint", map[string]interface{}{"cloud": "aws", "region": "eu-west-1", "timeout": "soon", "aws_endpoint": "ec2.local"},
			[]string{`timeout "soon"`, `aws_endpoint "ec2.local": must be an http(s):// URL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Datasource
			err := d.Configure(tt.raw)
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

// staticAWSCredentials keeps the SDK away from real credentials and instance metadata.
func staticAWSCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

func TestExecuteAWS(t *testing.T) {
	staticAWSCredentials(t)
	fake := ec2fake.New("eu-west-1")
	defer fake.Close()
	for _, img := range []ec2fake.Image{
		{ID: "ami-old", Name: "debian-12-amd64-20250101-1980", Owner: aws.DebianOwner, Public: true, Created: "2025-01-01T10:00:00.000Z", Architecture: "x86_64"},
		{ID: "ami-new", Name: "debian-12-amd64-20260110-2350", Owner: aws.DebianOwner, Public: true, Created: "2026-01-10T10:00:00.000Z", Architecture: "x86_64"},
		{ID: "ami-impostor", Name: "debian-12-amd64-20270101-9999", Owner: "999999999999", Public: true, Created: "2027-01-01T10:00:00.000Z", Architecture: "x86_64"},
	} {
		fake.AddImage(img)
	}
	var d Datasource
	v := spectest.Decode(t, d.ConfigSpec(), fmt.Sprintf(`
cloud        = "aws"
region       = "eu-west-1"
aws_endpoint = %q
`, fake.URL))
	if err := d.Configure(v); err != nil {
		t.Fatal(err)
	}
	out, err := d.Execute()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"image_id": "ami-new", "name": "debian-12-amd64-20260110-2350", "region": "eu-west-1", "created": "2026-01-10T10:00:00.000Z"} {
		if got := out.GetAttr(k).AsString(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestExecuteGCP(t *testing.T) {
	fake := computefake.New()
	defer fake.Close()
	fake.AddImage(gcp.DebianProject, &computepb.Image{Name: proto.String("debian-12-bookworm-v20250101"), Family: proto.String(gcp.DebianFamily), CreationTimestamp: proto.String("2025-01-01T00:00:00.000-08:00")})
	fake.AddImage(gcp.DebianProject, &computepb.Image{Name: proto.String("debian-12-bookworm-v20260110"), Family: proto.String(gcp.DebianFamily), CreationTimestamp: proto.String("2026-01-10T00:00:00.000-08:00")})
	var d Datasource
	err := d.Configure(map[string]interface{}{"cloud": "gcp", "gcp_project": "build", "gcp_endpoint": fake.URL + "/", "gcp_access_token": "test-token"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.Execute()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.GetAttr("image_id").AsString(), "projects/debian-cloud/global/images/debian-12-bookworm-v20260110"; got != want {
		t.Errorf("image_id = %q, want %q", got, want)
	}
}

func TestExecuteReportsMissingImage(t *testing.T) {
	staticAWSCredentials(t)
	fake := ec2fake.New("eu-west-1")
	defer fake.Close()
	d := Datasource{}
	if err := d.Configure(map[string]interface{}{"cloud": "aws", "region": "eu-west-1", "aws_endpoint": fake.URL}); err != nil {
		t.Fatal(err)
	}
	_, err := d.Execute()
	if err == nil || !strings.Contains(err.Error(), "no Debian 12 image") {
		t.Fatalf("err = %v", err)
	}
}

func TestExecuteAzure(t *testing.T) {
	const sub = "00000000-0000-0000-0000-000000000001"
	fake := azurefake.New(sub)
	fake.AddMarketplaceImage("westeurope", azure.DebianPublisher, azure.DebianOffer, azure.DebianSKU,
		"0.20240211.1654", "0.20250210.2019", "0.20241004.1890")
	d := &Datasource{azureOptions: func(o *azure.Options) {
		o.Credential, o.ClientOptions = fake.Credential(), fake.ClientOptions()
	}}
	if err := d.Configure(map[string]interface{}{"cloud": "azure", "region": "westeurope", "azure_subscription_id": sub}); err != nil {
		t.Fatal(err)
	}
	out, err := d.Execute()
	if err != nil {
		t.Fatal(err)
	}
	want := azure.DebianPublisher + ":" + azure.DebianOffer + ":" + azure.DebianSKU + ":0.20250210.2019"
	if got := out.GetAttr("image_id").AsString(); got != want {
		t.Errorf("image_id = %q, want the newest version %q", got, want)
	}
	if got := out.GetAttr("region").AsString(); got != "westeurope" {
		t.Errorf("region = %q", got)
	}
}
