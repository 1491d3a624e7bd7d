package ztnaprovider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccServiceDataSource(t *testing.T) {
	needController(t)
	name := uniqueName("prod-db")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      `data "ztna_service" "t" { name = "` + name + `" }`,
				ExpectError: expectError("No such service", "no service is named "+name),
			},
			{
				Config: serviceConfig(name, "prod-db.customerdomain.me", 5432, `port_ranges = ["6000-6001"]`) + `
data "ztna_service" "t" {
  name = ztna_service.test.name
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs("ztna_service.test", tfjsonpath.New("id"), "data.ztna_service.t", tfjsonpath.New("id"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("data.ztna_service.t", tfjsonpath.New("address"), knownvalue.StringExact("prod-db.customerdomain.me")),
					statecheck.ExpectKnownValue("data.ztna_service.t", tfjsonpath.New("port"), knownvalue.Int64Exact(5432)),
					statecheck.ExpectKnownValue("data.ztna_service.t", tfjsonpath.New("port_ranges"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("6000-6001")})),
					statecheck.ExpectKnownValue("data.ztna_service.t", tfjsonpath.New("router_roles"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(name)})),
				},
			},
		},
	})
}
