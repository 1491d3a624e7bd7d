package ztnaprovider

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

// serviceConfig hosts the service on a role named like the service, so that routers other
// tests create (in parallel) never host it.
func serviceConfig(name, address string, port int, extra string) string {
	return fmt.Sprintf(`
resource "ztna_service" "test" {
  name         = %[1]q
  address      = %[2]q
  port         = %[3]d
  router_roles = [%[1]q]
  %[4]s
}
`, name, address, port, extra)
}

func TestAccService_lifecycle(t *testing.T) {
	needController(t)
	name := uniqueName("prod-db")
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: serviceConfig(name, "prod-db.customerdomain.me", 5432, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("protocol"), knownvalue.StringExact("tcp")),
					statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("port_ranges"), knownvalue.SetSizeExact(0)),
					statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("failure_domains"), knownvalue.SetSizeExact(0)),
				},
				Check: resource.TestCheckResourceAttrWith("ztna_service.test", "id", capture(&id)),
			},
			{
				ResourceName:      "ztna_service.test",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// An import block, then plan: a no-op.
				ResourceName:    "ztna_service.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
			},
			{
				// -generate-config-out writes HCL that plans as a no-op import.
				ResourceName:    "ztna_service.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				GenerateConfig:  true,
			},
			{
				Config: serviceConfig(name, "10.20.30.40", 15432, `port_ranges = ["8000-8010", "9000-9000"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_service.test", plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("id"), knownvalue.StringFunc(func(v string) error {
						if v != id {
							return fmt.Errorf("service was recreated (id %s → %s) instead of updated in place", id, v)
						}
						return nil
					})),
					statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("port_ranges"), knownvalue.SetExact([]knownvalue.Check{
						knownvalue.StringExact("8000-8010"), knownvalue.StringExact("9000-9000"),
					})),
				},
			},
			{
				// Deleted through the API: the next plan creates it again.
				PreConfig: func() {
					if err := apiClient(t).DeleteService(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				},
				Config: serviceConfig(name, "10.20.30.40", 15432, `port_ranges = ["8000-8010", "9000-9000"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_service.test", plancheck.ResourceActionCreate)},
				},
			},
		},
		CheckDestroy: checkDestroyed(t, "ztna_service", (*apiclient.Client).GetService),
	})
}

// TestAccService_hostingRouters: the routers selected by role show up in the computed
// routers list once they exist.
func TestAccService_hostingRouters(t *testing.T) {
	needController(t)
	role := uniqueName("role")
	config := fmt.Sprintf(`
resource "ztna_router" "a" {
  name  = %[1]q
  roles = [%[3]q]
}
resource "ztna_service" "test" {
  name         = %[2]q
  address      = "prod-db.customerdomain.me"
  port         = 5432
  router_roles = [%[3]q]
  depends_on   = [ztna_router.a]
}
`, uniqueName("edge"), uniqueName("svc"), role)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("ztna_service.test", tfjsonpath.New("routers"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"status":    knownvalue.StringExact(api.RouterUnenrolled),
						"reachable": knownvalue.Bool(false),
					}),
				})),
			},
		}},
	})
}

