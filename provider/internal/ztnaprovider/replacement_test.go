package ztnaprovider

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestBlockReplacements: only the platform block arguments that need a new VM replace it;
// API settings and write-only credentials change in place, and a block swapped for another
// platform replaces the host.
func TestBlockReplacements(t *testing.T) {
	ctx := context.Background()
	awsBlockValue := func(region, subnet, endpoint, poll string) types.Object {
		var o types.Object
		if d := setBlock(ctx, &o, awsAttrTypes, &awsPlatform{
			Region: types.StringValue(region), SubnetID: types.StringValue(subnet), AssignPublicIP: types.BoolValue(false),
			Endpoint: types.StringValue(endpoint), PollInterval: types.StringValue(poll), SecurityGroupIDs: types.ListNull(types.StringType),
		}); d.HasError() {
			t.Fatal(d)
		}
		return o
	}
	base := awsBlockValue("eu-west-1", "subnet-1", "https://a.example", "5s")
	for _, tc := range []struct {
		name        string
		plan, state types.Object
		want        []path.Path
	}{
		{"unchanged", base, base, nil},
		{"endpoint and poll interval", awsBlockValue("eu-west-1", "subnet-1", "https://b.example", "1s"), base, nil},
		{"subnet", awsBlockValue("eu-west-1", "subnet-2", "https://a.example", "5s"), base, []path.Path{path.Root("aws").AtName("subnet_id")}},
		{"region", awsBlockValue("eu-central-1", "subnet-1", "https://a.example", "5s"), base, []path.Path{path.Root("aws").AtName("region")}},
		{"block removed", types.ObjectNull(awsAttrTypes), base, []path.Path{path.Root("aws")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := blockReplacements("aws", tc.plan, tc.state)
			if !slices.EqualFunc(got, tc.want, func(a, b path.Path) bool { return a.Equal(b) }) {
				t.Errorf("replacements %v, want %v", got, tc.want)
			}
		})
	}
	for _, attr := range []string{"gcp.access_token", "gcp.endpoint", "azure.resource_manager_endpoint"} {
		if !inPlaceBlockAttributes[attr] {
			t.Errorf("%s would replace the host", attr)
		}
	}
	blocks := map[string]map[string]bool{}
	for name, types := range map[string]map[string]attr.Type{"aws": awsAttrTypes, "gcp": gcpAttrTypes, "azure": azureAttrTypes} {
		blocks[name] = map[string]bool{}
		for a := range types {
			blocks[name][a] = true
		}
	}
	for a := range inPlaceBlockAttributes {
		block, name, _ := strings.Cut(a, ".")
		if !blocks[block][name] {
			t.Errorf("in-place attribute %s is not in the %s block's schema", a, block)
		}
	}
}
