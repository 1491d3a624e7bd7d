package azure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/sizing"
	"golang.org/x/crypto/ssh"
)

// NSG rule priorities (lower wins; custom rules use 100-4096). The deny rules take the last
// two slots so every allow precedes them, and both precede Azure's default rules (65000+),
// among them AllowVnetInBound and AllowInternetOutBound, which they override. Azure platform
// DNS (168.63.129.16) is not subject to NSG rules, so resolution keeps working.
const (
	PriorityFirstAllow   = 100
	PriorityDenyOutbound = 4095
	PriorityDenyInbound  = 4096
)

// NSGName, NICName and OSDiskName name the objects created for a host.
func NSGName(host string) string    { return host + "-nsg" }
func NICName(host string) string    { return host + "-nic" }
func OSDiskName(host string) string { return host + "-osdisk" }

// securityRules renders the allowlist: one outbound allow per destination and protocol with
// its port ranges, then deny-all outbound and deny-all inbound.
func securityRules(host string, rules []egress.Rule) ([]*armnetwork.SecurityRule, error) {
	type key struct {
		cidr  string
		proto egress.Protocol
	}
	var order []key
	ports := map[key][]*string{}
	names := map[key][]string{}
	for _, r := range rules {
		k := key{r.FirewallCIDR(), r.Protocol}
		if _, ok := ports[k]; !ok {
			order = append(order, k)
		}
		ports[k] = append(ports[k], to.Ptr(r.Ports.String()))
		names[k] = append(names[k], r.Destination)
	}
	if PriorityFirstAllow+len(order) > PriorityDenyOutbound {
		return nil, fmt.Errorf("azure: %d egress rules exceed the NSG's priority range: merge service targets into CIDR ranges", len(order))
	}
	protocols := map[egress.Protocol]armnetwork.SecurityRuleProtocol{egress.TCP: armnetwork.SecurityRuleProtocolTCP, egress.UDP: armnetwork.SecurityRuleProtocolUDP}
	var out []*armnetwork.SecurityRule
	for i, k := range order {
		out = append(out, &armnetwork.SecurityRule{
			Name: to.Ptr(fmt.Sprintf("ztna-egress-%d", i+1)),
			Properties: &armnetwork.SecurityRulePropertiesFormat{
				Description:              to.Ptr(truncate("ztna router host "+host+": egress to "+strings.Join(dedup(names[k]), ", "), 140)),
				Direction:                to.Ptr(armnetwork.SecurityRuleDirectionOutbound),
				Access:                   to.Ptr(armnetwork.SecurityRuleAccessAllow),
				Priority:                 to.Ptr(int32(PriorityFirstAllow + i)),
				Protocol:                 to.Ptr(protocols[k.proto]),
				SourceAddressPrefix:      to.Ptr("*"),
				SourcePortRange:          to.Ptr("*"),
				DestinationAddressPrefix: to.Ptr(k.cidr),
				DestinationPortRanges:    ports[k],
			},
		})
	}
	deny := func(name string, dir armnetwork.SecurityRuleDirection, prio int32, desc string) *armnetwork.SecurityRule {
		return &armnetwork.SecurityRule{Name: to.Ptr(name), Properties: &armnetwork.SecurityRulePropertiesFormat{
			Description: to.Ptr(desc), Direction: to.Ptr(dir), Access: to.Ptr(armnetwork.SecurityRuleAccessDeny),
			Priority: to.Ptr(prio), Protocol: to.Ptr(armnetwork.SecurityRuleProtocolAsterisk),
			SourceAddressPrefix: to.Ptr("*"), SourcePortRange: to.Ptr("*"),
			DestinationAddressPrefix: to.Ptr("*"), DestinationPortRange: to.Ptr("*"),
		}}
	}
	return append(out,
		deny("ztna-deny-all-outbound", armnetwork.SecurityRuleDirectionOutbound, PriorityDenyOutbound, "ztna: deny all other egress"),
		deny("ztna-deny-all-inbound", armnetwork.SecurityRuleDirectionInbound, PriorityDenyInbound, "ztna: router hosts accept no inbound connections"),
	), nil
}

func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

var urnRE = regexp.MustCompile(`^([^:]+):([^:]+):([^:]+):([^:]+)$`)

