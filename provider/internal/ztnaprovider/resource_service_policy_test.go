package ztnaprovider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/apiclient"
)

func servicePolicyConfig(name, services, roles string) string {
	return fmt.Sprintf(`
resource "ztna_service_policy" "test" {
  name           = %q
  identity_roles = %s
  service_names  = %s
}
`, name, roles, services)
}

func TestAccServicePolicy_lifecycle(t *testing.T) {
	needController(t)
	name := uniqueName("policy")
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: servicePolicyConfig(name, `["prod-db"]`, `["integrations"]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_service_policy.test", tfjsonpath.New("service_names"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("prod-db")})),
				},
				Check: resource.TestCheckResourceAttrWith("ztna_service_policy.test", "id", capture(&id)),
			},
			{
				ResourceName:      "ztna_service_policy.test",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				Config: servicePolicyConfig(name, `["prod-db", "orders-api"]`, `["integrations", "reporting"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_service_policy.test", plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_service_policy.test", tfjsonpath.New("service_names"), knownvalue.SetSizeExact(2)),
					statecheck.ExpectKnownValue("ztna_service_policy.test", tfjsonpath.New("identity_roles"), knownvalue.SetSizeExact(2)),
				},
			},
			{
				PreConfig: func() {
					if err := apiClient(t).DeleteServicePolicy(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				},
				Config: servicePolicyConfig(name, `["prod-db", "orders-api"]`, `["integrations", "reporting"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_service_policy.test", plancheck.ResourceActionCreate)},
				},
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_service_policy", (*apiclient.Client).GetServicePolicy),
	})
}

func TestAccServicePolicy_badInput(t *testing.T) {
	for name, tc := range map[string]struct {
		config string
		want   []string
	}{
		"service name": {servicePolicyConfig("p", `["prod db"]`, `["integrations"]`), []string{"Invalid service_names", "must be a name"}},
		"no services":  {servicePolicyConfig("p", `[]`, `["integrations"]`), []string{"service_names", "at least 1"}},
		"role":         {servicePolicyConfig("p", `["prod-db"]`, `["-x"]`), []string{"Invalid identity_roles", "must be a role"}},
	} {
		t.Run(name, func(t *testing.T) {
			planFails(t, tc.config, tc.want...)
		})
	}
}
