package ztnaprovider

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/aws/ec2fake"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/regkey"
	"github.com/ztna/ztna/router/metadata/metadatatest"
)

// bootEC2 plays the part of EC2's hypervisor for the fake: every instance that reaches
// "running" boots a real ztna-router, which reads its registration key from an IMDSv2 metadata
// fake serving that instance's user data, exactly as the image's first-boot unit does; a
// terminated instance's router is killed.
func bootEC2(t *testing.T, fake *ec2fake.Server) {
	bootVMs(t, func() []bootableVM {
		var vms []bootableVM
		for _, inst := range fake.Instances() {
			if inst.State == "running" {
				userData := inst.UserData
				vms = append(vms, bootableVM{id: inst.ID, source: "aws", imds: func() string { return metadatatest.AWS(t, userData).URL }})
			}
		}
		return vms
	})
}

// useEC2Fake starts an EC2 fake with one subnet and one router image, and gives the AWS SDK
// static test credentials (and nothing from this machine's AWS configuration).
func useEC2Fake(t *testing.T) *ec2fake.Server {
	fake := ec2fake.New("eu-west-1")
	t.Cleanup(fake.Close)
	fake.AddSubnet(ec2fake.Subnet{ID: "subnet-1", VpcID: "vpc-1", Zone: "eu-west-1b", CIDR: "10.0.0.0/24"})
	fake.AddImage(ec2fake.Image{ID: "ami-router", Name: "ztna-router-1.0", Owner: "123456789012", RootDevice: "/dev/xvda", Architecture: "x86_64", State: "available"})
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_EC2": fake.URL,
	} {
		t.Setenv(k, v)
	}
	return fake
}

// awsHostConfig is a host of size "med" unless sizing says otherwise (`instance_type = "..."`).
func awsHostConfig(name, endpoint, sizing string) string {
	if sizing == "" {
		sizing = `size = "med"`
	}
	return hostRouterConfig(name, true) + fmt.Sprintf(`
resource "ztna_service" "db" {
  name         = "%[1]s-db"
  address      = "10.20.0.7"
  port         = 5432
  router_roles = [%[1]q]
}

resource "ztna_router_host" "test" {
  name                        = %[1]q
  router_id                   = ztna_router.test.id
  registration_key_wo         = ephemeral.ztna_registration_key.test.key
  registration_key_wo_version = 1
  %[3]s
  image                       = "ami-router"
  dns_servers                 = ["10.0.0.2"]
  ntp_servers                 = ["10.0.0.123"]
  egress {
    destination = "169.254.169.123"
    protocol    = "udp"
    ports       = "123"
  }
  aws {
    region        = "eu-west-1"
    subnet_id     = "subnet-1"
    endpoint      = %[2]q
    poll_interval = "20ms"
  }
  tags = {
    team = "platform"
  }
  timeouts {
    create = "2m"
  }
  depends_on = [ztna_service.db]
}
`, name, endpoint, sizing)
}

