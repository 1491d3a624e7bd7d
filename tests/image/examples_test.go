package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/protobuf/proto"

	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/aws/ec2fake"
	"github.com/ztna/ztna/cloud/gcp"
	"github.com/ztna/ztna/cloud/gcp/computefake"
)

func TestExamplesFormatted(t *testing.T) {
	if out, err := packer(context.Background(), nil, "fmt", "-check", "-diff", "examples/packer"); err != nil {
		t.Fatalf("packer fmt -check examples/packer: %v\n%s", err, out)
	}
}

// The official cloud builder plugins cannot be downloaded here, so each cloud example is checked
// three ways: its syntax; that a full validate fails only for want of that official plugin; and a
// full validate of the same template with the official source swapped for Packer's null builder,
// which checks every ztna component block (data source run against a fake of the cloud API,
// provisioner, post-processor) against the plugin's real HCL2 specs.
func TestCloudExamples(t *testing.T) {
	ec2 := ec2fake.New("eu-west-1")
	defer ec2.Close()
	ec2.AddImage(ec2fake.Image{ID: "ami-0debian", Name: "debian-12-amd64-20260110-2350", Owner: aws.DebianOwner, Public: true, Created: "2026-01-10T10:00:00.000Z", Architecture: "x86_64"})
	gce := computefake.New()
	defer gce.Close()
	gce.AddImage(gcp.DebianProject, &computepb.Image{Name: proto.String("debian-12-bookworm-v20260110"), Family: proto.String(gcp.DebianFamily)})

	router := bin(t, "ztna-router")
	tests := []struct {
		file, builder, plugin string
		vars                  []string
		dataSource            map[string]string // extra attributes of data "ztna-base-image" "debian"
		lookedUp              func() bool       // whether the data source called the fake
	}{
		{"aws.pkr.hcl", "amazon-ebs", "amazon", []string{"router_binary=" + router, "router_version=1.2.3"},
			map[string]string{"aws_endpoint": ec2.URL}, func() bool {
				return slices.ContainsFunc(ec2.Requests(), func(r ec2fake.Request) bool { return r.Action == "DescribeImages" })
			}},
		{"gcp.pkr.hcl", "googlecompute", "googlecompute", []string{"router_binary=" + router, "router_version=1.2.3", "project=build"},
			map[string]string{"gcp_endpoint": gce.URL, "gcp_access_token": "test-token"}, func() bool {
				return slices.ContainsFunc(gce.Requests(), func(r computefake.Request) bool { return strings.Contains(r.Path, "/family/"+gcp.DebianFamily) })
			}},
		{"azure.pkr.hcl", "azure-arm", "azure", []string{"router_binary=" + router, "router_version=1.2.3", "subscription_id=s", "resource_group=rg"}, nil, nil},
	}
	env := []string{"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join("examples/packer", tt.file)
			if out, err := packer(ctx, nil, "validate", "-syntax-only", path); err != nil {
				t.Fatalf("syntax: %v\n%s", err, out)
			}
			var args []string
			for _, v := range tt.vars {
				args = append(args, "-var", v)
			}
			out, err := packer(ctx, env, append(append([]string{"validate"}, args...), path)...)
			if err == nil || !strings.Contains(out, "github.com/hashicorp/"+tt.plugin) || strings.Contains(out, "github.com/ztna/ztna") {
				t.Fatalf("full validate should fail only for the missing official %s plugin: %v\n%s", tt.plugin, err, out)
			}

			standIn := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(standIn, withNullSource(t, filepath.Join(repoRoot, path), tt.builder, tt.plugin, tt.dataSource), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err = packer(ctx, env, append(append([]string{"validate", "-evaluate-datasources"}, args...), standIn)...)
			if err != nil || !strings.Contains(out, "The configuration is valid") {
				t.Fatalf("validate with the null builder in place of %s: %v\n%s", tt.builder, err, out)
			}
			if tt.lookedUp != nil && !tt.lookedUp() {
				t.Error("ztna-base-image did not query the fake cloud API")
			}
		})
	}
}

// withNullSource rewrites a template: the source of the given builder becomes a null source of
// the same name, the official plugin's required_plugins entry goes, and the ztna-base-image
// data source gets the given attributes (fake endpoints).
func withNullSource(t *testing.T, path, builder, plugin string, dataSource map[string]string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclwrite.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	body := f.Body()
	var name string
	var build *hclwrite.Body
	for _, b := range body.Blocks() {
		labels := b.Labels()
		switch {
		case b.Type() == "packer":
			for _, rp := range b.Body().Blocks() {
				if rp.Type() == "required_plugins" {
					rp.Body().RemoveAttribute(plugin)
				}
			}
		case b.Type() == "source" && len(labels) == 2 && labels[0] == builder:
			name = labels[1]
			body.RemoveBlock(b)
		case b.Type() == "data" && len(labels) == 2 && labels[0] == "ztna-base-image":
			for k, v := range dataSource {
				b.Body().SetAttributeValue(k, cty.StringVal(v))
			}
		case b.Type() == "build":
			build = b.Body()
		}
	}
	if name == "" || build == nil {
		t.Fatalf("%s has no %s source or no build", path, builder)
	}
	build.SetAttributeValue("sources", cty.ListVal([]cty.Value{cty.StringVal("source.null." + name)}))
	null := body.AppendNewBlock("source", []string{"null", name})
	null.Body().SetAttributeValue("communicator", cty.StringVal("none"))
	return f.Bytes()
}
