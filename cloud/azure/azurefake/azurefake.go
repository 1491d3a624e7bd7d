// Package azurefake is an in-memory Azure Resource Manager for the calls ztna makes, built on
// the SDK's own fake servers (armcompute/v6/fake, armnetwork/v6/fake): requests and responses
// go through the real JSON wire format, long-running operations through real pollers. Tests
// pass ClientOptions() to the driver; every request body is recorded.
package azurefake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	computefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	networkfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"
)

// Request is one API call as received.
type Request struct{ Method, URL, Body string }

type failure struct {
	status int
	code   string
	async  bool
}

// Server holds the fake's state.
type Server struct {
	Subscription string

	mu       sync.Mutex
	nsgs     map[string]*armnetwork.SecurityGroup // key rg/name
	nics     map[string]*armnetwork.Interface
	vms      map[string]*armcompute.VirtualMachine
	subnets  map[string]bool
	groups   map[string]bool                            // resource groups
	images   map[string][]string                        // location/publisher/offer/sku → versions
	sources  map[string]bool                            // image ids usable as gallery sources
	defs     map[string]bool                            // rg/gallery/image definitions
	versions map[string]*armcompute.GalleryImageVersion // rg/gallery/image/version
	failures map[string]failure
	requests []Request
	seq      int

	transport *dispatch
}

// New returns an empty fake for subscription.
func New(subscription string) *Server {
	s := &Server{
		Subscription: subscription,
		nsgs:         map[string]*armnetwork.SecurityGroup{}, nics: map[string]*armnetwork.Interface{},
		vms: map[string]*armcompute.VirtualMachine{}, subnets: map[string]bool{}, groups: map[string]bool{},
		images: map[string][]string{}, sources: map[string]bool{}, defs: map[string]bool{},
		versions: map[string]*armcompute.GalleryImageVersion{}, failures: map[string]failure{},
	}
	s.transport = &dispatch{
		s: s,
		compute: computefake.NewServerFactoryTransport(&computefake.ServerFactory{
			VirtualMachinesServer: computefake.VirtualMachinesServer{
				BeginCreateOrUpdate: s.createVM, Get: s.getVM, BeginDelete: s.deleteVM, BeginUpdate: s.updateVM,
			},
			VirtualMachineImagesServer: computefake.VirtualMachineImagesServer{List: s.listImages},
			GalleryImageVersionsServer: computefake.GalleryImageVersionsServer{BeginCreateOrUpdate: s.createVersion, Get: s.getVersion},
		}),
		network: networkfake.NewServerFactoryTransport(&networkfake.ServerFactory{
			SecurityGroupsServer: networkfake.SecurityGroupsServer{BeginCreateOrUpdate: s.createNSG, Get: s.getNSG, BeginDelete: s.deleteNSG, UpdateTags: s.updateNSGTags},
			InterfacesServer:     networkfake.InterfacesServer{BeginCreateOrUpdate: s.createNIC, Get: s.getNIC, BeginDelete: s.deleteNIC, UpdateTags: s.updateNICTags},
		}),
	}
	return s
}

// ClientOptions route a client's requests to the fake.
func (s *Server) ClientOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: s.transport}}
}

// Credential is a token credential the fake accepts.
func (s *Server) Credential() azcore.TokenCredential { return &azfake.TokenCredential{} }

// dispatch sends Microsoft.Network requests to the network fakes and the rest to compute, and
// records every request.
type dispatch struct {
	s                *Server
	compute, network interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (d *dispatch) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	d.s.mu.Lock()
	d.s.requests = append(d.s.requests, Request{req.Method, req.URL.String(), string(body)})
	d.s.mu.Unlock()
	if strings.Contains(req.URL.Path, "/providers/Microsoft.Network/") {
		return d.network.Do(req)
	}
	return d.compute.Do(req)
}

// AddResourceGroup registers a resource group.
func (s *Server) AddResourceGroup(name string) { s.mu.Lock(); s.groups[name] = true; s.mu.Unlock() }