// imageReference accepts a managed image or gallery image version id, a community or shared
// gallery image id, or a marketplace URN publisher:offer:sku:version.
func imageReference(image string) (*armcompute.ImageReference, error) {
	switch {
	case strings.HasPrefix(strings.ToLower(image), "/subscriptions/"):
		return &armcompute.ImageReference{ID: to.Ptr(image)}, nil
	case strings.HasPrefix(image, "/CommunityGalleries/"):
		return &armcompute.ImageReference{CommunityGalleryImageID: to.Ptr(image)}, nil
	case strings.HasPrefix(image, "/SharedGalleries/"):
		return &armcompute.ImageReference{SharedGalleryImageID: to.Ptr(image)}, nil
	}
	if m := urnRE.FindStringSubmatch(image); m != nil {
		return &armcompute.ImageReference{Publisher: to.Ptr(m[1]), Offer: to.Ptr(m[2]), SKU: to.Ptr(m[3]), Version: to.Ptr(m[4])}, nil
	}
	return nil, fmt.Errorf("azure: image %q is not an image id or a marketplace URN publisher:offer:sku:version", image)
}

// throwawaySSHKey returns an RSA public key whose private half is discarded at once. Azure
// requires a credential for a Linux VM's admin account; a key nobody holds satisfies it
// without opening a login path. RSA because Azure accepts only RSA keys for VM creation.
func throwawaySSHKey() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	return string(ssh.MarshalAuthorizedKey(pub)), nil
}

func azureTags(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = to.Ptr(v)
	}
	return out
}

func tagValues(m map[string]*string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = val(v)
	}
	return out
}

// UpdateTags makes the user tags of every object created for the host tags, in place: the VM
// with a PATCH (VirtualMachines.Update, only its tags), its NIC and NSG with their tags
// operation. A PATCH of tags replaces the whole set, so tags no longer wanted go and the
// ownership tags are written again with the others. The OS disk keeps the tags it was
// created with: the driver holds no disks client.
func (d *Driver) UpdateTags(ctx context.Context, id string, tags map[string]string) error {
	name, err := d.parseID(id)
	if err != nil {
		return err
	}
	t := azureTags(cloud.HostSpec{Name: name, Tags: tags}.AllTags())
	rg := d.opts.ResourceGroup
	p, err := d.vms.BeginUpdate(ctx, rg, name, armcompute.VirtualMachineUpdate{Tags: t}, nil)
	if isNotFound(err) {
		return fmt.Errorf("azure: VM %s: %w", id, cloud.ErrNotFound)
	}
	if _, err := done(ctx, d, "VirtualMachines.Update", p, err); err != nil {
		return err
	}
	if _, err := d.nics.UpdateTags(ctx, rg, NICName(name), armnetwork.TagsObject{Tags: t}, nil); err != nil && !isNotFound(err) {
		return d.apiError("Interfaces.UpdateTags", err)
	}
	if _, err := d.nsgs.UpdateTags(ctx, rg, NSGName(name), armnetwork.TagsObject{Tags: t}, nil); err != nil && !isNotFound(err) {
		return d.apiError("SecurityGroups.UpdateTags", err)
	}
	d.log.DebugContext(ctx, "updated tags", "vm", id, "tags", len(t))
	return nil
}

