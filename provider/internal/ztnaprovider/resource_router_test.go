package ztnaprovider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/apiclient"
)

func routerConfig(name, roles string) string {
	return fmt.Sprintf(`
resource "ztna_router" "test" {
  name  = %q
  roles = %s
}
`, name, roles)
}

func TestAccRouter_lifecycle(t *testing.T) {
	needController(t)
	name := uniqueName("edge")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: routerConfig(name, `["customer-a"]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("name"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("roles"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("customer-a")})),
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("status"), knownvalue.StringExact("unenrolled")),
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("cost"), knownvalue.Int64Exact(0)),
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("id"), knownvalue.NotNull()),
				},
				// resource.Test fails the step when the plan after apply is not empty.
			},
			{
				ResourceName:      "ztna_router.test",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// An import block, then plan: a no-op.
				ResourceName:    "ztna_router.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
			},
			{
				// -generate-config-out writes HCL that plans as a no-op import.
				ResourceName:    "ztna_router.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				GenerateConfig:  true,
			},
			{
				Config: routerConfig(name+"-renamed", `["customer-a", "customer-b"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router.test", plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("name"), knownvalue.StringExact(name+"-renamed")),
					statecheck.ExpectKnownValue("ztna_router.test", tfjsonpath.New("roles"), knownvalue.SetSizeExact(2)),
				},
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_router", (*apiclient.Client).GetRouter),
	})
}

// TestAccRouter_deletedOutsideTerraform: a router deleted through the API is planned for
// creation again.
func TestAccRouter_deletedOutsideTerraform(t *testing.T) {
	needController(t)
	name := uniqueName("edge")
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: routerConfig(name, `[]`),
				Check:  resource.TestCheckResourceAttrWith("ztna_router.test", "id", capture(&id)),
			},
			{
				PreConfig: func() {
					if err := apiClient(t).DeleteRouter(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				},
				Config: routerConfig(name, `[]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router.test", plancheck.ResourceActionCreate)},
				},
				Check: resource.TestCheckResourceAttrWith("ztna_router.test", "id", func(v string) error {
					if v == id {
						return fmt.Errorf("router id %s was reused after deletion", v)
					}
					return nil
				}),
			},
		},
	})
}

func TestAccRouter_badInput(t *testing.T) {
	for _, tc := range []struct {
		name, roles string
		want        []string
	}{
		{"bad name!", `["a"]`, []string{"Invalid name", "name must be a name"}},
		{"edge", `["Customer A"]`, []string{"Invalid roles", "Each element of roles must be a role"}},
	} {
		t.Run(tc.name+tc.roles, func(t *testing.T) {
			planFails(t, routerConfig(tc.name, tc.roles), tc.want...)
		})
	}
}

func TestAccRouter_duplicateName(t *testing.T) {
	needController(t)
	name := uniqueName("edge")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: routerConfig(name, `[]`) + fmt.Sprintf(`
resource "ztna_router" "twin" {
  name       = %q
  depends_on = [ztna_router.test]
}
`, name),
			ExpectError: expectError("Name already in use", "with ztna_router.twin", "name"),
		}},
	})
}

// capture stores an attribute's value for a later step.
func capture(dst *string) func(string) error {
	return func(v string) error {
		*dst = v
		return nil
	}
}

// checkDestroyed verifies through the API that every object of a type in the state is gone.
func checkDestroyed[O any](t *testing.T, resourceType string, get func(*apiclient.Client, context.Context, string) (*O, error)) func(*terraform.State) error {
	return func(s *terraform.State) error {
		for _, rs := range s.RootModule().Resources {
			if rs.Type != resourceType {
				continue
			}
			_, err := get(apiClient(t), context.Background(), rs.Primary.ID)
			if err == nil {
				return fmt.Errorf("%s %s still exists after destroy", resourceType, rs.Primary.ID)
			}
			if !apiclient.IsNotFound(err) {
				return err
			}
		}
		return nil
	}
}
