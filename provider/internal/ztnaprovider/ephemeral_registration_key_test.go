package ztnaprovider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/ztna/ztna/internal/api"
)

// TestAccRegistrationKeyEphemeral: the ephemeral resource mints a working key that is not in
// ztna's state. The test echoes it into the echo provider's state only to inspect it.
func TestAccRegistrationKeyEphemeral(t *testing.T) {
	needController(t)
	router := uniqueName("edge")
	var routerID string
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"ztna": providerserver.NewProtocol6WithError(New("test")()),
			"echo": echoprovider.NewProviderServer(),
		},
		Steps: []resource.TestStep{{
			Config: routerConfig(router, `[]`) + `
ephemeral "ztna_registration_key" "test" {
  router_id = ztna_router.test.id
  ttl       = "15m"
}
provider "echo" {
  data = ephemeral.ztna_registration_key.test
}
resource "echo" "key" {}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("echo.key", tfjsonpath.New("data").AtMapKey("key"), knownvalue.StringFunc(func(v string) error {
					if !strings.HasPrefix(v, "ztna-key-v1.") {
						return fmt.Errorf("not a registration key: %q", v)
					}
					return nil
				})),
			},
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttrWith("ztna_router.test", "id", capture(&routerID)),
				// The key works: the controller knows it as an unused key of this router.
				func(s *terraform.State) error {
					id := s.RootModule().Resources["echo.key"].Primary.Attributes["data.id"]
					k, err := apiClient(t).GetRegistrationKey(context.Background(), id)
					if err != nil {
						return err
					}
					if k.RouterID != routerID || k.State != api.KeyUnused {
						return fmt.Errorf("key %s: router %s state %s", id, k.RouterID, k.State)
					}
					return nil
				},
			),
		}},
	})
}
