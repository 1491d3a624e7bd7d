package ztnaprovider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccRouterDataSource(t *testing.T) {
	needController(t)
	name := uniqueName("edge")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      `data "ztna_router" "t" { name = "` + name + `" }`,
				ExpectError: expectError("No such router", "no router is named "+name),
			},
			{
				Config:      `data "ztna_router" "t" { id = "nosuchid" }`,
				ExpectError: expectError("No such router", "No router has id nosuchid"),
			},
			{
				Config:      `data "ztna_router" "t" {}`,
				ExpectError: expectError("Missing Attribute Configuration", "Exactly one of these attributes must be configured: [id,name]"),
			},
			{
				Config: routerConfig(name, `["customer-a"]`) + `
data "ztna_router" "by_name" {
  name = ztna_router.test.name
}
data "ztna_router" "by_id" {
  id = ztna_router.test.id
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs("ztna_router.test", tfjsonpath.New("id"), "data.ztna_router.by_name", tfjsonpath.New("id"), compare.ValuesSame()),
					statecheck.CompareValuePairs("ztna_router.test", tfjsonpath.New("name"), "data.ztna_router.by_id", tfjsonpath.New("name"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("data.ztna_router.by_id", tfjsonpath.New("status"), knownvalue.StringExact("unenrolled")),
					statecheck.ExpectKnownValue("data.ztna_router.by_id", tfjsonpath.New("roles"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("customer-a")})),
				},
			},
		},
	})
}
