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
// ztna's state. The test echoes it into the echo provider's state only to inspect it; with
// revoke_unused = false the key outlives the run.
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
  router_id     = ztna_router.test.id
  ttl           = "15m"
  revoke_unused = false
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

// TestAccRegistrationKeyEphemeral_plansLeaveNoLiveKeys: every plan opens the ephemeral
// resource and so mints a key; Close revokes each one nothing enrolled with, so six plans
// leave no unused key of the router. With revoke_unused = false the same six plans leave six
// (what the count would be without Close).
func TestAccRegistrationKeyEphemeral_plansLeaveNoLiveKeys(t *testing.T) {
	needController(t)
	t.Parallel()
	client := apiClient(t)
	ctx := context.Background()
	router := uniqueName("plans")
	keys := func(routerID string) map[string]int {
		all, err := client.ListRegistrationKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, k := range all {
			if k.RouterID == routerID {
				n[k.State]++
			}
		}
		return n
	}
	config := func(revoke string) string {
		return routerConfig(router, `[]`) + fmt.Sprintf(`
ephemeral "ztna_registration_key" "test" {
  router_id     = ztna_router.test.id
  ttl           = "15m"
  revoke_unused = %s
}
`, revoke)
	}
	cli := newTerraformCLI(t, config("null"))
	cli.run(false, "apply", "-auto-approve")
	routerID := ""
	if rs, err := client.ListRouters(ctx); err == nil {
		for _, r := range rs {
			if r.Name == router {
				routerID = r.ID
			}
		}
	}
	if routerID == "" {
		t.Fatalf("router %s not created", router)
	}
	t.Cleanup(func() { cli.run(false, "destroy", "-auto-approve") })
	for range 6 {
		cli.run(false, "plan")
	}
	if n := keys(routerID); n[api.KeyUnused] != 0 || n[api.KeyRevoked] < 7 {
		t.Fatalf("after an apply and 6 plans: keys by state %v, want 0 unused and at least 7 revoked", n)
	}

	cli.write("main.tf", requiredProviders+config("false"))
	for range 6 {
		cli.run(false, "plan")
	}
	if n := keys(routerID); n[api.KeyUnused] != 6 {
		t.Fatalf("after 6 plans with revoke_unused = false: keys by state %v, want 6 unused", n)
	}
}
