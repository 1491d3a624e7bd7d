package ztnaprovider

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/api"
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
				ImportStateVerifyIgnore: []string{"enrollment_token"},
			},
			{
				// An import block, then plan: a no-op (token_ttl is read back).
				ResourceName:    "ztna_identity.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
			},
			{
				// -generate-config-out writes HCL that plans as a no-op import.
				ResourceName:    "ztna_identity.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				GenerateConfig:  true,
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

func identityTTLConfig(name, ttl string) string {
	return fmt.Sprintf(`
resource "ztna_identity" "test" {
  name      = %q
  roles     = ["integrations"]
  token_ttl = %q
}
`, name, ttl)
}

// TestAccIdentity_tokenTTLInPlace: changing token_ttl of an enrolled identity is an in-place
// update that reissues the token with the new lifetime; the identity keeps its id and the
// client enrolled before keeps renewing its certificate.
func TestAccIdentity_tokenTTLInPlace(t *testing.T) {
	needController(t)
	name := uniqueName("ttl")
	var id, token string
	identityFile := filepath.Join(t.TempDir(), "identity.json")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: identityTTLConfig(name, "1h"),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_identity.test", "id", capture(&id)),
					resource.TestCheckResourceAttrWith("ztna_identity.test", "enrollment_token", capture(&token)),
					func(*terraform.State) error {
						_, err := enroll.Identity(context.Background(), token, identityFile, false, enroll.Options{})
						return err
					},
				),
			},
			{
				// "60m" is "1h": no change, no new token.
				Config: identityTTLConfig(name, "60m"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue("ztna_identity.test", tfjsonpath.New("enrollment_token"), knownvalue.NotNull()),
					},
				},
			},
			{
				Config: identityTTLConfig(name, "2h"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_identity.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("ztna_identity.test", tfjsonpath.New("enrollment_token")),
					},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_identity.test", "id", func(v string) error {
						if v != id {
							return fmt.Errorf("id changed from %s to %s: the identity was replaced", id, v)
						}
						return nil
					}),
					resource.TestCheckResourceAttr("ztna_identity.test", "enrolled", "true"),
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources["ztna_identity.test"].Primary.Attributes
						if attrs["enrollment_token"] == token {
							return fmt.Errorf("token_ttl change did not reissue the token")
						}
						expires, err := time.Parse(time.RFC3339, attrs["token_expires_at"])
						if err != nil {
							return err
						}
						if left := time.Until(expires); left < 90*time.Minute {
							return fmt.Errorf("reissued token expires in %s, want about 2h", left)
						}
						// The client enrolled before the change still renews.
						f, err := enroll.LoadIdentity(identityFile)
						if err != nil {
							return err
						}
						cur, err := f.TLSCertificate()
						if err != nil {
							return err
						}
						renewed, err := enroll.RenewIdentity(context.Background(), f, cur, enroll.Options{})
						if err != nil {
							return fmt.Errorf("the enrolled client cannot renew after the token_ttl change: %w", err)
						}
						if renewed.Config.ID != id {
							return fmt.Errorf("renewed identity %s, want %s", renewed.Config.ID, id)
						}
						return nil
					},
				),
			},
			{
				// Removing token_ttl keeps the current token.
				Config: "resource \"ztna_identity\" \"test\" {\n  name  = \"" + name + "\"\n  roles = [\"integrations\"]\n}\n",
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_identity", (*apiclient.Client).GetIdentity),
	})
}

// TestAccIdentity_importKeepers: the keepers of an imported identity are unknown to the
// import; the first apply records them in place and mints no token, the next change does.
func TestAccIdentity_importKeepers(t *testing.T) {
	needController(t)
	name := uniqueName("import-keepers")
	out, err := apiClient(t).CreateIdentity(context.Background(), api.IdentityCreate{Name: name, Roles: []string{"integrations"}, TokenTTLSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	config := func(rotation string) string {
		return fmt.Sprintf("import {\n  to = ztna_identity.test\n  id = %q\n}\n", out.ID) + identityKeepersConfig(name, rotation)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config("1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_identity.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("ztna_identity.test", tfjsonpath.New("enrollment_token"), knownvalue.Null()),
						plancheck.ExpectKnownValue("ztna_identity.test", tfjsonpath.New("token_ttl"), knownvalue.StringExact("1h")),
					},
				},
				Check: func(*terraform.State) error {
					// The token minted with the identity was not revoked by a reissue.
					_, err := enroll.Identity(context.Background(), out.EnrollmentToken, filepath.Join(t.TempDir(), "id.json"), false, enroll.Options{})
					return err
				},
			},
			{
				Config: config("2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_identity.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("ztna_identity.test", tfjsonpath.New("enrollment_token")),
					},
				},
				Check: resource.TestMatchResourceAttr("ztna_identity.test", "enrollment_token", expectError("ztna-key-v1.")),
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_identity", (*apiclient.Client).GetIdentity),
	})
}

func TestReissuesToken(t *testing.T) {
	keepers := func(v string) types.Map {
		return types.MapValueMust(types.StringType, map[string]attr.Value{"rotation": types.StringValue(v)})
	}
	token := types.StringValue("ztna-key-v1.x")
	for name, tc := range map[string]struct {
		state, plan identityModel
		want        bool
	}{
		"nothing changes":         {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("1"), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("1")}, false},
		"same ttl spelled apart":  {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: types.MapNull(types.StringType), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("60m"), TokenKeepers: types.MapNull(types.StringType)}, false},
		"ttl changes":             {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: types.MapNull(types.StringType), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("2h"), TokenKeepers: types.MapNull(types.StringType)}, true},
		"ttl unknown at plan":     {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: types.MapNull(types.StringType), EnrollmentToken: token}, identityModel{TokenTTL: types.StringUnknown(), TokenKeepers: types.MapNull(types.StringType)}, true},
		"ttl unknown to state":    {identityModel{TokenTTL: types.StringNull(), TokenKeepers: types.MapNull(types.StringType), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("2h"), TokenKeepers: types.MapNull(types.StringType)}, false},
		"keepers change":          {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("1"), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("2")}, true},
		"keepers set":             {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: types.MapNull(types.StringType), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("1")}, true},
		"keepers set on imported": {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: types.MapNull(types.StringType), EnrollmentToken: types.StringNull()}, identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("1")}, false},
		"keepers unknown at plan": {identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: keepers("1"), EnrollmentToken: token}, identityModel{TokenTTL: types.StringValue("1h"), TokenKeepers: types.MapUnknown(types.StringType)}, true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := reissuesToken(tc.plan, tc.state); got != tc.want {
				t.Errorf("reissuesToken = %v, want %v", got, tc.want)
			}
		})
	}
}
