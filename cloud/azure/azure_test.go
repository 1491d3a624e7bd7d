package azure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/azure/azurefake"
	"github.com/ztna/ztna/cloud/internal/clouddrivertest"
)

const (
	sub    = "00000000-0000-0000-0000-000000000001"
	subnet = "/subscriptions/" + sub + "/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/routers"
	image  = "/subscriptions/" + sub + "/resourceGroups/images/providers/Microsoft.Compute/galleries/ztna/images/router/versions/1.2.0"
)

func newFake() *azurefake.Server {
	fake := azurefake.New(sub)
	fake.AddResourceGroup("routers")
	fake.AddSubnet(subnet)
	fake.AddImageSource(image)
	return fake
}

func newTestDriver(t *testing.T, fake *azurefake.Server, edit func(*Options)) *Driver {
	t.Helper()
	opts := Options{
		SubscriptionID: sub, ResourceGroup: "routers", Location: "westeurope", SubnetID: subnet, Zone: "2",
		Credential: fake.Credential(), ClientOptions: fake.ClientOptions(), PollInterval: time.Millisecond,
	}
	if edit != nil {
		edit(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testSpec(t *testing.T, tier string) cloud.HostSpec {
	t.Helper()
	return clouddrivertest.Spec(t, tier, image)
}

// The exact NSG: allows per destination and protocol, deny-all outbound after them, deny-all
// inbound as the only inbound rule.
const wantRules = `ztna-egress-1 Outbound Allow 100 Tcp 10.20.0.0/16 [5432]
ztna-egress-2 Outbound Allow 101 Tcp 0.0.0.0/0 [8000-8100 80 443 6262]
ztna-egress-3 Outbound Allow 102 Udp 0.0.0.0/0 [80 443 6262]
ztna-deny-all-outbound Outbound Deny 4095 * * [*]
ztna-deny-all-inbound Inbound Deny 4096 * * [*]`

func renderRules(rules []*armnetwork.SecurityRule) string {
	var lines []string
	for _, r := range rules {
		p := r.Properties
		ports := val(p.DestinationPortRange)
		for _, pr := range p.DestinationPortRanges {
			ports = strings.TrimSpace(ports + " " + *pr)
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %d %s %s [%s]", *r.Name, *p.Direction, *p.Access, *p.Priority, *p.Protocol, *p.DestinationAddressPrefix, ports))
	}
	return strings.Join(lines, "\n")
}

func TestCreateReadDelete(t *testing.T) {
	for _, tt := range []struct{ tier, wantSize string }{{"low-med", "Standard_F2s_v2"}, {"med", "Standard_F4s_v2"}, {"high", "Standard_F8s_v2"}} {
		t.Run(tt.tier, func(t *testing.T) {
			fake := newFake()
			d := newTestDriver(t, fake, nil)
			ctx := context.Background()
			h := clouddrivertest.Create(t, d, testSpec(t, tt.tier))
			if h.ID != d.vmID("edge-a") || h.InstanceType != tt.wantSize || h.PrivateAddress == "" || h.Image != image || h.State != "running" ||
				h.FailureDomain != (cloud.FailureDomain{Cloud: "azure", Region: "westeurope", Zone: "2"}) || len(h.Drift) != 0 {
				t.Fatalf("host = %+v", h)
			}
			nsg := fake.NSGs()["routers/edge-a-nsg"]
			if got := renderRules(nsg.Properties.SecurityRules); got != wantRules {
				t.Errorf("NSG rules:\n%s\nwant:\n%s", got, wantRules)
			}
			nic := fake.NICs()["routers/edge-a-nic"]
			if !strings.EqualFold(*nic.Properties.NetworkSecurityGroup.ID, *nsg.ID) || *nic.Properties.IPConfigurations[0].Properties.Subnet.ID != subnet {
				t.Errorf("NIC = %+v", nic.Properties)
			}
			vm := fake.VMs()["routers/edge-a"]
			osp := vm.Properties.OSProfile
			if !*osp.LinuxConfiguration.DisablePasswordAuthentication || osp.AdminPassword != nil || *vm.Tags["team"] != "platform" ||
				*vm.Tags[cloud.TagRouterHost] != "edge-a" || *vm.Zones[0] != "2" {
				t.Errorf("VM = %+v", vm)
			}
			if err := d.Delete(ctx, h.ID); err != nil {
				t.Fatal(err)
			}
			if n, i, g := len(fake.VMs()), len(fake.NICs()), len(fake.NSGs()); n+i+g != 0 {
				t.Errorf("after delete: %d VMs, %d NICs, %d NSGs", n, i, g)
			}
			clouddrivertest.CheckGone(t, d, h.ID)
		})
	}
}

// The key travels once, base64 in the VM's customData and userData, and nowhere else.
func TestKeyOnlyInCustomData(t *testing.T) {
	fake := newFake()
	d := newTestDriver(t, fake, nil)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	if err := d.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	encoded := base64.StdEncoding.EncodeToString(cloud.UserData(clouddrivertest.Key))
	sent := 0
	for _, r := range fake.Requests() {
		if strings.Contains(r.Body, clouddrivertest.Key) || strings.Contains(r.URL, clouddrivertest.Key) {
			t.Errorf("key in clear in %s %s", r.Method, r.URL)
		}
		if strings.Contains(r.Body, encoded) {
			sent++
			rest := strings.Replace(strings.Replace(r.Body, `"customData":"`+encoded+`"`, "", 1), `"userData":"`+encoded+`"`, "", 1)
			if !strings.Contains(r.URL, "/virtualMachines/edge-a") || strings.Contains(rest, encoded) || len(rest) != len(r.Body)-2*len(encoded)-len(`"customData":""`)-len(`"userData":""`) {
				t.Errorf("key outside customData/userData: %s %s", r.Method, r.URL)
			}
		}
	}
	if sent != 1 {
		t.Errorf("key sent %d times, want once", sent)
	}
}

func TestDrift(t *testing.T) {
	fake := newFake()
	d := newTestDriver(t, fake, nil)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	fake.AddInboundRuleOutOfBand("routers", "edge-a-nsg", &armnetwork.SecurityRule{Name: to.Ptr("ssh"), Properties: &armnetwork.SecurityRulePropertiesFormat{
		Direction: to.Ptr(armnetwork.SecurityRuleDirectionInbound), Access: to.Ptr(armnetwork.SecurityRuleAccessAllow), Priority: to.Ptr(int32(300)),
		Protocol: to.Ptr(armnetwork.SecurityRuleProtocolTCP), DestinationAddressPrefix: to.Ptr("*"), DestinationPortRange: to.Ptr("22"),
	}})
	got, err := d.Read(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Drift) != 1 || !strings.Contains(got.Drift[0], "rule ssh allows inbound") {
		t.Errorf("drift = %q", got.Drift)
	}
	fake.DeleteVMOutOfBand("routers", "edge-a")
	if _, err := d.Read(ctx, h.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("Read of deleted VM: %v", err)
	}
	// Recreate after drift overwrites the leftover NSG, so the added rule is gone.
	if _, err := d.Create(ctx, testSpec(t, "med")); err != nil {
		t.Fatal(err)
	}
	if got := renderRules(fake.NSGs()["routers/edge-a-nsg"].Properties.SecurityRules); got != wantRules {
		t.Errorf("NSG after recreate:\n%s", got)
	}
	if _, err := d.Create(ctx, testSpec(t, "med")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate create: %v", err)
	}
	if _, err := d.Read(ctx, "/subscriptions/"+sub+"/resourceGroups/other/providers/Microsoft.Compute/virtualMachines/x"); err == nil || !strings.Contains(err.Error(), "not a VM of resource group routers") {
		t.Errorf("foreign id: %v", err)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*azurefake.Server)
		edit   func(*Options)
		code   string
		want   string
	}{
		{"quota", func(f *azurefake.Server) { f.Fail("VirtualMachines.CreateOrUpdate", 409, "OperationNotAllowed", true) }, nil, "OperationNotAllowed", "Usage + quotas"},
		{"unknown subnet", nil, func(o *Options) { o.SubnetID = strings.Replace(subnet, "routers", "nope", 1) }, "InvalidResourceReference", "check subnet_id"},
		{"permission denied", func(f *azurefake.Server) { f.Fail("SecurityGroups.CreateOrUpdate", 403, "AuthorizationFailed", false) }, nil, "AuthorizationFailed", "Network Contributor"},
		{"no resource group", nil, func(o *Options) { o.ResourceGroup = "missing" }, "ResourceGroupNotFound", "create it or fix resource_group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			if tt.inject != nil {
				tt.inject(fake)
			}
			d := newTestDriver(t, fake, tt.edit)
			_, err := d.Create(context.Background(), testSpec(t, "med"))
			clouddrivertest.CheckAPIError(t, err, tt.code, tt.want)
			if n, i, g := len(fake.VMs()), len(fake.NICs()), len(fake.NSGs()); n+i+g != 0 {
				t.Errorf("failed create left %d VMs, %d NICs, %d NSGs", n, i, g)
			}
		})
	}
}

func TestImageReference(t *testing.T) {
	tests := []struct{ in, want string }{
		{image, image},
		{"Debian:debian-12:12-gen2:latest", "Debian:debian-12:12-gen2:latest"},
		{"/CommunityGalleries/ztna-123/Images/router/Versions/1.0.0", "/CommunityGalleries/ztna-123/Images/router/Versions/1.0.0"},
	}
	for _, tt := range tests {
		ref, err := imageReference(tt.in)
		if err != nil || imageString(ref) != tt.want {
			t.Errorf("imageReference(%q) = %v, %v", tt.in, ref, err)
		}
	}
	if _, err := imageReference("debian-12"); err == nil || !strings.Contains(err.Error(), "publisher:offer:sku:version") {
		t.Errorf("bad image: %v", err)
	}
}

// TestEgressInPlace: the NSG's rules follow the allowlist (one put of the NSG), the VM and
// NIC untouched, and an outbound allow-all added out of band is drift the next update removes.
func TestEgressInPlace(t *testing.T) {
	fake := newFake()
	d := newTestDriver(t, fake, nil)
	h := clouddrivertest.CheckEgressUpdate(t, d, testSpec(t, "low-med"))
	got := renderRules(fake.NSGs()["routers/edge-a-nsg"].Properties.SecurityRules)
	if !strings.Contains(got, "Tcp 10.30.0.5/32 [8443]") || strings.Contains(got, "8000-8100") {
		t.Fatalf("NSG rules after the update:\n%s", got)
	}
	vmPuts := 0
	for _, r := range fake.Requests() {
		if r.Method == "PUT" && (strings.Contains(r.URL, "/virtualMachines/") || strings.Contains(r.URL, "/networkInterfaces/")) {
			vmPuts++
		}
	}
	if vmPuts != 2 {
		t.Errorf("%d VM and NIC puts, want the 2 of Create", vmPuts)
	}
	clouddrivertest.CheckDriftRepaired(t, d, h.ID, clouddrivertest.ChangedEgress(t), func() {
		fake.AddInboundRuleOutOfBand("routers", "edge-a-nsg", &armnetwork.SecurityRule{Name: to.Ptr("allow-all-out"), Properties: &armnetwork.SecurityRulePropertiesFormat{
			Direction: to.Ptr(armnetwork.SecurityRuleDirectionOutbound), Access: to.Ptr(armnetwork.SecurityRuleAccessAllow), Priority: to.Ptr(int32(90)),
			Protocol: to.Ptr(armnetwork.SecurityRuleProtocolAsterisk), SourceAddressPrefix: to.Ptr("*"), SourcePortRange: to.Ptr("*"),
			DestinationAddressPrefix: to.Ptr("*"), DestinationPortRange: to.Ptr("*"),
		}})
	}, "allow-all-out: Outbound Allow 90")
}

// TestUpdateTags: tags change in place with a PATCH of the VM's tags and the tags operation of
// its NIC and NSG (each replaces the whole set, the ownership tags written again); nothing
// is put or deleted.
func TestUpdateTags(t *testing.T) {
	fake := newFake()
	d := newTestDriver(t, fake, nil)
	spec := testSpec(t, "low-med")
	spec.Tags = map[string]string{"team": "platform", "cost-centre": "17"}
	clouddrivertest.CheckTagUpdate(t, d, spec)
	for what, tags := range map[string]map[string]*string{
		"VM": fake.VMs()["routers/edge-a"].Tags, "NIC": fake.NICs()["routers/edge-a-nic"].Tags, "NSG": fake.NSGs()["routers/edge-a-nsg"].Tags,
	} {
		got := tagValues(tags)
		want := map[string]string{"team": "edge", "owner": "netops", cloud.TagRouterHost: "edge-a", cloud.TagManagedBy: cloud.ManagedBy}
		if !maps.Equal(got, want) {
			t.Errorf("%s tags = %v, want %v", what, got, want)
		}
	}
	patches, puts := 0, 0
	for _, r := range fake.Requests() {
		switch r.Method {
		case "PATCH":
			patches++
		case "PUT", "DELETE":
			puts++
		}
	}
	if patches != 3 {
		t.Errorf("%d PATCH calls, want 3 (VM, NIC, NSG)", patches)
	}
	if puts != 3 {
		t.Errorf("%d PUT/DELETE calls, want the 3 puts of Create", puts)
	}
	err := d.UpdateTags(context.Background(), d.vmID("edge-a"), map[string]string{"bad/name": "x"})
	clouddrivertest.CheckAPIError(t, err, "InvalidTagNameCharacters")
}
