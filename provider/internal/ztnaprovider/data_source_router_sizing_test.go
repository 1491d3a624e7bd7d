package ztnaprovider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/cloud/sizing"
)

// The sizing data source needs no controller; every tier and cloud must match cloud/sizing.
func TestAccRouterSizingDataSource(t *testing.T) {
	steps := []resource.TestStep{{
		// Invalid input first: the last step's configuration is destroyed after the test.
		Config:      `data "ztna_router_sizing" "t" { tier = "huge" }`,
		ExpectError: expectError("Invalid Attribute Value Match", "tier", `"low-med"`),
	}}
	for _, spec := range sizing.Table() {
		for i, cloud := range sizing.Clouds() {
			if i != int(len(steps))%len(sizing.Clouds()) {
				continue // one cloud per tier through terraform, a different one each time
			}
			it := spec.InstanceTypes[cloud]
			steps = append(steps, resource.TestStep{
				Config: `data "ztna_router_sizing" "t" {
  tier  = "` + string(spec.Tier) + `"
  cloud = "` + string(cloud) + `"
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("instance_type"), knownvalue.StringExact(it.Name)),
					statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("vcpu"), knownvalue.Int64Exact(int64(spec.VCPU))),
					statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("memory_mib"), knownvalue.Int64Exact(int64(spec.MemoryMiB))),
					statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("disk_gib"), knownvalue.Int64Exact(int64(spec.DiskGiB))),
					statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("instance_types").AtMapKey(string(cloud)).AtMapKey("vcpu"), knownvalue.Int64Exact(int64(it.VCPU))),
				},
			})
		}
	}
	steps = append(steps, resource.TestStep{
		Config: `data "ztna_router_sizing" "t" { tier = "med" }`,
		ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("instance_type"), knownvalue.Null()),
			statecheck.ExpectKnownValue("data.ztna_router_sizing.t", tfjsonpath.New("instance_types"), knownvalue.MapExact(map[string]knownvalue.Check{
				"aws":   knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("c6i.xlarge")}),
				"azure": knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("Standard_F4s_v2")}),
				"gcp":   knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("e2-standard-4")}),
			})),
		},
	})
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: protoV6ProviderFactories, Steps: steps})
}