// TestAccRouterHost_aws runs the AWS platform's Terraform path against the EC2 fake (real
// aws-sdk-go-v2 wire format): the security group has no ingress and exactly the allowlist,
// the instance has the tier's type and the key only in user data, the router booted from that
// user data comes online, a second plan is empty, an ingress rule added out of band replaces
// the host (with a fresh write-only key), import works, and destroy removes everything.
func TestAccRouterHost_aws(t *testing.T) {
	needController(t)
	fake := useEC2Fake(t)
	bootEC2(t, fake)
	name := hostTestName("edge-aws")
	config := awsHostConfig(name, fake.URL, "")
	withCache := config + fmt.Sprintf(`
resource "ztna_service" "cache" {
  name         = "%[1]s-cache"
  address      = "10.20.0.9"
  port         = 6379
  router_roles = [%[1]q]
}
`, name)
	retagged := strings.Replace(withCache, `team = "platform"`, "team  = \"edge\"\n    owner = \"netops\"", 1)
	fake.AddGroup(ec2fake.Group{ID: "sg-0123456789abcdef0", Name: "monitoring", VpcID: "vpc-1"})
	withGroup := strings.Replace(retagged, `poll_interval = "20ms"`, "poll_interval = \"20ms\"\n    security_group_ids = [\"sg-0123456789abcdef0\"]", 1)
	var first string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_type"), knownvalue.StringExact("c6i.xlarge")),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("failure_domain"), knownvalue.StringExact("aws/eu-west-1/eu-west-1b")),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("private_address"), knownvalue.StringRegexp(regexpMustHost)),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", capture(&first)),
					checkAWSHost(t, fake, name, "c6i.xlarge"),
					checkCloudRouterOnline(t),
					checkNoKeyInState,
				),
			},
			{
				// A service is added; the host was planned before it existed on the controller.
				Config: withCache,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionNoop)},
				},
				ExpectNonEmptyPlan: true,
			},
			{
				// The next plan updates the security group in place: same instance, new rule.
				Config: withCache,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", same(&first)),
					checkGroupEgress(t, fake, name, "tcp 6379-6379 10.20.0.9/32", true),
					checkCloudRouterOnline(t),
				),
			},
			{
				// An allow-all egress rule added out of band is drift, revoked in place.
				PreConfig: func() {
					fake.AddEgressOutOfBand(hostGroup(t, fake, name).ID, ec2fake.Permission{Protocol: "-1", Ranges: []ec2fake.Range{{CIDR: "0.0.0.0/0"}}})
				},
				Config: withCache,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("firewall_drift"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", same(&first)),
					checkGroupEgress(t, fake, name, "-1 0-0 0.0.0.0/0", false),
				),
			},
			{
				// Tags change in place: same instance; instance, volume and group retagged.
				Config: retagged,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", same(&first)),
					checkAWSTags(fake, &first, map[string]string{"team": "edge", "owner": "netops"}),
				),
			},
			{
				// A tag changed in the console is read back and planned as an in-place update.
				PreConfig: func() { fake.SetInstanceTagOutOfBand(first, "team", "someone-else") },
				Config:    retagged,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", same(&first)),
					checkAWSTags(fake, &first, map[string]string{"team": "edge", "owner": "netops"}),
				),
			},
			{
				// An extra security group is attached in place: same instance, both groups.
				Config: withGroup,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionUpdate), onlyUpdates{}},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", same(&first)),
					checkInstanceGroups(fake, &first, "sg-0123456789abcdef0"),
					checkCloudRouterOnline(t),
				),
			},
			{
				// A group EC2 does not know fails the apply with EC2's error; the host is kept.
				Config:      strings.Replace(withGroup, "sg-0123456789abcdef0", "sg-0123456789abcdef9", 1),
				ExpectError: regexp.MustCompile(`InvalidGroup\.NotFound`),
			},
			{
				// An ingress rule opened in the console breaks the egress-only model: drift,
				// and the host is replaced (enrolling with a fresh key from the ephemeral resource).
				PreConfig: func() {
					g := hostGroup(t, fake, name)
					fake.AddIngressOutOfBand(g.ID, ec2fake.Permission{Protocol: "tcp", From: 22, To: 22, Ranges: []ec2fake.Range{{CIDR: "0.0.0.0/0"}}})
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "instance_id", func(v string) error {
						if v == first {
							return fmt.Errorf("instance %s was not replaced", v)
						}
						for _, inst := range fake.Instances() {
							if inst.ID == first && inst.State != "terminated" {
								return fmt.Errorf("replaced instance %s is %s", first, inst.State)
							}
						}
						return nil
					}),
					checkAWSHost(t, fake, name, "c6i.xlarge"),
					checkCloudRouterOnline(t),
				),
			},
			{
				// An explicit instance type instead of a tier: a new host of that type.
				Config: awsHostConfig(name, fake.URL, `instance_type = "c6i.4xlarge"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionDestroyBeforeCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_type"), knownvalue.StringExact("c6i.4xlarge")),
				},
				Check: resource.ComposeTestCheckFunc(checkAWSHost(t, fake, name, "c6i.4xlarge"), checkCloudRouterOnline(t)),
			},
			{
				ResourceName:      "ztna_router_host.test",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{"router_id", "registration_key_wo_version", "dns_servers", "ntp_servers", "egress",
					"egress_allowlist", "timeouts", "aws.subnet_id", "aws.endpoint", "aws.poll_interval"},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			for _, g := range fake.Groups() {
				if g.Tags[cloud.TagManagedBy] == cloud.ManagedBy {
					return fmt.Errorf("security group left after destroy: %+v", g)
				}
			}
			for _, inst := range fake.Instances() {
				if inst.State != "terminated" {
					return fmt.Errorf("instance %s is %s after destroy", inst.ID, inst.State)
				}
			}
			return nil
		},
	})
}

var regexpMustHost = regexp.MustCompile(`^10\.0\.\d+\.\d+$`)

// hostGroup is the security group the driver created for host name.
func hostGroup(t *testing.T, fake *ec2fake.Server, name string) ec2fake.Group {
	t.Helper()
	for _, g := range fake.Groups() {
		if g.Tags[cloud.TagRouterHost] == name {
			return g
		}
	}
	t.Fatalf("no security group for host %s: %+v", name, fake.Groups())
	return ec2fake.Group{}
}

// checkAWSHost checks what the driver made in the fake for the host in state.
func checkAWSHost(t *testing.T, fake *ec2fake.Server, name, instanceType string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		attrs := s.RootModule().Resources["ztna_router_host.test"].Primary.Attributes
		var inst *ec2fake.Instance
		for _, i := range fake.Instances() {
			if i.ID == attrs["instance_id"] {
				inst = &i
			}
		}
		if inst == nil || inst.State != "running" {
			return fmt.Errorf("instance %s not running in the fake: %+v", attrs["instance_id"], inst)
		}
		if inst.Type != instanceType || inst.HTTPTokens != "required" || inst.ImageID != "ami-router" || inst.SubnetID != "subnet-1" {
			return fmt.Errorf("instance = %+v", inst)
		}
		if !strings.HasPrefix(inst.UserData, regkey.Prefix) {
			return fmt.Errorf("user data does not carry the registration key: %.20q", inst.UserData)
		}
		for k, v := range inst.Tags {
			if strings.Contains(k+v, regkey.Prefix) {
				return fmt.Errorf("registration key in instance tag %s", k)
			}
		}
		if inst.Tags["team"] != "platform" || inst.Tags[cloud.TagRouterHost] != name {
			return fmt.Errorf("instance tags = %v", inst.Tags)
		}
		var live []ec2fake.Group
		for _, g := range fake.Groups() {
			if g.Tags[cloud.TagRouterHost] == name {
				live = append(live, g)
			}
		}
		if len(live) != 1 || len(inst.Groups) != 1 || inst.Groups[0] != live[0].ID {
			return fmt.Errorf("groups of host %s: %+v (instance has %v)", name, live, inst.Groups)
		}
		g := live[0]
		if len(g.Ingress) != 0 {
			return fmt.Errorf("security group %s has ingress rules: %+v", g.ID, g.Ingress)
		}
		var got []string
		for _, p := range g.Egress {
			for _, r := range p.Ranges {
				got = append(got, fmt.Sprintf("%s %s:%d-%d", p.Protocol, r.CIDR, p.From, p.To))
			}
		}
		// Every allowlist rule, and nothing else, is in the group.
		var want []string
		for i := 0; ; i++ {
			rule, ok := attrs[fmt.Sprintf("egress_allowlist.%d", i)]
			if !ok {
				break
			}
			proto, dest, _ := strings.Cut(rule, " ")
			cidr, ports, _ := strings.Cut(dest, ":")
			from, to, isRange := strings.Cut(ports, "-")
			if !isRange {
				to = from
			}
			want = append(want, fmt.Sprintf("%s %s:%s-%s", proto, cidr, from, to))
		}
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("egress rules of %s:\n%v\nwant the allowlist:\n%v", g.ID, slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
		}
		for _, must := range []string{"tcp 10.20.0.7/32:5432-5432", "udp 10.0.0.2/32:53-53", "udp 169.254.169.123/32:123-123", "udp 10.0.0.123/32:123-123"} {
			if !slices.Contains(want, must) {
				return fmt.Errorf("allowlist %v lacks %s", want, must)
			}
		}
		return nil
	}
}

// checkCloudRouterOnline: the router booted on the host came online and reported, from
// instance metadata, the same failure domain string as ztna_router_host.failure_domain.
func checkCloudRouterOnline(t *testing.T) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		host := s.RootModule().Resources["ztna_router_host.test"].Primary.Attributes
		id := host["router_id"]
		r, err := apiClient(t).GetRouter(context.Background(), id)
		if err != nil {
			return err
		}
		if r.Status != api.RouterOnline || r.FailureDomain != host["failure_domain"] {
			return fmt.Errorf("router %s: status %q, failure domain %q; want online in the host's %q", id, r.Status, r.FailureDomain, host["failure_domain"])
		}
		return nil
	}
}

func checkNoKeyInState(s *terraform.State) error {
	for addr, rs := range s.RootModule().Resources {
		for k, v := range rs.Primary.Attributes {
			if strings.Contains(v, regkey.Prefix) {
				return fmt.Errorf("state of %s has a registration key in %s", addr, k)
			}
		}
	}
	return nil
}

// TestAccRouterHost_awsErrors: EC2 refusing the instance (quota) fails the apply with what to
// change, and leaves no security group behind.
func TestAccRouterHost_awsErrors(t *testing.T) {
	needController(t)
	for _, tc := range []struct {
		name, action, code, message string
		want                        []string
	}{
		{"quota", "RunInstances", "InstanceLimitExceeded", "You have requested more instances (21) than your current instance limit of 20 allows.",
			[]string{"Cannot create router host", "InstanceLimitExceeded", "Service Quotas"}},
		{"permission", "CreateSecurityGroup", "UnauthorizedOperation", "You are not authorized to perform this operation.",
			[]string{"UnauthorizedOperation", "lack permission for ec2:CreateSecurityGroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := useEC2Fake(t)
			fake.Fail(tc.action, 400, tc.code, tc.message)
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      awsHostConfig(hostTestName("edge-aws-err"), fake.URL, ""),
					ExpectError: expectError(tc.want...),
				}},
				CheckDestroy: func(*terraform.State) error {
					if gs := fake.Groups(); len(gs) != 0 {
						return fmt.Errorf("a failed create left security groups: %+v", gs)
					}
					return nil
				},
			})
		})
	}
}

// same checks that an attribute still has the value captured earlier.
func same(was *string) func(string) error {
	return func(v string) error {
		if v != *was {
			return fmt.Errorf("changed from %q to %q: the host was replaced", *was, v)
		}
		return nil
	}
}

// checkGroupEgress checks whether the host's security group has an egress rule (rendered
// "protocol from-to cidr").
func checkGroupEgress(t *testing.T, fake *ec2fake.Server, name, rule string, want bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		var have []string
		for _, p := range hostGroup(t, fake, name).Egress {
			for _, r := range p.Ranges {
				have = append(have, fmt.Sprintf("%s %d-%d %s", p.Protocol, p.From, p.To, r.CIDR))
			}
		}
		if slices.Contains(have, rule) != want {
			return fmt.Errorf("security group egress %v: has %q = %v, want %v", have, rule, !want, want)
		}
		return nil
	}
}

// checkAWSTags checks the user tags of the instance *id, its root volume and its security
// group (ownership tags aside).
func checkAWSTags(fake *ec2fake.Server, id *string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, inst := range fake.Instances() {
			if inst.ID != *id {
				continue
			}
			got := map[string]map[string]string{"instance": cloud.UserTags(inst.Tags, "Name"), "volume": cloud.UserTags(inst.VolumeTags, "Name")}
			for _, g := range fake.Groups() {
				if g.Tags[aws.TagInstanceID] == inst.ID {
					got["security group"] = cloud.UserTags(g.Tags, "Name", aws.TagInstanceID)
				}
			}
			if len(got) != 3 {
				return fmt.Errorf("no security group of instance %s", inst.ID)
			}
			for what, tags := range got {
				if !maps.Equal(tags, want) {
					return fmt.Errorf("%s tags %v, want %v", what, tags, want)
				}
			}
			return nil
		}
		return fmt.Errorf("no instance %s", *id)
	}
}

// checkInstanceGroups checks that instance *id has its own group and exactly the extra ones.
func checkInstanceGroups(fake *ec2fake.Server, id *string, extra ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, inst := range fake.Instances() {
			if inst.ID == *id {
				if len(inst.Groups) != 1+len(extra) || !slices.Equal(inst.Groups[1:], extra) {
					return fmt.Errorf("instance %s groups %v, want its own and %v", inst.ID, inst.Groups, extra)
				}
				return nil
			}
		}
		return fmt.Errorf("no instance %s", *id)
	}
}