// AddSubnet registers a subnet by resource id.
func (s *Server) AddSubnet(id string) {
	s.mu.Lock()
	s.subnets[strings.ToLower(id)] = true
	s.mu.Unlock()
}

// AddMarketplaceImage registers marketplace image versions.
func (s *Server) AddMarketplaceImage(location, publisher, offer, sku string, versions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(strings.Join([]string{location, publisher, offer, sku}, "/"))
	s.images[k] = append(s.images[k], versions...)
}

// AddImageSource registers an image resource id (managed image, gallery version) that gallery
// image versions can be created from and VMs booted from.
func (s *Server) AddImageSource(id string) {
	s.mu.Lock()
	s.sources[strings.ToLower(id)] = true
	s.mu.Unlock()
}

// AddGalleryImage registers a gallery image definition.
func (s *Server) AddGalleryImage(rg, gallery, image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defs[strings.ToLower(rg+"/"+gallery+"/"+image)] = true
}

// Fail makes an operation ("VirtualMachines.CreateOrUpdate", "SecurityGroups.CreateOrUpdate",
// "Interfaces.CreateOrUpdate", "VirtualMachineImages.List", ...) fail with an ARM error code:
// synchronously, or (async) as the terminal state of its long-running operation.
func (s *Server) Fail(op string, status int, code string, async bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[op] = failure{status, code, async}
}

// Requests returns every request so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// NSGs, NICs and VMs return the stored resources by "rg/name", as last written.
func (s *Server) NSGs() map[string]armnetwork.SecurityGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deref(s.nsgs)
}

// NICs returns the stored network interfaces.
func (s *Server) NICs() map[string]armnetwork.Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deref(s.nics)
}

// VMs returns the stored virtual machines.
func (s *Server) VMs() map[string]armcompute.VirtualMachine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deref(s.vms)
}

// Versions returns the stored gallery image versions by "rg/gallery/image/version".
func (s *Server) Versions() map[string]armcompute.GalleryImageVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deref(s.versions)
}

func deref[T any](m map[string]*T) map[string]T {
	out := make(map[string]T, len(m))
	for k, v := range m {
		out[k] = *v
	}
	return out
}

// DeleteVMOutOfBand removes a VM (and what Azure deletes with it) as if deleted in the portal.
func (s *Server) DeleteVMOutOfBand(rg, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeVM(rg + "/" + name)
}

// AddInboundRuleOutOfBand adds a rule to an NSG as if added in the portal.
func (s *Server) AddInboundRuleOutOfBand(rg, nsg string, rule *armnetwork.SecurityRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.nsgs[rg+"/"+nsg]
	g.Properties.SecurityRules = append(g.Properties.SecurityRules, rule)
}

func (s *Server) failure(op string) (failure, bool) {
	f, ok := s.failures[op]
	return f, ok
}

func (s *Server) id(rg, provider, kind, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s/%s", s.Subscription, rg, provider, kind, name)
}

// poller builds the responder for a long-running operation: one non-terminal poll (201 for a
// create, 202 for a delete, 200 for a PATCH, as ARM answers), then the result, or the injected failure. apply
// makes the change, unless the operation fails.
func poller[T any](s *Server, op string, result T, apply func()) (resp azfake.PollerResponder[T], errResp azfake.ErrorResponder) {
	accepted := http.StatusCreated
	switch {
	case strings.HasSuffix(op, ".Delete"):
		accepted = http.StatusAccepted
	case strings.HasSuffix(op, ".Update"): // a VM PATCH answers 200 while it runs
		accepted = http.StatusOK
	}
	if f, failing := s.failure(op); failing {
		if !f.async {
			return failNow[T](f.status, f.code)
		}
		resp.AddNonTerminalResponse(accepted, nil)
		resp.SetTerminalError(f.status, f.code)
		return resp, errResp
	}
	apply()
	resp.AddNonTerminalResponse(accepted, nil)
	resp.SetTerminalResponse(http.StatusOK, result, nil)
	return resp, errResp
}

