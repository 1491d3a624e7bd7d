package ztnaprovider

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"google.golang.org/protobuf/proto"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/gcp"
	"github.com/ztna/ztna/cloud/gcp/computefake"
	"github.com/ztna/ztna/internal/regkey"
	"github.com/ztna/ztna/router/metadata/metadatatest"
)

// bootGCE boots a router on every running instance of the Compute Engine fake, from a GCE
// metadata fake serving the instance's ztna-registration-key item.
func bootGCE(t *testing.T, fake *computefake.Server) {
	bootVMs(t, func() []bootableVM {
		var vms []bootableVM
		for _, inst := range fake.Instances() {
			if inst.GetStatus() != "RUNNING" {
				continue
			}
			attrs := map[string]string{}
			for _, item := range inst.GetMetadata().GetItems() {
				attrs[item.GetKey()] = item.GetValue()
			}
			// The numeric id, unique per creation as on GCP: a VM deleted and created again
			// under its name (a replacement) is a new machine that boots afresh.
			vms = append(vms, bootableVM{id: fmt.Sprintf("%s#%d", inst.GetSelfLink(), inst.GetId()), source: "gcp", imds: func() string { return metadatatest.GCP(t, attrs).URL }})
		}
		return vms
	})
}

func gcpHostConfig(name, endpoint string) string {
	return hostRouterConfig(name, true) + fmt.Sprintf(`
resource "ztna_router_host" "test" {
  name                        = %[1]q
  router_id                   = ztna_router.test.id
  registration_key_wo         = ephemeral.ztna_registration_key.test.key
  registration_key_wo_version = 1
  image                       = "projects/prod/global/images/ztna-router-1-2-0"
  gcp {
    project      = "prod"
    zone         = "europe-west1-b"
    subnetwork   = "routers"
    endpoint     = %[2]q
    access_token = "ya29.test-token"
  }
  timeouts {
    create = "2m"
  }
}
`, name, endpoint)
}

