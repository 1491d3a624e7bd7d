// Package azure is the Azure driver for router hosts and router images (armcompute/armnetwork
// v6). A router host is a network security group with no inbound allow (an explicit deny-all
// inbound rule overrides Azure's default VNet and load-balancer allows), the egress allowlist
// and a deny-all outbound rule; a network interface with that NSG; and a VM that receives its
// registration key in custom data and user data. The image operations (latest Debian 12 marketplace
// version, gallery image version from a source image) serve the Packer plugin.
package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/ztna/ztna/cloud"
)

// Options configures a driver.
type Options struct {
	// SubscriptionID is required. ResourceGroup holds every object the driver creates (required
	// by all operations except LatestDebian).
	SubscriptionID string
	ResourceGroup  string
	// Location is the Azure region, for example westeurope (required).
	Location string
	// SubnetID is the resource id of the subnet router hosts go in (required by Create).
	SubnetID string
	// Zone is the availability zone ("1", "2", "3"); empty = no zone.
	Zone string
	// AdminUsername is the VM's admin account; its only credential is a throwaway SSH key
	// (see Create), so nobody can log in with it. Default "ztna".
	AdminUsername string
	// Credential authenticates; nil uses azidentity.NewDefaultAzureCredential.
	Credential azcore.TokenCredential
	// ClientOptions are passed to every client: a sovereign cloud or private endpoint
	// (Cloud), a fake transport in tests.
	ClientOptions *arm.ClientOptions
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
	// PollInterval between long-running operation polls; default 5 s.
	PollInterval time.Duration
}

// Driver manages router hosts and images in one resource group.
type Driver struct {
	vms      *armcompute.VirtualMachinesClient
	images   *armcompute.VirtualMachineImagesClient
	versions *armcompute.GalleryImageVersionsClient
	nsgs     *armnetwork.SecurityGroupsClient
	nics     *armnetwork.InterfacesClient
	opts     Options
	log      *slog.Logger
}

// New creates the clients.
func New(opts Options) (*Driver, error) {
	if opts.SubscriptionID == "" || opts.Location == "" {
		return nil, errors.New("azure: subscription_id and location are required: set both")
	}
	if opts.AdminUsername == "" {
		opts.AdminUsername = "ztna"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	cred := opts.Credential
	if cred == nil {
		var err error
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
			return nil, fmt.Errorf("azure: credentials: %w", err)
		}
	}
	d := &Driver{opts: opts, log: opts.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	compute, err := armcompute.NewClientFactory(opts.SubscriptionID, cred, opts.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("azure: compute clients: %w", err)
	}
	network, err := armnetwork.NewClientFactory(opts.SubscriptionID, cred, opts.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("azure: network clients: %w", err)
	}
	d.vms = compute.NewVirtualMachinesClient()
	d.images = compute.NewVirtualMachineImagesClient()
	d.versions = compute.NewGalleryImageVersionsClient()
	d.nsgs = network.NewSecurityGroupsClient()
	d.nics = network.NewInterfacesClient()
	return d, nil
}

func (d *Driver) pollOptions() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: d.opts.PollInterval}
}

// done waits for a long-running operation.
func done[T any](ctx context.Context, d *Driver, op string, p *runtime.Poller[T], err error) (T, error) {
	var zero T
	if err != nil {
		return zero, d.apiError(op, err)
	}
	res, err := p.PollUntilDone(ctx, d.pollOptions())
	if err != nil {
		return zero, d.apiError(op, err)
	}
	return res, nil
}

// apiError turns an ARM failure into a cloud.APIError that says what to change.
func (d *Driver) apiError(op string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("azure %s: %w", op, err)
	}
	return &cloud.APIError{Cloud: "azure", Operation: op, Code: re.ErrorCode, Message: fmt.Sprintf("HTTP %d", re.StatusCode), Advice: d.advice(re.ErrorCode), Err: err}
}

func (d *Driver) advice(code string) string {
	switch code {
	case "AuthorizationFailed", "LinkedAuthorizationFailed", "Forbidden":
		return fmt.Sprintf("the credentials lack permission in resource group %s: assign Virtual Machine Contributor and Network Contributor (and Reader on the subnet's virtual network) to the caller", d.opts.ResourceGroup)
	case "OperationNotAllowed", "QuotaExceeded":
		return fmt.Sprintf("a vCPU quota of location %s is exhausted: request more under Subscriptions > Usage + quotas, or choose a smaller size tier", d.opts.Location)
	case "SkuNotAvailable", "InvalidVMSize":
		return fmt.Sprintf("the VM size is not offered in location %s (zone %q) for this subscription: choose another size tier, instance type or zone", d.opts.Location, d.opts.Zone)
	case "AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest":
		return "Azure has no capacity for this size now: retry later or choose another zone or size"
	case "InvalidResourceReference", "SubnetNotFound", "InvalidSubnetId":
		return fmt.Sprintf("check subnet_id: the subnet must exist and be in location %s (full resource id /subscriptions/.../virtualNetworks/VNET/subnets/SUBNET)", d.opts.Location)
	case "ResourceGroupNotFound":
		return fmt.Sprintf("resource group %s does not exist: create it or fix resource_group", d.opts.ResourceGroup)
	case "ImageNotFound", "PlatformImageNotFound", "GalleryImageNotFound", "InvalidParameter":
		return "check the image: use a gallery image version or managed image id, or a marketplace URN publisher:offer:sku:version available in this location"
	case "TooManyRequests", "RetryableError":
		return "Azure Resource Manager is throttling requests: retry later"
	}
	return ""
}

// requireGroup fails operations that create or find objects when no resource group is set.
func (d *Driver) requireGroup() error {
	if d.opts.ResourceGroup == "" {
		return errors.New("azure: resource_group is empty: set the resource group router hosts and images live in")
	}
	return nil
}

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == 404
}

// last returns the last segment of a resource id.
func last(id string) string { return id[strings.LastIndex(id, "/")+1:] }
