package ztnaprovider

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/enroll"
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

func identityKeepersConfig(name, rotation string) string {
	return fmt.Sprintf(`
resource "ztna_identity" "test" {
  name          = %q
  roles         = ["integrations"]
  token_ttl     = "1h"
  token_keepers = { rotation = %q }
}
`, name, rotation)
}

// TestAccIdentity_tokenKeepers: changing token_keepers reissues the enrolment token in place
// (same id, new sensitive token and expiry); the earlier token is then refused by enrolment
// and the new one enrols the same identity.
func TestAccIdentity_tokenKeepers(t *testing.T) {
	needController(t)
	name := uniqueName("reissue")
	var id, token, expires string
	unchanged := func(what string, want *string) func(string) error {
		return func(v string) error {
			if v != *want {
				return fmt.Errorf("%s changed from %q to %q", what, *want, v)
			}
			return nil
		}
	}
	changed := func(what string, old *string) func(string) error {
		return func(v string) error {
			if v == *old || v == "" {
				return fmt.Errorf("%s did not change (%q)", what, v)
			}
			return nil
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: identityKeepersConfig(name, "1"),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_identity.test", "id", capture(&id)),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "enrollment_token", capture(&token)),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "token_expires_at", capture(&expires)),
				),
			},
			{
				// Same keepers: nothing to do, the token stays.
				Config: identityKeepersConfig(name, "1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config: identityKeepersConfig(name, "2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_identity.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("ztna_identity.test", tfjsonpath.New("enrollment_token")),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectSensitiveValue("ztna_identity.test", tfjsonpath.New("enrollment_token")),
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_identity.test", "id", unchanged("id", &id)),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "enrollment_token", changed("enrollment_token", &token)),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "token_expires_at", changed("token_expires_at", &expires)),
					resource.TestMatchResourceAttr("ztna_identity.test", "enrollment_token", expectError("ztna-key-v1.")),
					func(s *terraform.State) error {
						ctx := context.Background()
						newToken := s.RootModule().Resources["ztna_identity.test"].Primary.Attributes["enrollment_token"]
						_, err := enroll.Identity(ctx, token, filepath.Join(t.TempDir(), "old.json"), false, enroll.Options{})
						if err == nil || !strings.Contains(err.Error(), "revoked") {
							return fmt.Errorf("enrolment with the token before the reissue: %v, want it refused as revoked", err)
						}
						cfg, err := enroll.Identity(ctx, newToken, filepath.Join(t.TempDir(), "new.json"), false, enroll.Options{})
						if err != nil {
							return fmt.Errorf("enrolment with the reissued token: %w", err)
						}
						if cfg.ID != id {
							return fmt.Errorf("reissued token enrolled identity %s, want %s", cfg.ID, id)
						}
						return nil
					},
				),
			},
			{
				// Enrolment shows up on refresh; the reissued token is not minted again.
				Config: identityKeepersConfig(name, "2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.TestCheckResourceAttr("ztna_identity.test", "enrolled", "true"),
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_identity", (*apiclient.Client).GetIdentity),
	})
}