// Create makes the NSG, the NIC with the NSG, and the VM, in that order, so the VM never
// exists without its firewall. On failure it deletes what it created.
func (d *Driver) Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error) {
	if err := spec.Validate(); err != nil {
		return cloud.Host{}, err
	}
	if err := d.requireGroup(); err != nil {
		return cloud.Host{}, err
	}
	if d.opts.SubnetID == "" {
		return cloud.Host{}, errors.New("azure: subnet_id is empty: set the resource id of the subnet the router host goes in")
	}
	if spec.Image == "" {
		return cloud.Host{}, errors.New("azure: image is empty: set a gallery image version id (for example from the ztna_image data source) or a marketplace URN")
	}
	size, _, err := spec.Size(sizing.Azure)
	if err != nil {
		return cloud.Host{}, err
	}
	ref, err := imageReference(spec.Image)
	if err != nil {
		return cloud.Host{}, err
	}
	rules, err := securityRules(spec.Name, spec.Egress)
	if err != nil {
		return cloud.Host{}, err
	}
	sshKey, err := throwawaySSHKey()
	if err != nil {
		return cloud.Host{}, fmt.Errorf("azure: generate throwaway SSH key: %w", err)
	}
	rg := d.opts.ResourceGroup
	if _, err := d.vms.Get(ctx, rg, spec.Name, nil); err == nil {
		return cloud.Host{}, fmt.Errorf("azure: VM %s already exists in resource group %s: choose another router host name or import it", spec.Name, rg)
	} else if !isNotFound(err) {
		return cloud.Host{}, d.apiError("VirtualMachines.Get", err)
	}
	t := azureTags(spec.AllTags())
	id := d.vmID(spec.Name)
	// Create or update: an NSG or NIC left by an earlier host of this name is overwritten.
	p, err := d.nsgs.BeginCreateOrUpdate(ctx, rg, NSGName(spec.Name), armnetwork.SecurityGroup{
		Location: to.Ptr(d.opts.Location), Tags: t,
		Properties: &armnetwork.SecurityGroupPropertiesFormat{SecurityRules: rules},
	}, nil)
	nsg, err := done(ctx, d, "SecurityGroups.CreateOrUpdate", p, err)
	if err != nil {
		return cloud.Host{}, err
	}
	pn, err := d.nics.BeginCreateOrUpdate(ctx, rg, NICName(spec.Name), armnetwork.Interface{
		Location: to.Ptr(d.opts.Location), Tags: t,
		Properties: &armnetwork.InterfacePropertiesFormat{
			NetworkSecurityGroup: &armnetwork.SecurityGroup{ID: nsg.ID},
			IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{
				Name: to.Ptr("ipconfig1"),
				Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
					Subnet:                    &armnetwork.Subnet{ID: to.Ptr(d.opts.SubnetID)},
					PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic),
				},
			}},
		},
	}, nil)
	nic, err := done(ctx, d, "Interfaces.CreateOrUpdate", pn, err)
	if err != nil {
		return cloud.Host{}, errors.Join(err, d.Delete(ctx, id))
	}
	payload := to.Ptr(base64.StdEncoding.EncodeToString(cloud.UserData(spec.RegistrationKey)))
	vm := armcompute.VirtualMachine{
		Location: to.Ptr(d.opts.Location), Tags: t,
		Properties: &armcompute.VirtualMachineProperties{
			// The key goes in custom data (what cloud-init and the Azure agent consume) and in
			// user data, which the image's unprivileged bootstrap unit reads through IMDS; the
			// agent leaves custom data readable by root only.
			UserData:        payload,
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypes(size))},
			StorageProfile: &armcompute.StorageProfile{
				ImageReference: ref,
				// The OS disk takes the image's size: Azure rejects a disk smaller than the
				// image (Debian's is 30 GiB, above every tier's 20 GiB).
				OSDisk: &armcompute.OSDisk{
					Name: to.Ptr(OSDiskName(spec.Name)), CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage),
					DeleteOption: to.Ptr(armcompute.DiskDeleteOptionTypesDelete),
					ManagedDisk:  &armcompute.ManagedDiskParameters{StorageAccountType: to.Ptr(armcompute.StorageAccountTypesStandardSSDLRS)},
				},
			},
			OSProfile: &armcompute.OSProfile{
				ComputerName:  to.Ptr(spec.Name),
				AdminUsername: to.Ptr(d.opts.AdminUsername),
				CustomData:    payload,
				LinuxConfiguration: &armcompute.LinuxConfiguration{
					DisablePasswordAuthentication: to.Ptr(true),
					SSH: &armcompute.SSHConfiguration{PublicKeys: []*armcompute.SSHPublicKey{{
						Path: to.Ptr("/home/" + d.opts.AdminUsername + "/.ssh/authorized_keys"), KeyData: to.Ptr(sshKey),
					}}},
				},
			},
			NetworkProfile: &armcompute.NetworkProfile{NetworkInterfaces: []*armcompute.NetworkInterfaceReference{{
				ID:         nic.ID,
				Properties: &armcompute.NetworkInterfaceReferenceProperties{Primary: to.Ptr(true), DeleteOption: to.Ptr(armcompute.DeleteOptionsDelete)},
			}}},
		},
	}
	if d.opts.Zone != "" {
		vm.Zones = []*string{to.Ptr(d.opts.Zone)}
	}
	pv, err := d.vms.BeginCreateOrUpdate(ctx, rg, spec.Name, vm, nil)
	if _, err := done(ctx, d, "VirtualMachines.CreateOrUpdate", pv, err); err != nil {
		return cloud.Host{}, errors.Join(err, d.Delete(ctx, id))
	}
	d.log.DebugContext(ctx, "created VM", "vm", id, "size", size)
	return d.Read(ctx, id)
}

func (d *Driver) vmID(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", d.opts.SubscriptionID, d.opts.ResourceGroup, name)
}