// TestAccService_redundancy runs terraform itself (the warning is only in its output) with real
// routers: no router → warning; one online router in failure domain test/a → warning naming it,
// and its health report of the real target is refreshed into the service; a second router in
// test/b → no warning.
func TestAccService_redundancy(t *testing.T) {
	t.Parallel()
	needController(t)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	role := uniqueName("redundant")
	cli := newTerraformCLI(t, fmt.Sprintf(`
resource "ztna_router" "a" {
  name  = "%[1]s-a"
  roles = [%[1]q]
}
resource "ztna_router" "b" {
  name  = "%[1]s-b"
  roles = [%[1]q]
}
resource "ztna_registration_key" "a" {
  router_id = ztna_router.a.id
}
resource "ztna_registration_key" "b" {
  router_id = ztna_router.b.id
}
resource "ztna_service" "test" {
  name         = %[1]q
  address      = "127.0.0.1"
  port         = %[2]d
  router_roles = [%[1]q]
  depends_on   = [ztna_router.a, ztna_router.b]
}
output "key_a" {
  value     = ztna_registration_key.a.key
  sensitive = true
}
output "key_b" {
  value     = ztna_registration_key.b.key
  sensitive = true
}
output "router_a" {
  value = ztna_router.a.id
}
output "router_b" {
  value = ztna_router.b.id
}
output "health" {
  value = join(",", [for r in ztna_service.test.routers : "${r.router_name}=${r.status}/${r.reachable}"])
}
`, role, target.Addr().(*net.TCPAddr).Port))
	plan := func() string { return strings.Join(strings.Fields(cli.run(false, "plan")), " ") }
	const warning = "Warning: Service is not redundant"

	out := strings.Join(strings.Fields(cli.run(false, "apply", "-auto-approve")), " ")
	// At plan time the routers do not exist yet.
	for _, want := range []string{warning, "no reported failure domain: no router has one of the roles " + role, "at least two distinct failure domains"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	a := enrollRouter(t, cli.output("key_a"), "test/a")
	a.start()
	waitRouterStatus(t, cli.output("router_a"), api.RouterOnline)
	if out := plan(); !strings.Contains(out, warning) || !strings.Contains(out, "only failure domain test/a: routers ") ||
		!strings.Contains(out, role+"-b") {
		t.Errorf("with one router online, plan lacks the warning:\n%s", out)
	}
	// The router checks the real target every second; the refresh brings its report into state.
	want := role + "-a=online/true"
	deadline := time.Now().Add(30 * time.Second)
	for {
		cli.run(false, "apply", "-refresh-only", "-auto-approve")
		if h := cli.output("health"); strings.Contains(h, want) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("service health %q never showed %q", h, want)
		}
		time.Sleep(time.Second)
	}

	b := enrollRouter(t, cli.output("key_b"), "test/b")
	b.start()
	waitRouterStatus(t, cli.output("router_b"), api.RouterOnline)
	// Only the health output changes (router b's report); no resource does.
	if out := plan(); strings.Contains(out, warning) || strings.Contains(out, "Plan:") {
		t.Errorf("with routers in two failure domains, plan still warns or changes resources:\n%s", out)
	}
	a.stop()
	b.stop()
	cli.run(false, "destroy", "-auto-approve")
}

func TestAccService_badInput(t *testing.T) {
	for name, tc := range map[string]struct {
		address string
		port    int
		extra   string
		want    []string
	}{
		"fqdn":       {"prod_db..customerdomain.me", 5432, "", []string{"Invalid address", "neither an IP address nor a valid DNS name"}},
		"url":        {"https://prod-db.customerdomain.me", 5432, "", []string{"Invalid address"}},
		"port 0":     {"prod-db.customerdomain.me", 0, "", []string{"Invalid port", "port must be a port between 1 and 65535"}},
		"port big":   {"prod-db.customerdomain.me", 70000, "", []string{"Invalid port"}},
		"range":      {"prod-db.customerdomain.me", 5432, `port_ranges = ["9000-8000"]`, []string{"Invalid port_ranges", "starts after it ends"}},
		"protocol":   {"prod-db.customerdomain.me", 5432, `protocol = "sctp"`, []string{"Invalid protocol", `use "tcp"`}},
		"udp":        {"prod-db.customerdomain.me", 5432, `protocol = "udp"`, []string{"Invalid protocol", "not carried yet", `declare protocol "tcp"`}},
		"role":       {"prod-db.customerdomain.me", 5432, `router_roles = ["Customer A"]`, []string{"Invalid router_roles", "must be a role"}},
		"empty role": {"prod-db.customerdomain.me", 5432, `router_roles = []`, []string{"router_roles", "at least 1"}},
	} {
		t.Run(name, func(t *testing.T) {
			config := serviceConfig("svc", tc.address, tc.port, "")
			if tc.extra != "" {
				if strings.HasPrefix(tc.extra, "router_roles") {
					config = strings.Replace(config, `router_roles = ["svc"]`, tc.extra, 1)
				} else {
					config = serviceConfig("svc", tc.address, tc.port, tc.extra)
				}
			}
			planFails(t, config, tc.want...)
		})
	}
}
