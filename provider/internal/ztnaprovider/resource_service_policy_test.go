package ztnaprovider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/api"
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

// policyServices declares the services a policy test names (under names of its own, hosted
// on a role of their own so that no router of another test hosts them).
func policyServices(prefix string) string {
	return fmt.Sprintf(`
resource "ztna_service" "db" {
  name         = "%[1]s-db"
  address      = "db.internal.example"
  port         = 5432
  router_roles = ["%[1]s"]
}
resource "ztna_service" "api" {
  name         = "%[1]s-api"
  address      = "api.internal.example"
  port         = 443
  router_roles = ["%[1]s"]
}
`, prefix)
}

func TestAccServicePolicy_lifecycle(t *testing.T) {
	needController(t)
	name := uniqueName("policy")
	services := policyServices(name)
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// The services are created in the same run: the policy's plan-time check counts them.
				Config: services + servicePolicyConfig(name, `[ztna_service.db.name]`, `["integrations"]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_service_policy.test", tfjsonpath.New("service_names"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(name + "-db")})),
				},
				Check: resource.TestCheckResourceAttrWith("ztna_service_policy.test", "id", capture(&id)),
			},
			{
				ResourceName:      "ztna_service_policy.test",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				ResourceName:    "ztna_service_policy.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
			},
			{
				ResourceName:    "ztna_service_policy.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				GenerateConfig:  true,
			},
			{
				Config: services + servicePolicyConfig(name, `[ztna_service.db.name, ztna_service.api.name]`, `["integrations", "reporting"]`),
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
				Config: services + servicePolicyConfig(name, `[ztna_service.db.name, ztna_service.api.name]`, `["integrations", "reporting"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_service_policy.test", plancheck.ResourceActionCreate)},
				},
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_service_policy", (*apiclient.Client).GetServicePolicy),
	})
}

// TestAccServicePolicy_planDiagnostics runs the real terraform: a service name that neither
// the controller nor the plan has fails the plan with the fix; a role nobody holds warns; an
// identity in the same plan holding the role silences the warning.
func TestAccServicePolicy_planDiagnostics(t *testing.T) {
	needController(t)
	t.Parallel()
	name := uniqueName("policy-diag")
	role := name + "-role"
	cli := newTerraformCLI(t, policyServices(name)+servicePolicyConfig(name, fmt.Sprintf(`[ztna_service.db.name, "%s-dbb"]`, name), fmt.Sprintf("[%q]", role)))
	out := strings.Join(strings.Fields(cli.run(true, "plan")), " ")
	for _, want := range []string{
		"Error: Unknown service",
		fmt.Sprintf(`names "%s-dbb", which is neither a service of the controller nor one this plan creates`, name),
		"service_names = [ztna_service.<label>.name]",
		"Warning: Identity roles nobody holds",
		fmt.Sprintf(`No identity holds "%s"`, role),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, fmt.Sprintf(`names "%s-db"`, name)) {
		t.Errorf("the service this plan creates was reported unknown:\n%s", out)
	}

	cli.write("main.tf", requiredProviders+policyServices(name)+servicePolicyConfig(name, `[ztna_service.db.name]`, fmt.Sprintf("[%q]", role))+
		fmt.Sprintf("resource \"ztna_identity\" \"holder\" {\n  name  = %q\n  roles = [%q]\n}\n", name, role))
	out = strings.Join(strings.Fields(cli.run(false, "plan")), " ")
	if strings.Contains(out, "Warning: Identity roles nobody holds") || strings.Contains(out, "Error") {
		t.Errorf("plan with the services and an identity holding the role warns or fails:\n%s", out)
	}
}

// TestAccServicePolicy_unknownAtPlan: a service name computed by another resource is unknown
// at plan time: no diagnostic then; the apply checks the known value and succeeds, since the
// service exists.
func TestAccServicePolicy_unknownAtPlan(t *testing.T) {
	needController(t)
	name := uniqueName("policy-unknown")
	svc, err := apiClient(t).CreateService(context.Background(), api.ServiceCreate{Name: name + "-svc", Address: "svc.internal.example", Port: 80, RouterRoles: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = apiClient(t).DeleteService(context.Background(), svc.ID) })
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf("resource \"terraform_data\" \"svc\" {\n  input = %q\n}\n", svc.Name) +
				servicePolicyConfig(name, `[terraform_data.svc.output]`, `["integrations"]`),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectUnknownValue("ztna_service_policy.test", tfjsonpath.New("service_names").AtSliceIndex(0))},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("ztna_service_policy.test", tfjsonpath.New("service_names"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(svc.Name)})),
			},
		}},
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
