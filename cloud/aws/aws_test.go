package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/aws/ec2fake"
	"github.com/ztna/ztna/cloud/internal/clouddrivertest"
)

func newTestDriver(t *testing.T) (*Driver, *ec2fake.Server) {
	t.Helper()
	fake := ec2fake.New("eu-west-1")
	t.Cleanup(fake.Close)
	fake.AddSubnet(ec2fake.Subnet{ID: "subnet-1", VpcID: "vpc-1", Zone: "eu-west-1b", CIDR: "10.0.0.0/24"})
	fake.AddImage(ec2fake.Image{ID: "ami-router", Name: "ztna-router-1.0", Owner: "123456789012", RootDevice: "/dev/xvda", Architecture: "x86_64"})
	cfg := awssdk.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:  http.DefaultClient,
	}
	d := NewFromConfig(cfg, Options{Endpoint: fake.URL, PollInterval: time.Millisecond, Timeout: 5 * time.Second, SubnetID: "subnet-1"})
	return d, fake
}

func testSpec(t *testing.T, tier string) cloud.HostSpec {
	t.Helper()
	return clouddrivertest.Spec(t, tier, "ami-router")
}

func TestCreateReadDelete(t *testing.T) {
	for _, tt := range []struct{ tier, wantType string }{{"low-med", "c6i.large"}, {"med", "c6i.xlarge"}, {"high", "c6i.2xlarge"}} {
		t.Run(tt.tier, func(t *testing.T) {
			d, fake := newTestDriver(t)
			ctx := context.Background()
			h := clouddrivertest.Create(t, d, testSpec(t, tt.tier))
			want := cloud.Host{ID: h.ID, Name: "edge-a", InstanceType: tt.wantType, PrivateAddress: h.PrivateAddress, Image: "ami-router",
				FailureDomain: cloud.FailureDomain{Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1b"}, State: "running"}
			if h.PrivateAddress == "" || !equalHost(h, want) {
				t.Fatalf("host = %+v, want %+v", h, want)
			}
			insts := fake.Instances()
			if len(insts) != 1 {
				t.Fatalf("%d instances", len(insts))
			}
			inst := insts[0]
			if inst.Type != tt.wantType || inst.HTTPTokens != "required" || inst.HopLimit != 1 || inst.RootVolumeGiB != 20 || !inst.RootEncrypted {
				t.Errorf("instance = %+v", inst)
			}
			if inst.UserData != clouddrivertest.Key+"\n" {
				t.Errorf("user data = %q, want the key", inst.UserData)
			}
			if inst.Tags["team"] != "platform" || inst.Tags[cloud.TagRouterHost] != "edge-a" || inst.VolumeTags[cloud.TagManagedBy] != "ztna" {
				t.Errorf("tags = %v, volume tags = %v", inst.Tags, inst.VolumeTags)
			}

			groups := fake.Groups()
			if len(groups) != 1 || !slices.Equal(inst.Groups, []string{groups[0].ID}) {
				t.Fatalf("groups = %+v, instance groups %v", groups, inst.Groups)
			}
			g := groups[0]
			if len(g.Ingress) != 0 {
				t.Errorf("ingress rules exist: %+v", g.Ingress)
			}
			if got := renderPerms(g.Egress); got != wantEgress {
				t.Errorf("egress rules:\n%s\nwant:\n%s", got, wantEgress)
			}
			if g.Tags[TagInstanceID] != h.ID || g.Name != "ztna-router-edge-a" {
				t.Errorf("group = %+v", g)
			}

			if err := d.Delete(ctx, h.ID); err != nil {
				t.Fatal(err)
			}
			if len(fake.Groups()) != 0 {
				t.Errorf("groups left after delete: %+v", fake.Groups())
			}
			if st := fake.Instances()[0].State; st != "terminated" {
				t.Errorf("instance state after delete = %s", st)
			}
			clouddrivertest.CheckGone(t, d, h.ID)
		})
	}
}

// The allow-all default egress is gone; every rule is an allowlist entry, in the allowlist's
// order. Name destinations are any-address on their exact ports.
const wantEgress = `tcp 5432-5432 10.20.0.0/16 (ztna egress 10.20.0.0/16)
tcp 8000-8100 0.0.0.0/0 (ztna egress api.internal.example)
tcp 80-80 0.0.0.0/0 (ztna egress ctrl.example.com)
tcp 443-443 0.0.0.0/0 (ztna egress ctrl.example.com)
tcp 6262-6262 0.0.0.0/0 (ztna egress ctrl.example.com)
udp 80-80 0.0.0.0/0 (ztna egress ctrl.example.com)
udp 443-443 0.0.0.0/0 (ztna egress ctrl.example.com)
udp 6262-6262 0.0.0.0/0 (ztna egress ctrl.example.com)`

func renderPerms(ps []ec2fake.Permission) string {
	var lines []string
	for _, p := range ps {
		for _, r := range p.Ranges {
			lines = append(lines, strings.Join([]string{p.Protocol, itoa(p.From) + "-" + itoa(p.To), r.CIDR, "(" + r.Description + ")"}, " "))
		}
	}
	return strings.Join(lines, "\n")
}

func itoa(i int) string { return strconv.Itoa(i) }

func equalHost(a, b cloud.Host) bool {
	return a.ID == b.ID && a.Name == b.Name && a.InstanceType == b.InstanceType && a.PrivateAddress == b.PrivateAddress &&
		a.Image == b.Image && a.FailureDomain == b.FailureDomain && a.State == b.State && len(a.Drift) == len(b.Drift)
}

// The registration key travels only in RunInstances' UserData: never in another request,
// parameter, tag or name.
func TestKeyOnlyInUserData(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	if err := d.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	encoded := base64.StdEncoding.EncodeToString(cloud.UserData(clouddrivertest.Key))
	found := 0
	for _, r := range fake.Requests() {
		for k, vs := range r.Params {
			for _, v := range vs {
				if strings.Contains(v, clouddrivertest.Key) || strings.Contains(v, "s3cr3t") {
					t.Errorf("%s parameter %s carries the key in clear", r.Action, k)
				}
				if strings.Contains(v, encoded) {
					if r.Action != "RunInstances" || k != "UserData" {
						t.Errorf("%s parameter %s carries the key", r.Action, k)
					}
					found++
				}
			}
		}
	}
	if found != 1 {
		t.Fatalf("key sent %d times in user data, want once", found)
	}
}

func TestDrift(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	fake.AddIngressOutOfBand(fake.Groups()[0].ID, ec2fake.Permission{Protocol: "tcp", From: 22, To: 22, Ranges: []ec2fake.Range{{CIDR: "0.0.0.0/0"}}})
	got, err := d.Read(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Drift) != 1 || !strings.Contains(got.Drift[0], "1 ingress rule") {
		t.Errorf("drift = %q, want the ingress rule reported", got.Drift)
	}
	fake.SetInstanceState(h.ID, "terminated")
	if _, err := d.Read(ctx, h.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Read of terminated instance: %v, want ErrNotFound", err)
	}
	// Delete after out-of-band termination still removes the security group.
	if err := d.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Groups()); n != 0 {
		t.Errorf("%d groups left", n)
	}
	if _, err := d.Read(ctx, "i-doesnotexist"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Read of unknown instance: %v, want ErrNotFound", err)
	}
}

// A host recreated after its instance vanished out of band reuses the name: the stale group
// is replaced instead of failing on a duplicate name.
func TestRecreateAfterDrift(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	fake.SetInstanceState(h.ID, "terminated")
	h2 := clouddrivertest.Create(t, d, testSpec(t, "med"))
	if h2.ID == h.ID || len(fake.Groups()) != 1 {
		t.Fatalf("recreate: host %s, groups %+v", h2.ID, fake.Groups())
	}
	// A live host with the same name is not clobbered.
	if _, err := d.Create(ctx, testSpec(t, "med")); err == nil || !strings.Contains(err.Error(), "choose another name") {
		t.Fatalf("duplicate live host: err = %v", err)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name, action, code string
		status             int
		want               []string
	}{
		{"quota", "RunInstances", "VcpuLimitExceeded", 400, []string{"VcpuLimitExceeded", "Service Quotas", "smaller size tier"}},
		{"unknown subnet", "DescribeSubnets", "InvalidSubnetID.NotFound", 400, []string{"check subnet_id", "eu-west-1"}},
		{"permission denied", "CreateSecurityGroup", "UnauthorizedOperation", 403, []string{"ec2:CreateSecurityGroup", "IAM policy"}},
		{"unknown image", "DescribeImages", "InvalidAMIID.NotFound", 400, []string{"check the image"}},
		{"capacity", "RunInstances", "InsufficientInstanceCapacity", 500, []string{"another zone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fake := newTestDriver(t)
			fake.Fail(tt.action, tt.status, tt.code, "simulated")
			_, err := d.Create(context.Background(), testSpec(t, "med"))
			clouddrivertest.CheckAPIError(t, err, tt.code, tt.want...)
			// Nothing is left behind by a failed create.
			if g := fake.Groups(); len(g) != 0 {
				t.Errorf("groups left: %+v", g)
			}
			for _, i := range fake.Instances() {
				if i.State != "terminated" {
					t.Errorf("instance left: %+v", i)
				}
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	d, _ := newTestDriver(t)
	tests := []struct {
		name string
		edit func(*cloud.HostSpec)
		want string
	}{
		{"bad tier", func(s *cloud.HostSpec) { s.Tier = "xl" }, `use one of "low-med", "med", "high"`},
		{"tier and type", func(s *cloud.HostSpec) { s.InstanceType = "c6i.large" }, "set only one"},
		{"no key", func(s *cloud.HostSpec) { s.RegistrationKey = "" }, "registration key is empty"},
		{"key in tags", func(s *cloud.HostSpec) { s.Tags["k"] = clouddrivertest.Key }, "remove it from the tags"},
		{"bad name", func(s *cloud.HostSpec) { s.Name = "Edge_A" }, "router host name"},
		{"no image", func(s *cloud.HostSpec) { s.Image = "" }, "image is empty"},
		{"no egress", func(s *cloud.HostSpec) { s.Egress = nil }, "egress allowlist is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec(t, "med")
			tt.edit(&spec)
			if _, err := d.Create(context.Background(), spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestEgressInPlace: the security group's egress rules follow the allowlist through
// Authorize/RevokeSecurityGroupEgress, the instance untouched, and an out-of-band allow-all
// egress rule is drift that the next update revokes.
func TestEgressInPlace(t *testing.T) {
	d, fake := newTestDriver(t)
	h := clouddrivertest.CheckEgressUpdate(t, d, testSpec(t, "low-med"))
	if n := len(fake.Instances()); n != 1 {
		t.Fatalf("%d instances after the egress update, want the one", n)
	}
	g := fake.Groups()[0]
	got := renderPerms(g.Egress)
	if !strings.Contains(got, "tcp 8443-8443 10.30.0.5/32") || strings.Contains(got, "8000-8100") {
		t.Fatalf("egress rules after the update:\n%s", got)
	}
	clouddrivertest.CheckDriftRepaired(t, d, h.ID, clouddrivertest.ChangedEgress(t), func() {
		fake.AddEgressOutOfBand(g.ID, ec2fake.Permission{Protocol: "-1", Ranges: []ec2fake.Range{{CIDR: "0.0.0.0/0"}}})
	}, "security group "+g.ID+" allows egress all 0.0.0.0/0")
	runs := 0
	for _, r := range fake.Requests() {
		switch r.Action {
		case "RunInstances":
			runs++
		case "TerminateInstances", "ModifyInstanceAttribute", "StopInstances":
			t.Errorf("the egress update called %s", r.Action)
		}
	}
	if runs != 1 {
		t.Errorf("%d RunInstances calls, want 1", runs)
	}
}

// TestUpdateTags: tags change in place on the instance, its root volume and its security
// group (DeleteTags for a key no longer wanted, CreateTags for the rest); the ownership tags,
// Name and the group's instance tag stay; no instance is launched or terminated.
func TestUpdateTags(t *testing.T) {
	d, fake := newTestDriver(t)
	spec := testSpec(t, "low-med")
	spec.Tags = map[string]string{"team": "platform", "cost-centre": "17"}
	h := clouddrivertest.CheckTagUpdate(t, d, spec)
	inst := fake.Instances()[0]
	g := fake.Groups()[0]
	for what, tags := range map[string]map[string]string{"instance": inst.Tags, "volume": inst.VolumeTags, "group": g.Tags} {
		if tags["team"] != "edge" || tags["owner"] != "netops" || tags[cloud.TagRouterHost] != "edge-a" || tags[cloud.TagManagedBy] != cloud.ManagedBy {
			t.Errorf("%s tags = %v", what, tags)
		}
		if _, ok := tags["cost-centre"]; ok {
			t.Errorf("%s keeps the removed tag: %v", what, tags)
		}
	}
	if inst.Tags["Name"] != "edge-a" || g.Tags[TagInstanceID] != h.ID {
		t.Errorf("instance tags %v, group tags %v: Name or the instance tag is gone", inst.Tags, g.Tags)
	}
	if n := len(fake.Instances()); n != 1 || fake.Instances()[0].State != "running" {
		t.Errorf("instances after the tag update: %+v, want the one, running", fake.Instances())
	}
	var calls []string
	for _, r := range fake.Requests() {
		if r.Action == "CreateTags" || r.Action == "DeleteTags" {
			calls = append(calls, r.Action+" "+strings.Join(slices.Sorted(slices.Values(r.Params["ResourceId.1"])), ","))
		}
	}
	if len(calls) != 3 || calls[1] != "DeleteTags "+h.ID || calls[2] != "CreateTags "+h.ID {
		t.Errorf("tag calls %v: want Create's group tag, then one DeleteTags and one CreateTags over instance, volume and group", calls)
	}
}

// TestFakeTagRules: the fake refuses what EC2 refuses, so the driver cannot rely on more.
func TestFakeTagRules(t *testing.T) {
	d, _ := newTestDriver(t)
	h := clouddrivertest.Create(t, d, testSpec(t, "low-med"))
	ctx := context.Background()
	err := d.UpdateTags(ctx, h.ID, map[string]string{"aws:cloudformation:stack": "x"})
	clouddrivertest.CheckAPIError(t, err, "InvalidParameterValue", "reserved")
	many := map[string]string{}
	for i := range 49 {
		many["k"+itoa(i)] = "v"
	}
	err = d.UpdateTags(ctx, h.ID, many)
	clouddrivertest.CheckAPIError(t, err, "TagLimitExceeded")
}

// TestSecurityGroups: extra security groups are attached beside the host's own at launch,
// read back, changed in place with ModifyInstanceAttribute, and one EC2 does not know (or in
// another VPC) is refused with InvalidGroup.NotFound.
func TestSecurityGroups(t *testing.T) {
	d, fake := newTestDriver(t)
	fake.AddGroup(ec2fake.Group{ID: "sg-0123456789abcdef0", Name: "monitoring", VpcID: "vpc-1"})
	fake.AddGroup(ec2fake.Group{ID: "sg-0123456789abcdef1", Name: "backup", VpcID: "vpc-1"})
	fake.AddGroup(ec2fake.Group{ID: "sg-0123456789abcdef2", Name: "elsewhere", VpcID: "vpc-2"})
	d.extraGroups = []string{"sg-0123456789abcdef0"}
	h := clouddrivertest.Create(t, d, testSpec(t, "low-med"))
	if !slices.Equal(h.SecurityGroups, []string{"sg-0123456789abcdef0"}) || len(h.Drift) != 0 {
		t.Fatalf("created host: groups %v, drift %v", h.SecurityGroups, h.Drift)
	}
	ctx := context.Background()
	if err := d.UpdateSecurityGroups(ctx, h.ID, []string{"sg-0123456789abcdef1"}); err != nil {
		t.Fatal(err)
	}
	after, err := d.Read(ctx, h.ID)
	if err != nil || !slices.Equal(after.SecurityGroups, []string{"sg-0123456789abcdef1"}) || len(after.Drift) != 0 {
		t.Fatalf("after the update: groups %v, drift %v, %v", after.SecurityGroups, after.Drift, err)
	}
	if inst := fake.Instances()[0]; len(inst.Groups) != 2 || inst.State != "running" {
		t.Errorf("instance %+v: want its own group and the new one, running", inst)
	}
	for _, sg := range []string{"sg-0123456789abcdef9", "sg-0123456789abcdef2"} {
		err := d.UpdateSecurityGroups(ctx, h.ID, []string{sg})
		clouddrivertest.CheckAPIError(t, err, "InvalidGroup.NotFound", sg)
	}
}
