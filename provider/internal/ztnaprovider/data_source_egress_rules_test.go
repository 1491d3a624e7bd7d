package ztnaprovider

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/api"
)

func rule(dest, proto string, from, to int64) knownvalue.Check {
	return knownvalue.ObjectPartial(map[string]knownvalue.Check{
		"destination": knownvalue.StringExact(dest),
		"protocol":    knownvalue.StringExact(proto),
		"from_port":   knownvalue.Int64Exact(from),
		"to_port":     knownvalue.Int64Exact(to),
	})
}

// controllerRules are the six rules for a controller host on the brief's ports.
func controllerRules(host string) []knownvalue.Check {
	var out []knownvalue.Check
	for _, proto := range []string{"tcp", "udp"} {
		for _, p := range []int64{80, 443, 6262} {
			out = append(out, rule(host, proto, p, p))
		}
	}
	return out
}

// TestAccEgressRulesDataSource_controllerOnly needs no controller: the host is given.
func TestAccEgressRulesDataSource_controllerOnly(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `data "ztna_egress_rules" "t" {
  controller_host = "Controller.Example.com"
  dns_servers     = ["10.0.0.2"]
  ntp_servers     = ["Time.Example.com", "10.0.0.3"]
}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.ztna_egress_rules.t", tfjsonpath.New("rules"), knownvalue.ListExact(append([]knownvalue.Check{
					rule("10.0.0.2/32", "tcp", 53, 53), rule("10.0.0.2/32", "udp", 53, 53),
					rule("10.0.0.3/32", "udp", 123, 123),
				}, append(controllerRules("controller.example.com"), rule("time.example.com", "udp", 123, 123))...))),
				statecheck.ExpectKnownValue("data.ztna_egress_rules.t", tfjsonpath.New("rules").AtSliceIndex(3).AtMapKey("firewall_cidr"), knownvalue.StringExact("0.0.0.0/0")),
			},
		}},
	})
}

// TestAccEgressRulesDataSource_serviceTargets: the targets of services hosted by the given
// roles are added; services of other roles are not.
func TestAccEgressRulesDataSource_serviceTargets(t *testing.T) {
	needController(t)
	role := uniqueName("role")
	addr, err := url.Parse(controller.Env["ZTNA_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	host, err := egress.NormalizeDestination(addr.Hostname())
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`
resource "ztna_service" "db" {
  name         = %[1]q
  address      = "10.1.2.3"
  port         = 5432
  port_ranges  = ["6000-6010", "6011-6020"]
  router_roles = [%[3]q]
}
resource "ztna_service" "other" {
  name         = %[2]q
  address      = "other.customerdomain.me"
  port         = 22
  router_roles = ["someone-else"]
}
data "ztna_egress_rules" "t" {
  router_roles = [%[3]q]
  depends_on   = [ztna_service.db, ztna_service.other]
}
`, uniqueName("db"), uniqueName("other"), role)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.ztna_egress_rules.t", tfjsonpath.New("rules"), knownvalue.ListExact(append([]knownvalue.Check{
					rule("10.1.2.3/32", api.ProtocolTCP, 5432, 5432),
					rule("10.1.2.3/32", api.ProtocolTCP, 6000, 6020), // adjacent ranges merged
				}, controllerRules(host)...))),
			},
		}},
	})
}