// failNow answers a long-running call with an ARM error at once, as ARM rejects a request.
func failNow[T any](status int, code string) (resp azfake.PollerResponder[T], errResp azfake.ErrorResponder) {
	errResp.SetResponseError(status, code)
	return
}

// found answers a call with result.
func found[T any](result T) (resp azfake.Responder[T], errResp azfake.ErrorResponder) {
	resp.SetResponse(http.StatusOK, result, nil)
	return
}

// respondError answers a call with an ARM error.
func respondError[T any](status int, code string) (resp azfake.Responder[T], errResp azfake.ErrorResponder) {
	errResp.SetResponseError(status, code)
	return
}

func notFound[T any](code string) (azfake.Responder[T], azfake.ErrorResponder) {
	return respondError[T](http.StatusNotFound, code)
}

func (s *Server) createNSG(_ context.Context, rg, name string, p armnetwork.SecurityGroup, _ *armnetwork.SecurityGroupsClientBeginCreateOrUpdateOptions) (azfake.PollerResponder[armnetwork.SecurityGroupsClientCreateOrUpdateResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.groups[rg] {
		return failNow[armnetwork.SecurityGroupsClientCreateOrUpdateResponse](http.StatusNotFound, "ResourceGroupNotFound")
	}
	// A put replaces the whole rule list; as on Azure, two rules of one direction cannot share
	// a priority, and custom priorities are 100-4096.
	prios := map[string]bool{}
	for _, r := range p.Properties.SecurityRules {
		rp := r.Properties
		if rp == nil || rp.Priority == nil || *rp.Priority < 100 || *rp.Priority > 4096 {
			return failNow[armnetwork.SecurityGroupsClientCreateOrUpdateResponse](http.StatusBadRequest, "SecurityRuleInvalidPriority")
		}
		k := fmt.Sprintf("%s/%d", *rp.Direction, *rp.Priority)
		if prios[k] {
			return failNow[armnetwork.SecurityGroupsClientCreateOrUpdateResponse](http.StatusBadRequest, "SecurityRuleParameterPriorityAlreadyTaken")
		}
		prios[k] = true
	}
	p.ID, p.Name = to.Ptr(s.id(rg, "Microsoft.Network", "networkSecurityGroups", name)), to.Ptr(name)
	for _, r := range p.Properties.SecurityRules {
		r.ID = to.Ptr(*p.ID + "/securityRules/" + *r.Name)
	}
	return poller(s, "SecurityGroups.CreateOrUpdate", armnetwork.SecurityGroupsClientCreateOrUpdateResponse{SecurityGroup: p}, func() { s.nsgs[rg+"/"+name] = &p })
}

func (s *Server) getNSG(_ context.Context, rg, name string, _ *armnetwork.SecurityGroupsClientGetOptions) (azfake.Responder[armnetwork.SecurityGroupsClientGetResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.nsgs[rg+"/"+name]
	if !ok {
		return notFound[armnetwork.SecurityGroupsClientGetResponse]("ResourceNotFound")
	}
	return found(armnetwork.SecurityGroupsClientGetResponse{SecurityGroup: *g})
}

func (s *Server) deleteNSG(_ context.Context, rg, name string, _ *armnetwork.SecurityGroupsClientBeginDeleteOptions) (azfake.PollerResponder[armnetwork.SecurityGroupsClientDeleteResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := rg + "/" + name
	if _, ok := s.nsgs[key]; !ok {
		return failNow[armnetwork.SecurityGroupsClientDeleteResponse](http.StatusNotFound, "ResourceNotFound")
	}
	for _, nic := range s.nics {
		if nic.Properties.NetworkSecurityGroup != nil && strings.EqualFold(*nic.Properties.NetworkSecurityGroup.ID, *s.nsgs[key].ID) {
			return failNow[armnetwork.SecurityGroupsClientDeleteResponse](http.StatusBadRequest, "InUseNetworkSecurityGroup")
		}
	}
	return poller(s, "SecurityGroups.Delete", armnetwork.SecurityGroupsClientDeleteResponse{}, func() { delete(s.nsgs, key) })
}

func (s *Server) createNIC(_ context.Context, rg, name string, p armnetwork.Interface, _ *armnetwork.InterfacesClientBeginCreateOrUpdateOptions) (azfake.PollerResponder[armnetwork.InterfacesClientCreateOrUpdateResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.groups[rg] {
		return failNow[armnetwork.InterfacesClientCreateOrUpdateResponse](http.StatusNotFound, "ResourceGroupNotFound")
	}
	for _, ipc := range p.Properties.IPConfigurations {
		if ipc.Properties.Subnet == nil || !s.subnets[strings.ToLower(*ipc.Properties.Subnet.ID)] {
			return failNow[armnetwork.InterfacesClientCreateOrUpdateResponse](http.StatusBadRequest, "InvalidResourceReference")
		}
		s.seq++
		ipc.Properties.PrivateIPAddress = to.Ptr(fmt.Sprintf("10.1.0.%d", s.seq%250+4))
	}
	if g := p.Properties.NetworkSecurityGroup; g != nil && !s.hasNSG(*g.ID) {
		return failNow[armnetwork.InterfacesClientCreateOrUpdateResponse](http.StatusBadRequest, "InvalidResourceReference")
	}
	p.ID, p.Name = to.Ptr(s.id(rg, "Microsoft.Network", "networkInterfaces", name)), to.Ptr(name)
	return poller(s, "Interfaces.CreateOrUpdate", armnetwork.InterfacesClientCreateOrUpdateResponse{Interface: p}, func() { s.nics[rg+"/"+name] = &p })
}

func (s *Server) hasNSG(id string) bool {
	for _, g := range s.nsgs {
		if strings.EqualFold(*g.ID, id) {
			return true
		}
	}
	return false
}

func (s *Server) getNIC(_ context.Context, rg, name string, _ *armnetwork.InterfacesClientGetOptions) (azfake.Responder[armnetwork.InterfacesClientGetResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nics[rg+"/"+name]
	if !ok {
		return notFound[armnetwork.InterfacesClientGetResponse]("ResourceNotFound")
	}
	return found(armnetwork.InterfacesClientGetResponse{Interface: *n})
}

func (s *Server) deleteNIC(_ context.Context, rg, name string, _ *armnetwork.InterfacesClientBeginDeleteOptions) (azfake.PollerResponder[armnetwork.InterfacesClientDeleteResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := rg + "/" + name
	if _, ok := s.nics[key]; !ok {
		return failNow[armnetwork.InterfacesClientDeleteResponse](http.StatusNotFound, "ResourceNotFound")
	}
	for _, vm := range s.vms {
		for _, ref := range vm.Properties.NetworkProfile.NetworkInterfaces {
			if strings.EqualFold(*ref.ID, *s.nics[key].ID) {
				return failNow[armnetwork.InterfacesClientDeleteResponse](http.StatusBadRequest, "NicInUse")
			}
		}
	}
	return poller(s, "Interfaces.Delete", armnetwork.InterfacesClientDeleteResponse{}, func() { delete(s.nics, key) })
}

func (s *Server) nicByID(id string) (string, bool) {
	for k, n := range s.nics {
		if strings.EqualFold(*n.ID, id) {
			return k, true
		}
	}
	return "", false
}

// VMSizes the fake accepts.
var VMSizes = []string{"Standard_F2s_v2", "Standard_F4s_v2", "Standard_F8s_v2", "Standard_B2s", "Standard_D2s_v5"}

func (s *Server) createVM(_ context.Context, rg, name string, p armcompute.VirtualMachine, _ *armcompute.VirtualMachinesClientBeginCreateOrUpdateOptions) (azfake.PollerResponder[armcompute.VirtualMachinesClientCreateOrUpdateResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := failNow[armcompute.VirtualMachinesClientCreateOrUpdateResponse]
	if !s.groups[rg] {
		return fail(http.StatusNotFound, "ResourceGroupNotFound")
	}
	props := p.Properties
	if props == nil || props.HardwareProfile == nil || props.HardwareProfile.VMSize == nil || !slices.Contains(VMSizes, string(*props.HardwareProfile.VMSize)) {
		return fail(http.StatusConflict, "SkuNotAvailable")
	}
	if props.OSProfile == nil || props.OSProfile.AdminUsername == nil ||
		props.OSProfile.LinuxConfiguration == nil || props.OSProfile.LinuxConfiguration.SSH == nil && props.OSProfile.AdminPassword == nil {
		return fail(http.StatusBadRequest, "InvalidParameter")
	}
	ref := props.StorageProfile.ImageReference
	switch {
	case ref == nil:
		return fail(http.StatusBadRequest, "InvalidParameter")
	case ref.ID != nil:
		if !s.sources[strings.ToLower(*ref.ID)] && !s.hasVersion(*ref.ID) {
			return fail(http.StatusNotFound, "ImageNotFound")
		}
	default:
		k := strings.ToLower(strings.Join([]string{*p.Location, *ref.Publisher, *ref.Offer, *ref.SKU}, "/"))
		if vs := s.images[k]; len(vs) == 0 || *ref.Version != "latest" && !slices.Contains(vs, *ref.Version) {
			return fail(http.StatusNotFound, "PlatformImageNotFound")
		}
	}
	for _, n := range props.NetworkProfile.NetworkInterfaces {
		if _, ok := s.nicByID(*n.ID); !ok {
			return fail(http.StatusBadRequest, "InvalidResourceReference")
		}
	}
	p.ID, p.Name = to.Ptr(s.id(rg, "Microsoft.Compute", "virtualMachines", name)), to.Ptr(name)
	props.ProvisioningState = to.Ptr("Succeeded")
	props.VMID = to.Ptr(fmt.Sprintf("00000000-0000-0000-0000-%012d", len(s.vms)+1))
	// Azure never returns custom data on reads, and user data only when asked to expand it.
	stored := p
	osp := *props.OSProfile
	stored.Properties = &armcompute.VirtualMachineProperties{}
	*stored.Properties = *props
	stored.Properties.OSProfile = &osp
	stored.Properties.OSProfile.CustomData = nil
	stored.Properties.UserData = nil
	return poller(s, "VirtualMachines.CreateOrUpdate", armcompute.VirtualMachinesClientCreateOrUpdateResponse{VirtualMachine: stored}, func() { s.vms[rg+"/"+name] = &stored })
}

func (s *Server) getVM(_ context.Context, rg, name string, opts *armcompute.VirtualMachinesClientGetOptions) (azfake.Responder[armcompute.VirtualMachinesClientGetResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.failure("VirtualMachines.Get"); ok {
		return respondError[armcompute.VirtualMachinesClientGetResponse](f.status, f.code)
	}
	vm, ok := s.vms[rg+"/"+name]
	if !ok {
		return notFound[armcompute.VirtualMachinesClientGetResponse]("ResourceNotFound")
	}
	out := *vm
	if opts != nil && opts.Expand != nil && *opts.Expand == armcompute.InstanceViewTypesInstanceView {
		props := *out.Properties
		props.InstanceView = &armcompute.VirtualMachineInstanceView{Statuses: []*armcompute.InstanceViewStatus{
			{Code: to.Ptr("ProvisioningState/succeeded")}, {Code: to.Ptr("PowerState/running")},
		}}
		out.Properties = &props
	}
	return found(armcompute.VirtualMachinesClientGetResponse{VirtualMachine: out})
}

// maxTags is ARM's limit of tags per resource.
const maxTags = 50

// checkTags applies ARM's tag rules: at most 50, names of at most 512 characters without
// < > % & \ ? /, values of at most 256.
func checkTags(tags map[string]*string) bool {
	if len(tags) > maxTags {
		return false
	}
	for k, v := range tags {
		if k == "" || len(k) > 512 || strings.ContainsAny(k, `<>%&\?/`) || v != nil && len(*v) > 256 {
			return false
		}
	}
	return true
}

// updateVM is a PATCH of the VM (VirtualMachines.Update): the fields it names replace the
// VM's, and tags, when given, replace the whole tag set. The fake takes tags only.
func (s *Server) updateVM(_ context.Context, rg, name string, p armcompute.VirtualMachineUpdate, _ *armcompute.VirtualMachinesClientBeginUpdateOptions) (azfake.PollerResponder[armcompute.VirtualMachinesClientUpdateResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := failNow[armcompute.VirtualMachinesClientUpdateResponse]
	vm, ok := s.vms[rg+"/"+name]
	switch {
	case !ok:
		return fail(http.StatusNotFound, "ResourceNotFound")
	case p.Properties != nil || p.Identity != nil || p.Plan != nil || p.Zones != nil:
		return fail(http.StatusBadRequest, "InvalidParameter") // not modelled: refuse rather than ignore
	case p.Tags != nil && !checkTags(p.Tags):
		return fail(http.StatusBadRequest, "InvalidTagNameCharacters")
	}
	next := *vm
	if p.Tags != nil {
		next.Tags = maps.Clone(p.Tags)
	}
	return poller(s, "VirtualMachines.Update", armcompute.VirtualMachinesClientUpdateResponse{VirtualMachine: next}, func() { *vm = next })
}

// updateNSGTags replaces an NSG's tags (SecurityGroups.UpdateTags, a PATCH of tags).
func (s *Server) updateNSGTags(_ context.Context, rg, name string, p armnetwork.TagsObject, _ *armnetwork.SecurityGroupsClientUpdateTagsOptions) (azfake.Responder[armnetwork.SecurityGroupsClientUpdateTagsResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nsg, ok := s.nsgs[rg+"/"+name]
	switch {
	case !ok:
		return notFound[armnetwork.SecurityGroupsClientUpdateTagsResponse]("ResourceNotFound")
	case !checkTags(p.Tags):
		return respondError[armnetwork.SecurityGroupsClientUpdateTagsResponse](http.StatusBadRequest, "InvalidTagNameCharacters")
	}
	nsg.Tags = maps.Clone(p.Tags)
	return found(armnetwork.SecurityGroupsClientUpdateTagsResponse{SecurityGroup: *nsg})
}

// updateNICTags replaces a NIC's tags (Interfaces.UpdateTags).
func (s *Server) updateNICTags(_ context.Context, rg, name string, p armnetwork.TagsObject, _ *armnetwork.InterfacesClientUpdateTagsOptions) (azfake.Responder[armnetwork.InterfacesClientUpdateTagsResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nic, ok := s.nics[rg+"/"+name]
	switch {
	case !ok:
		return notFound[armnetwork.InterfacesClientUpdateTagsResponse]("ResourceNotFound")
	case !checkTags(p.Tags):
		return respondError[armnetwork.InterfacesClientUpdateTagsResponse](http.StatusBadRequest, "InvalidTagNameCharacters")
	}
	nic.Tags = maps.Clone(p.Tags)
	return found(armnetwork.InterfacesClientUpdateTagsResponse{Interface: *nic})
}

// SetVMTagsOutOfBand replaces a VM's tags as if someone edited them in the portal.
func (s *Server) SetVMTagsOutOfBand(rg, name string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := map[string]*string{}
	for k, v := range tags {
		t[k] = to.Ptr(v)
	}
	s.vms[rg+"/"+name].Tags = t
}

func (s *Server) deleteVM(_ context.Context, rg, name string, _ *armcompute.VirtualMachinesClientBeginDeleteOptions) (azfake.PollerResponder[armcompute.VirtualMachinesClientDeleteResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := rg + "/" + name
	if _, ok := s.vms[key]; !ok {
		return failNow[armcompute.VirtualMachinesClientDeleteResponse](http.StatusNotFound, "ResourceNotFound")
	}
	return poller(s, "VirtualMachines.Delete", armcompute.VirtualMachinesClientDeleteResponse{}, func() { s.removeVM(key) })
}

// removeVM deletes a VM and the NICs whose delete option says to go with it.
func (s *Server) removeVM(key string) {
	vm, ok := s.vms[key]
	if !ok {
		return
	}
	delete(s.vms, key)
	for _, ref := range vm.Properties.NetworkProfile.NetworkInterfaces {
		if ref.Properties != nil && ref.Properties.DeleteOption != nil && *ref.Properties.DeleteOption == armcompute.DeleteOptionsDelete {
			if k, ok := s.nicByID(*ref.ID); ok {
				delete(s.nics, k)
			}
		}
	}
}

func (s *Server) listImages(_ context.Context, location, publisher, offer, sku string, _ *armcompute.VirtualMachineImagesClientListOptions) (azfake.Responder[armcompute.VirtualMachineImagesClientListResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.failure("VirtualMachineImages.List"); ok {
		return respondError[armcompute.VirtualMachineImagesClientListResponse](f.status, f.code)
	}
	var out []*armcompute.VirtualMachineImageResource
	for _, v := range s.images[strings.ToLower(strings.Join([]string{location, publisher, offer, sku}, "/"))] {
		out = append(out, &armcompute.VirtualMachineImageResource{
			Name: to.Ptr(v), Location: to.Ptr(location),
			ID: to.Ptr(fmt.Sprintf("/Subscriptions/%s/Providers/Microsoft.Compute/Locations/%s/Publishers/%s/ArtifactTypes/VMImage/Offers/%s/Skus/%s/Versions/%s", s.Subscription, location, publisher, offer, sku, v)),
		})
	}
	return found(armcompute.VirtualMachineImagesClientListResponse{VirtualMachineImageResourceArray: out})
}

func (s *Server) hasVersion(id string) bool {
	for _, v := range s.versions {
		if strings.EqualFold(*v.ID, id) {
			return true
		}
	}
	return false
}

func (s *Server) createVersion(_ context.Context, rg, gallery, image, version string, p armcompute.GalleryImageVersion, _ *armcompute.GalleryImageVersionsClientBeginCreateOrUpdateOptions) (azfake.PollerResponder[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.defs[strings.ToLower(rg+"/"+gallery+"/"+image)] {
		return failNow[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse](http.StatusNotFound, "GalleryImageNotFound")
	}
	src := p.Properties.StorageProfile.Source
	if src == nil || src.ID == nil || !s.sources[strings.ToLower(*src.ID)] && !s.hasVersion(*src.ID) {
		return failNow[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse](http.StatusBadRequest, "InvalidParameter")
	}
	p.ID = to.Ptr(s.id(rg, "Microsoft.Compute", "galleries", gallery+"/images/"+image+"/versions/"+version))
	p.Name = to.Ptr(version)
	p.Properties.ProvisioningState = to.Ptr(armcompute.GalleryProvisioningStateSucceeded)
	return poller(s, "GalleryImageVersions.CreateOrUpdate", armcompute.GalleryImageVersionsClientCreateOrUpdateResponse{GalleryImageVersion: p}, func() { s.versions[strings.ToLower(rg+"/"+gallery+"/"+image+"/"+version)] = &p })
}

func (s *Server) getVersion(_ context.Context, rg, gallery, image, version string, _ *armcompute.GalleryImageVersionsClientGetOptions) (azfake.Responder[armcompute.GalleryImageVersionsClientGetResponse], azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.versions[strings.ToLower(rg+"/"+gallery+"/"+image+"/"+version)]
	if !ok {
		return notFound[armcompute.GalleryImageVersionsClientGetResponse]("ResourceNotFound")
	}
	return found(armcompute.GalleryImageVersionsClientGetResponse{GalleryImageVersion: *v})
}

// Keys returns the sorted keys of a map, for tests that list resources.
func Keys[T any](m map[string]T) []string { return slices.Sorted(maps.Keys(m)) }