// TestAccRouterHost_gcp runs the GCP platform's Terraform path against the Compute Engine fake
// (the real REST client): default tier e2-standard-2, the key only in instance metadata, a
// deny-all ingress rule ahead of everything and no ingress allow, the router booted from the
// metadata comes online; the write-only access token is not in state and a new one changes
// nothing; a service added later reaches the firewall in place (same instance) and a rule
// widened out of band is patched back; a firewall rule deleted out of band replaces the host;
// destroy removes the instance and every rule.
func TestAccRouterHost_gcp(t *testing.T) {
	needController(t)
	fake := computefake.New()
	t.Cleanup(fake.Close)
	fake.AddNetwork("projects/prod/global/networks/default")
	fake.AddSubnetwork("projects/prod/regions/europe-west1/subnetworks/routers")
	fake.AddImage("prod", &computepb.Image{Name: proto.String("ztna-router-1-2-0"), Family: proto.String("ztna-router")})
	bootGCE(t, fake)
	// Refresh and destroy take their token from the environment (gcp.access_token is write-only).
	t.Setenv(EnvGCPAccessToken, "ya29.env-token")
	name := hostTestName("edge-gcp")
	config := gcpHostConfig(name, fake.URL)
	withSvc := config + fmt.Sprintf(`
resource "ztna_service" "api" {
  name         = "%[1]s-api"
  address      = "10.40.0.3"
  port         = 443
  router_roles = [%[1]q]
}
`, name)
	withLabels := strings.Replace(withSvc, "  timeouts {", "  tags = {\n    team = \"edge\"\n  }\n  timeouts {", 1)
	fake.AddImage("prod", &computepb.Image{Name: proto.String("ztna-router-1-3-0"), Family: proto.String("ztna-router")})
	var first string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_type"), knownvalue.StringExact("e2-standard-2")),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("failure_domain"), knownvalue.StringExact("gcp/europe-west1/europe-west1-b")),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_id"),
						knownvalue.StringExact("projects/prod/zones/europe-west1-b/instances/"+name)),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("id"),
						knownvalue.StringExact("gcp:projects/prod/zones/europe-west1-b/instances/"+name)),
					// Write-only: the token never rests in state.
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("gcp").AtMapKey("access_token"), knownvalue.Null()),
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "failure_domain", capture(&first)),
					checkGCPHost(fake, name),
					checkCloudRouterOnline(t),
					checkNoKeyInState,
				),
			},
			{
				// A new access token (gcloud's last an hour) changes nothing.
				Config: strings.Replace(config, "ya29.test-token", "ya29.next-hour", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionNoop)},
				},
			},
			{
				// A service is added; the host was planned before it existed on the controller.
				Config: withSvc,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionNoop)},
				},
				ExpectNonEmptyPlan: true,
			},
			{
				// The next plan adds its firewall rule in place: same instance.
				Config: withSvc,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(
					checkGCPInstanceCreates(fake, 1),
					checkGCPEgressTo(fake, name, "10.40.0.3/32", "tcp:443"),
					checkCloudRouterOnline(t),
				),
			},
			{
				// An allow rule widened out of band to everything is drift, patched back in place.
				PreConfig: func() {
					for _, fw := range fake.Firewalls() {
						if fw.GetName() == "ztna-"+name+"-egress-1" {
							fw.Allowed = []*computepb.Allowed{{IPProtocol: proto.String("all")}}
							fake.AddFirewallOutOfBand("prod", fw)
						}
					}
				},
				Config: withSvc,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("firewall_drift"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(checkGCPInstanceCreates(fake, 1), checkGCPEgressTo(fake, name, "10.40.0.3/32", "tcp:443")),
			},
			{
				// Labels change in place (instances.setLabels): same instance, new labels.
				Config: withLabels,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(checkGCPInstanceCreates(fake, 1), checkGCPLabels(fake, map[string]string{"team": "edge"})),
			},
			{
				// Labels changed out of band are read back and planned as an in-place update.
				PreConfig: func() {
					fake.SetLabelsOutOfBand("prod", "europe-west1-b", name, map[string]string{"team": "someone-else", cloud.TagRouterHost: name, cloud.TagManagedBy: cloud.ManagedBy})
				},
				Config: withLabels,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(checkGCPInstanceCreates(fake, 1), checkGCPLabels(fake, map[string]string{"team": "edge"})),
			},
			{
				// A label GCP would refuse fails at plan time.
				Config:      strings.Replace(withLabels, `team = "edge"`, `Team = "Edge"`, 1),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid GCP labels.*is not a valid label`),
			},
			{
				// A new image needs a new VM.
				Config: strings.Replace(withLabels, "ztna-router-1-2-0", "ztna-router-1-3-0", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: resource.ComposeTestCheckFunc(checkGCPInstanceCreates(fake, 2), checkGCPLabels(fake, map[string]string{"team": "edge"}), checkCloudRouterOnline(t)),
			},
			{
				PreConfig: func() { fake.DeleteFirewallOutOfBand("prod", "ztna-"+name+"-deny-ingress") },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: resource.ComposeTestCheckFunc(checkGCPHost(fake, name), checkCloudRouterOnline(t)),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if n := len(fake.Instances()); n != 0 {
				return fmt.Errorf("%d instances left after destroy", n)
			}
			if fws := fake.Firewalls(); len(fws) != 0 {
				return fmt.Errorf("firewall rules left after destroy: %v", fws)
			}
			return nil
		},
	})
}

// checkGCPHost checks the instance and firewall rules the driver made in the fake.
func checkGCPHost(fake *computefake.Server, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		insts := fake.Instances()
		if len(insts) != 1 {
			return fmt.Errorf("%d instances, want 1", len(insts))
		}
		inst := insts[0]
		tag := gcp.NetworkTag(name)
		if !strings.HasSuffix(inst.GetMachineType(), "/e2-standard-2") || len(inst.GetTags().GetItems()) != 1 || inst.GetTags().GetItems()[0] != tag {
			return fmt.Errorf("instance machine type %s, tags %v", inst.GetMachineType(), inst.GetTags().GetItems())
		}
		var key string
		for _, item := range inst.GetMetadata().GetItems() {
			if item.GetKey() == cloud.RegistrationKeyMetadataKey {
				key = item.GetValue()
			}
		}
		if !strings.HasPrefix(key, regkey.Prefix) {
			return fmt.Errorf("metadata item %s does not carry the key", cloud.RegistrationKeyMetadataKey)
		}
		for k, v := range inst.GetLabels() {
			if strings.Contains(k+v, key) {
				return fmt.Errorf("registration key in label %s", k)
			}
		}
		denyIngress := false
		for _, fw := range fake.Firewalls() {
			if len(fw.GetTargetTags()) != 1 || fw.GetTargetTags()[0] != tag {
				return fmt.Errorf("firewall rule %s targets %v, not only the host's tag", fw.GetName(), fw.GetTargetTags())
			}
			if fw.GetDirection() == "INGRESS" {
				if len(fw.GetAllowed()) > 0 {
					return fmt.Errorf("firewall rule %s allows ingress", fw.GetName())
				}
				denyIngress = fw.GetPriority() == 0 && len(fw.GetDenied()) == 1 && fw.GetDenied()[0].GetIPProtocol() == "all"
			}
		}
		if !denyIngress {
			return fmt.Errorf("no deny-all ingress rule at priority 0 among %d rules", len(fake.Firewalls()))
		}
		return nil
	}
}

// checkGCPInstanceCreates checks how many instances.insert calls the fake has seen.
func checkGCPInstanceCreates(fake *computefake.Server, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "POST" && strings.Contains(r.Path, "/instances") && !strings.Contains(r.Path, "/setLabels") {
				n++
			}
		}
		if n != want {
			return fmt.Errorf("%d instance inserts, want %d: the host was replaced", n, want)
		}
		return nil
	}
}

// checkGCPEgressTo checks that the host has exactly one allow rule of destination cidr, and
// that it allows just what (protocol:ports).
func checkGCPEgressTo(fake *computefake.Server, name, cidr, what string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		var found []string
		for _, fw := range fake.Firewalls() {
			if !strings.HasPrefix(fw.GetName(), "ztna-"+name+"-egress-") {
				continue
			}
			var allowed []string
			for _, a := range fw.GetAllowed() {
				allowed = append(allowed, a.GetIPProtocol()+":"+strings.Join(a.GetPorts(), ","))
			}
			if strings.Join(fw.GetDestinationRanges(), ",") == cidr {
				found = append(found, strings.Join(allowed, " "))
			}
			if slices.ContainsFunc(fw.GetAllowed(), func(a *computepb.Allowed) bool { return a.GetIPProtocol() == "all" }) {
				return fmt.Errorf("rule %s allows all protocols", fw.GetName())
			}
		}
		if len(found) != 1 || found[0] != what {
			return fmt.Errorf("allow rules to %s: %v, want [%s]", cidr, found, what)
		}
		return nil
	}
}

// checkGCPLabels checks the one instance's labels: want plus the ownership labels.
func checkGCPLabels(fake *computefake.Server, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		insts := fake.Instances()
		if len(insts) != 1 {
			return fmt.Errorf("%d instances, want 1", len(insts))
		}
		got := cloud.UserTags(insts[0].GetLabels())
		if !maps.Equal(got, want) || insts[0].GetLabels()[cloud.TagManagedBy] != cloud.ManagedBy {
			return fmt.Errorf("instance labels %v, want %v and the ownership labels", insts[0].GetLabels(), want)
		}
		return nil
	}
}
