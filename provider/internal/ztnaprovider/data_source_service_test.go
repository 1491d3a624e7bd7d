package ztnaprovider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/api"
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

// TestAccServiceDataSourceAcrossPages reads a service hosted by more routers than one page of
// the API holds (130 > api.DefaultListLimit): the data source lists every one, because the
// client follows next_cursor through GET /v1/services/{id}/routers.
func TestAccServiceDataSourceAcrossPages(t *testing.T) {
	needController(t)
	c := apiClient(t)
	name := uniqueName("paged")
	const hosts = api.DefaultListLimit + 30
	for i := range hosts {
		r, err := c.CreateRouter(context.Background(), api.RouterCreate{Name: fmt.Sprintf("%s-%03d", name, i), Roles: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.DeleteRouter(context.Background(), r.ID) })
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: serviceConfig(name, "paged.customerdomain.me", 5432, "") + `
data "ztna_service" "t" {
  name = ztna_service.test.name
}
data "ztna_router" "last" {
  name = "` + fmt.Sprintf("%s-%03d", name, hosts-1) + `"
}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.ztna_service.t", tfjsonpath.New("routers"), knownvalue.ListSizeExact(hosts)),
				statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("routers"), knownvalue.ListSizeExact(hosts)),
				statecheck.ExpectKnownValue("data.ztna_router.last", tfjsonpath.New("roles"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(name)})),
			},
		}},
	})
}