var vmIDRE = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/([^/]+)$`)

// parseID checks that id names a VM of the driver's resource group and returns its name.
func (d *Driver) parseID(id string) (string, error) {
	if err := d.requireGroup(); err != nil {
		return "", err
	}
	m := vmIDRE.FindStringSubmatch(id)
	if m == nil || !strings.EqualFold(m[1], d.opts.SubscriptionID) || !strings.EqualFold(m[2], d.opts.ResourceGroup) {
		return "", fmt.Errorf("azure: router host id %q is not a VM of resource group %s: use %s", id, d.opts.ResourceGroup, d.vmID("NAME"))
	}
	return m[3], nil
}

// Read returns the host, or an error wrapping cloud.ErrNotFound when the VM is gone. A missing
// NSG, an NSG detached from the NIC, or an inbound allow rule is reported as drift.
func (d *Driver) Read(ctx context.Context, id string) (cloud.Host, error) {
	name, err := d.parseID(id)
	if err != nil {
		return cloud.Host{}, err
	}
	rg := d.opts.ResourceGroup
	vm, err := d.vms.Get(ctx, rg, name, &armcompute.VirtualMachinesClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView)})
	if err != nil {
		if isNotFound(err) {
			return cloud.Host{}, fmt.Errorf("azure: VM %s: %w", id, cloud.ErrNotFound)
		}
		return cloud.Host{}, d.apiError("VirtualMachines.Get", err)
	}
	h := cloud.Host{ID: id, Name: name, FailureDomain: cloud.FailureDomain{Cloud: string(sizing.Azure), Region: val(vm.Location)},
		Tags: cloud.UserTags(tagValues(vm.Tags))}
	if len(vm.Zones) > 0 {
		h.FailureDomain.Zone = val(vm.Zones[0])
	}
	p := vm.Properties
	if p == nil {
		p = &armcompute.VirtualMachineProperties{}
	}
	if p.HardwareProfile != nil && p.HardwareProfile.VMSize != nil {
		h.InstanceType = string(*p.HardwareProfile.VMSize)
	}
	if p.StorageProfile != nil && p.StorageProfile.ImageReference != nil {
		h.Image = imageString(p.StorageProfile.ImageReference)
	}
	h.State = val(p.ProvisioningState)
	if p.InstanceView != nil {
		for _, s := range p.InstanceView.Statuses {
			if code, ok := strings.CutPrefix(val(s.Code), "PowerState/"); ok {
				h.State = code
			}
		}
	}
	nic, err := d.nics.Get(ctx, rg, NICName(name), nil)
	switch {
	case isNotFound(err):
		h.Drift = append(h.Drift, fmt.Sprintf("network interface %s is missing", NICName(name)))
	case err != nil:
		return cloud.Host{}, d.apiError("Interfaces.Get", err)
	default:
		if ipcs := nic.Properties.IPConfigurations; len(ipcs) > 0 && ipcs[0].Properties != nil {
			h.PrivateAddress = val(ipcs[0].Properties.PrivateIPAddress)
		}
		if g := nic.Properties.NetworkSecurityGroup; g == nil || !strings.EqualFold(last(val(g.ID)), NSGName(name)) {
			h.Drift = append(h.Drift, fmt.Sprintf("network security group %s is detached from %s", NSGName(name), NICName(name)))
		}
	}
	nsg, err := d.nsgs.Get(ctx, rg, NSGName(name), nil)
	switch {
	case isNotFound(err):
		h.Drift = append(h.Drift, fmt.Sprintf("network security group %s is missing", NSGName(name)))
	case err != nil:
		return cloud.Host{}, d.apiError("SecurityGroups.Get", err)
	default:
		for _, r := range nsg.Properties.SecurityRules {
			rp := r.Properties
			if rp != nil && val(rp.Direction) == armnetwork.SecurityRuleDirectionInbound &&
				val(rp.Access) == armnetwork.SecurityRuleAccessAllow {
				h.Drift = append(h.Drift, fmt.Sprintf("network security group %s rule %s allows inbound traffic; router hosts allow none", NSGName(name), val(r.Name)))
			}
		}
	}
	return h, nil
}

func imageString(r *armcompute.ImageReference) string {
	switch {
	case r.ID != nil:
		return *r.ID
	case r.CommunityGalleryImageID != nil:
		return *r.CommunityGalleryImageID
	case r.SharedGalleryImageID != nil:
		return *r.SharedGalleryImageID
	}
	return strings.Join([]string{val(r.Publisher), val(r.Offer), val(r.SKU), val(r.Version)}, ":")
}

// Delete deletes the VM (its OS disk and NIC go with it by their delete options), then the
// NIC if it is still there, then the NSG. Objects already gone are skipped.
func (d *Driver) Delete(ctx context.Context, id string) error {
	name, err := d.parseID(id)
	if err != nil {
		return err
	}
	rg := d.opts.ResourceGroup
	pv, err := d.vms.BeginDelete(ctx, rg, name, nil)
	if !isNotFound(err) {
		if _, err := done(ctx, d, "VirtualMachines.Delete", pv, err); err != nil {
			return err
		}
	}
	pn, err := d.nics.BeginDelete(ctx, rg, NICName(name), nil)
	if !isNotFound(err) {
		if _, err := done(ctx, d, "Interfaces.Delete", pn, err); err != nil {
			return err
		}
	}
	pg, err := d.nsgs.BeginDelete(ctx, rg, NSGName(name), nil)
	if !isNotFound(err) {
		if _, err := done(ctx, d, "SecurityGroups.Delete", pg, err); err != nil {
			return err
		}
	}
	return nil
}

// val dereferences an optional field of an SDK model; nil reads as the zero value.
func val[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ruleKey is what an NSG rule enforces, in one string, so rules compare by effect.
func ruleKey(r *armnetwork.SecurityRule) string {
	p := r.Properties
	if p == nil {
		return val(r.Name) + ": (no properties)"
	}
	ports := []string{val(p.DestinationPortRange)}
	for _, pr := range p.DestinationPortRanges {
		ports = append(ports, val(pr))
	}
	dst := []string{val(p.DestinationAddressPrefix)}
	for _, a := range p.DestinationAddressPrefixes {
		dst = append(dst, val(a))
	}
	src := []string{val(p.SourceAddressPrefix)}
	for _, a := range p.SourceAddressPrefixes {
		src = append(src, val(a))
	}
	return fmt.Sprintf("%s: %s %s %d %s src=%v dst=%v ports=%v", val(r.Name), val(p.Direction), val(p.Access), val(p.Priority),
		val(p.Protocol), strings.Fields(strings.Join(src, " ")), strings.Fields(strings.Join(dst, " ")), strings.Fields(strings.Join(ports, " ")))
}

func ruleKeys(rules []*armnetwork.SecurityRule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = ruleKey(r)
	}
	return out
}

// UpdateEgress makes the host's NSG rules the allowlist, in place: the NSG is put again with
// the new rule list, which Azure applies as one change to the NSG (no window without rules);
// the VM and NIC are not touched.
func (d *Driver) UpdateEgress(ctx context.Context, id string, rules []egress.Rule) error {
	name, err := d.parseID(id)
	if err != nil {
		return err
	}
	want, err := securityRules(name, rules)
	if err != nil {
		return err
	}
	rg := d.opts.ResourceGroup
	nsg, err := d.nsgs.Get(ctx, rg, NSGName(name), nil)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("azure: network security group %s is missing: the host must be replaced", NSGName(name))
		}
		return d.apiError("SecurityGroups.Get", err)
	}
	if len(cloud.EgressDiff("", ruleKeys(want), ruleKeys(nsg.Properties.SecurityRules))) == 0 {
		return nil
	}
	nsg.Properties.SecurityRules = want
	p, err := d.nsgs.BeginCreateOrUpdate(ctx, rg, NSGName(name), nsg.SecurityGroup, nil)
	_, err = done(ctx, d, "SecurityGroups.CreateOrUpdate", p, err)
	return err
}

// EgressDrift lists how the host's NSG rules differ from the allowlist's: rules missing or
// changed, and rules beyond it.
func (d *Driver) EgressDrift(ctx context.Context, id string, rules []egress.Rule) ([]string, error) {
	name, err := d.parseID(id)
	if err != nil {
		return nil, err
	}
	want, err := securityRules(name, rules)
	if err != nil {
		return nil, err
	}
	nsg, err := d.nsgs.Get(ctx, d.opts.ResourceGroup, NSGName(name), nil)
	if isNotFound(err) {
		return nil, nil // Read reports the missing NSG
	}
	if err != nil {
		return nil, d.apiError("SecurityGroups.Get", err)
	}
	return cloud.EgressDiff("network security group "+NSGName(name), ruleKeys(want), ruleKeys(nsg.Properties.SecurityRules)), nil
}
