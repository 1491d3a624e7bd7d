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

func identityConfig(name, roles string) string {
	return fmt.Sprintf(`
resource "ztna_identity" "test" {
  name      = %q
  roles     = %s
  token_ttl = "1h"
}
`, name, roles)
}

func TestAccIdentity_lifecycle(t *testing.T) {
	needController(t)
	name := uniqueName("runtime")
	var id, token string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: identityConfig(name, `["integrations"]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectSensitiveValue("ztna_identity.test", tfjsonpath.New("enrollment_token")),
					statecheck.ExpectKnownValue("ztna_identity.test", tfjsonpath.New("enrolled"), knownvalue.Bool(false)),
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestMatchResourceAttr("ztna_identity.test", "enrollment_token", expectError("ztna-key-v1.")),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "id", capture(&id)),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "enrollment_token", capture(&token)),
				),
			},
			{
				ResourceName:            "ztna_identity.test",
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"enrollment_token", "token_ttl"},
			},
			{
				Config: identityConfig(name+"-2", `["integrations", "reporting"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_identity.test", plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("ztna_identity.test", "roles.#", "2"),
					// The token is minted once: an in-place update keeps it.
					resource.TestCheckResourceAttrWith("ztna_identity.test", "enrollment_token", func(v string) error {
						if v != token {
							return fmt.Errorf("enrollment_token changed on update")
						}
						return nil
					}),
				),
			},
			{
				PreConfig: func() {
					if err := apiClient(t).DeleteIdentity(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				},
				Config: identityConfig(name+"-2", `["integrations", "reporting"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_identity.test", plancheck.ResourceActionCreate)},
				},
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_identity", (*apiclient.Client).GetIdentity),
	})
}

func TestAccIdentity_badInput(t *testing.T) {
	for name, tc := range map[string]struct {
		config string
		want   []string
	}{
		"role": {identityConfig("runtime", `["Integrations!"]`), []string{"Invalid roles", "must be a role"}},
		"ttl":  {"resource \"ztna_identity\" \"test\" {\n  name      = \"x\"\n  token_ttl = \"forever\"\n}", []string{"Invalid token_ttl", "not a duration"}},
		"long": {"resource \"ztna_identity\" \"test\" {\n  name      = \"x\"\n  token_ttl = \"9000h\"\n}", []string{"Invalid token_ttl", "out of range"}},
	} {
		t.Run(name, func(t *testing.T) {
			planFails(t, tc.config, tc.want...)
		})
	}
}
