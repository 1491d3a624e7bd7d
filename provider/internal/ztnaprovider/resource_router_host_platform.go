package ztnaprovider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/gcp"
	"github.com/ztna/ztna/cloud/local"
	"github.com/ztna/ztna/cloud/sizing"
)

// hostDriver is what the resource needs from a platform driver in cloud/.
type hostDriver interface {
	Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error)
	Read(ctx context.Context, id string) (cloud.Host, error)
	Delete(ctx context.Context, id string) error
	// UpdateEgress makes the host's firewall exactly the allowlist, in place (the VM or
	// process is not touched); EgressDrift lists how it differs from the allowlist now.
	UpdateEgress(ctx context.Context, id string, rules []egress.Rule) error
	EgressDrift(ctx context.Context, id string, rules []egress.Rule) ([]string, error)
}

// tagUpdater is a cloud driver that retags a host in place: UpdateTags makes the user tags of
// the host's objects tags (the ownership tags stay). Local hosts have no tags.
type securityGroupUpdater interface {
	UpdateSecurityGroups(ctx context.Context, id string, extra []string) error
}

var _ securityGroupUpdater = (*aws.Driver)(nil)

type tagUpdater interface {
	UpdateTags(ctx context.Context, id string, tags map[string]string) error
}

var (
	_ tagUpdater = (*aws.Driver)(nil)
	_ tagUpdater = (*gcp.Driver)(nil)
	_ tagUpdater = (*azure.Driver)(nil)
)

func closeDriver(d hostDriver) {
	if c, ok := d.(io.Closer); ok {
		c.Close()
	}
}

// platform is one of the platform blocks, decoded.
type platform interface {
	name() string
	isLocal() bool
	// complete fills in defaults of the block's computed arguments. At plan time (apply
	// false) values that can only be chosen when the host is created stay unknown.
	complete(ctx context.Context, m *routerHostModel, apply bool) diag.Diagnostics
	// driver builds the platform's driver; dnsServers are the router's resolvers (local
	// hosts pass them to the router process).
	driver(ctx context.Context, log *slog.Logger, dnsServers []string) (hostDriver, error)
	// qualify turns a driver id into the part of the resource id after "<platform>:".
	qualify(id string) string
}

// platformOf decodes the one platform block that is set. It returns nil without error when
// that block still has unknown values (known only after other resources are applied).
func platformOf(ctx context.Context, m *routerHostModel) (platform, diag.Diagnostics) {
	var diags diag.Diagnostics
	var set []string
	var p platform
	decode := func(name string, obj types.Object, target platform) {
		if obj.IsNull() {
			return
		}
		set = append(set, name)
		if obj.IsUnknown() || hasUnknown(obj) {
			return
		}
		diags.Append(obj.As(ctx, target, basetypes.ObjectAsOptions{})...)
		p = target
	}
	decode("local", m.Local, &localPlatform{})
	decode("aws", m.AWS, &awsPlatform{})
	decode("gcp", m.GCP, &gcpPlatform{})
	decode("azure", m.Azure, &azurePlatform{})
	switch {
	case diags.HasError():
		return nil, diags
	case len(set) != 1:
		diags.AddError("Exactly one platform block is required",
			fmt.Sprintf("A ztna_router_host runs on exactly one platform: declare one of the blocks local, aws, gcp or azure (found %d: %s).", len(set), strings.Join(set, ", ")))
		return nil, diags
	}
	return p, diags
}

// hasUnknown reports whether a required (non-computed) value of the block is unknown.
// Computed block values are unknown in plans until complete fills them.
func hasUnknown(obj types.Object) bool {
	for name, v := range obj.Attributes() {
		if v.IsUnknown() && !computedBlockAttributes[name] {
			return true
		}
	}
	return false
}

var computedBlockAttributes = map[string]bool{
	"state_root": true, "isolation": true, "router_binary": true, "local_addr": true,
	"assign_public_ip": true, "network": true, "poll_interval": true,
}

func setBlock(ctx context.Context, target *types.Object, attrs map[string]attr.Type, value any) diag.Diagnostics {
	obj, diags := types.ObjectValueFrom(ctx, attrs, value)
	if !diags.HasError() {
		*target = obj
	}
	return diags
}

func blockAttrTypes(b schema.SingleNestedBlock) map[string]attr.Type {
	out := map[string]attr.Type{}
	for name, a := range b.Attributes {
		out[name] = a.GetType()
	}
	return out
}

func computedString(description string, extra ...planmodifier.String) schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true, Computed: true, MarkdownDescription: description,
		PlanModifiers: append([]planmodifier.String{stringplanmodifier.UseStateForUnknown()}, extra...),
	}
}

func requiredString(description string) schema.StringAttribute {
	return schema.StringAttribute{Optional: true, MarkdownDescription: description + " Required."}
}

// requireBlockValues reports the block's required arguments that are empty. (Arguments inside
// a block cannot be Required in the schema without making the block itself mandatory.)
func requireBlockValues(block string, values map[string]types.String) diag.Diagnostics {
	var diags diag.Diagnostics
	for name, v := range values {
		if !v.IsUnknown() && v.ValueString() == "" {
			diags.AddAttributeError(path.Root(block).AtName(name), "Missing "+block+"."+name,
				fmt.Sprintf("The %s block needs %s: set it.", block, name))
		}
	}
	return diags
}

// ---- local ------------------------------------------------------------------------------

type localPlatform struct {
	StateRoot    types.String `tfsdk:"state_root"`
	Isolation    types.String `tfsdk:"isolation"`
	RouterBinary types.String `tfsdk:"router_binary"`
	LocalAddr    types.String `tfsdk:"local_addr"`
}

// netnsLocalAddr is the router's local endpoint address in its own namespace, where the
// default port cannot collide with another router.
const netnsLocalAddr = "127.0.0.1:9262"

func localBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "Run the router as a detached local process (quickstart, tests, on-prem machines without a " +
			"cloud API), with its own state directory. A router process that exits shows up as drift, and the next " +
			"apply starts it again with its saved enrolment.",
		Attributes: map[string]schema.Attribute{
			"state_root": computedString("Directory holding one state directory per local host (absolute path). Defaults to " +
				"`/var/lib/ztna/router-hosts` as root, else `$XDG_STATE_HOME/ztna/router-hosts` (`~/.local/state/...`)."),
			"isolation": schema.StringAttribute{
				Optional: true, Computed: true,
				Default: stringdefault.StaticString(string(local.IsolationNone)),
				MarkdownDescription: "`none` (default): a plain process; nothing confines its traffic. `netns` (root only): the " +
					"router runs in its own network namespace behind nftables — no inbound connection at all, outbound only to " +
					"the egress allowlist. Allowed ports of this machine's `127.0.0.1` (a dev controller) stay reachable at " +
					"`127.0.0.1`; service names are resolved with `dns_servers` when the host is created. Targets beyond this " +
					"machine are routed through the host end of the namespace's veth pair, which needs IPv4 forwarding " +
					"(`net.ipv4.conf.<veth>.forwarding`, or `ip_forward`): the host does not turn it on (`ztna-demo " +
					"link-router` does, for the quickstart).",
				Validators: []validator.String{stringvalidator.OneOf(string(local.IsolationNone), string(local.IsolationNetns))},
			},
			"router_binary": computedString("The `ztna-router` binary to run. Defaults to `ztna-router` next to the provider " +
				"binary, else on `PATH`."),
			"local_addr": computedString("Address of the router's `/healthz`, `/readyz` and `/metrics` endpoints. Defaults to " +
				"`127.0.0.1:9262` inside a namespace, and to a free loopback port otherwise."),
		},
	}
}

var localAttrTypes = blockAttrTypes(localBlock())

func (p *localPlatform) name() string  { return "local" }
func (p *localPlatform) isLocal() bool { return true }

func (p *localPlatform) qualify(id string) string { return id }

func (p *localPlatform) complete(ctx context.Context, m *routerHostModel, apply bool) diag.Diagnostics {
	var diags diag.Diagnostics
	if !m.InstanceType.IsUnknown() && !m.InstanceType.IsNull() && m.InstanceType.ValueString() != "process" {
		diags.AddAttributeError(path.Root("instance_type"), "No instance type for local hosts",
			"A local router host is a process: remove instance_type.")
	}
	if p.StateRoot.IsUnknown() || p.StateRoot.IsNull() {
		root, err := defaultStateRoot()
		if err != nil {
			diags.AddAttributeError(path.Root("local").AtName("state_root"), "No default state root", err.Error()+": set state_root.")
			return diags
		}
		p.StateRoot = types.StringValue(root)
	} else if !filepath.IsAbs(p.StateRoot.ValueString()) {
		diags.AddAttributeError(path.Root("local").AtName("state_root"), "Relative state_root",
			fmt.Sprintf("state_root %q must be an absolute path: use abspath(\"%s\").", p.StateRoot.ValueString(), p.StateRoot.ValueString()))
		return diags
	}
	if p.RouterBinary.IsUnknown() || p.RouterBinary.IsNull() {
		bin, err := defaultRouterBinary()
		if err != nil {
			diags.AddAttributeError(path.Root("local").AtName("router_binary"), "ztna-router not found", err.Error())
			return diags
		}
		p.RouterBinary = types.StringValue(bin)
	}
	if p.LocalAddr.IsUnknown() || p.LocalAddr.IsNull() {
		switch {
		case p.Isolation.ValueString() == string(local.IsolationNetns):
			p.LocalAddr = types.StringValue(netnsLocalAddr)
		case apply:
			addr, err := freeLoopbackAddr()
			if err != nil {
				diags.AddError("Cannot pick a local_addr", err.Error())
				return diags
			}
			p.LocalAddr = types.StringValue(addr)
		default:
			p.LocalAddr = types.StringUnknown()
		}
	}
	diags.Append(setBlock(ctx, &m.Local, localAttrTypes, p)...)
	return diags
}

func defaultStateRoot() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/lib/ztna/router-hosts", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "ztna", "router-hosts"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "ztna", "router-hosts"), nil
}

// defaultRouterBinary finds ztna-router next to the provider (make build puts both in bin/),
// then on PATH.
func defaultRouterBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "ztna-router")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("ztna-router"); err == nil {
		return filepath.Abs(p)
	}
	return "", errors.New("no ztna-router next to the provider binary or on PATH: build it (make build) or set router_binary")
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (p *localPlatform) driver(_ context.Context, log *slog.Logger, dnsServers []string) (hostDriver, error) {
	bin := p.RouterBinary.ValueString()
	if bin == "" {
		// Only an imported host has none; Read and Delete never start the router, and
		// ModifyPlan fills it in before any Create.
		bin, _ = defaultRouterBinary()
	}
	args := []string{"--local-addr", p.LocalAddr.ValueString()}
	if p.LocalAddr.ValueString() == "" {
		args = nil
	}
	var resolvConf []netip.Addr
	var resolver egress.Resolver
	for i, s := range dnsServers {
		ap, err := egress.ParseDNSServer(s)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			args = append(args, "--dns-server", ap.String())
			resolver = dnsResolver(ap)
		}
		if ap.Port() == egress.DNSPort {
			resolvConf = append(resolvConf, ap.Addr())
		}
	}
	return local.New(local.Options{
		StateRoot:  p.StateRoot.ValueString(),
		Command:    local.RouterCommand(bin, args...),
		Isolation:  local.Isolation(p.Isolation.ValueString()),
		DNSServers: resolvConf,
		// The namespace firewall matches addresses: service names are resolved the way the
		// router resolves them, with its DNS server (a customer DNS the host may not use).
		Resolver: resolver,
		Logger:   log,
	})
}

// dnsResolver resolves names with one DNS server.
func dnsResolver(server netip.AddrPort) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server.String())
	}}
}

// ---- aws --------------------------------------------------------------------------------

type awsPlatform struct {
	Region           types.String `tfsdk:"region"`
	SubnetID         types.String `tfsdk:"subnet_id"`
	AssignPublicIP   types.Bool   `tfsdk:"assign_public_ip"`
	Endpoint         types.String `tfsdk:"endpoint"`
	PollInterval     types.String `tfsdk:"poll_interval"`
	SecurityGroupIDs types.List   `tfsdk:"security_group_ids"`
}

var securityGroupIDRE = regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`)

func awsBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "Run the router on an EC2 instance (aws-sdk-go-v2; credentials from the standard chain: " +
			"environment, shared config, SSO, instance role). The instance gets a security group with no ingress rule " +
			"and only the egress allowlist, requires IMDSv2 (hop limit 1), and receives the key in user data.",
		Attributes: map[string]schema.Attribute{
			"region":    requiredString("AWS region, e.g. `eu-west-1`."),
			"subnet_id": requiredString("Subnet the instance goes in; it chooses VPC and availability zone (the failure domain)."),
			"assign_public_ip": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Give the instance a public address, for subnets without a NAT gateway. Default false.",
			},
			"endpoint": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "EC2 endpoint URL override (a VPC interface endpoint, or a test double). The `AWS_ENDPOINT_URL_EC2` environment variable works too.",
				Validators:          []validator.String{validURL},
			},
			"poll_interval": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("5s"),
				MarkdownDescription: "How often EC2 is polled while waiting for the instance; default `5s`.",
				Validators:          []validator.String{validDuration},
			},
			"security_group_ids": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Security groups (`sg-…`, in the subnet's VPC) attached to the instance beside the egress-only " +
					"group the provider creates, for example a group that other rules reference. Changed in place " +
					"(ModifyInstanceAttribute); groups attached in the console are read back and planned away. The provider " +
					"does not check their rules: an extra group with wider egress widens the host's egress.",
				Validators: []validator.List{listvalidator.ValueStringsAre(stringCheck{"a security group id sg-…", func(s string) error {
					if !securityGroupIDRE.MatchString(s) {
						return fmt.Errorf("%q is not a security group id (sg- and 8 or 17 hex digits)", s)
					}
					return nil
				}})},
			},
		},
	}
}

var awsAttrTypes = blockAttrTypes(awsBlock())

func (p *awsPlatform) name() string  { return "aws" }
func (p *awsPlatform) isLocal() bool { return false }

func (p *awsPlatform) qualify(id string) string { return p.Region.ValueString() + ":" + id }

func (p *awsPlatform) complete(_ context.Context, m *routerHostModel, _ bool) diag.Diagnostics {
	return completeCloud(m, "aws", map[string]types.String{"region": p.Region, "subnet_id": p.SubnetID})
}

func (p *awsPlatform) driver(ctx context.Context, log *slog.Logger, _ []string) (hostDriver, error) {
	poll, _ := time.ParseDuration(p.PollInterval.ValueString())
	return aws.New(ctx, aws.Options{
		Region:           p.Region.ValueString(),
		Endpoint:         p.Endpoint.ValueString(),
		Logger:           log,
		PollInterval:     poll,
		SubnetID:         p.SubnetID.ValueString(),
		AssignPublicIP:   p.AssignPublicIP.ValueBool(),
		SecurityGroupIDs: listStrings(p.SecurityGroupIDs),
	})
}

// ---- gcp --------------------------------------------------------------------------------

// EnvGCPAccessToken is the OAuth 2 access token for GCP operations without a configuration
// (refresh, destroy), the variable the google provider reads too.
const EnvGCPAccessToken = "GOOGLE_OAUTH_ACCESS_TOKEN"

// configCredentials takes the write-only credentials of the platform block from the
// configuration (they are null in plan and state).
func configCredentials(ctx context.Context, p platform, config tfsdk.Config) diag.Diagnostics {
	g, ok := p.(*gcpPlatform)
	if !ok {
		return nil
	}
	return config.GetAttribute(ctx, path.Root("gcp").AtName("access_token"), &g.AccessToken)
}

// withoutWriteOnly returns a platform block with its write-only values null: state written by
// earlier versions of the provider kept gcp.access_token, and comparing it with a plan (where
// it is always null) would replace the host.
func withoutWriteOnly(block types.Object) types.Object {
	if block.IsNull() || block.IsUnknown() {
		return block
	}
	attrs := block.Attributes()
	if _, ok := attrs["access_token"]; !ok {
		return block
	}
	attrs = maps.Clone(attrs)
	attrs["access_token"] = types.StringNull()
	return types.ObjectValueMust(block.AttributeTypes(context.Background()), attrs)
}

type gcpPlatform struct {
	Project        types.String `tfsdk:"project"`
	Zone           types.String `tfsdk:"zone"`
	Network        types.String `tfsdk:"network"`
	Subnetwork     types.String `tfsdk:"subnetwork"`
	AssignPublicIP types.Bool   `tfsdk:"assign_public_ip"`
	Endpoint       types.String `tfsdk:"endpoint"`
	AccessToken    types.String `tfsdk:"access_token"`
}

func gcpBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "Run the router on a Compute Engine instance (cloud.google.com/go/compute). The instance " +
			"carries a network tag that VPC firewall rules target: a deny-all ingress rule ahead of every other rule, " +
			"egress allows for the allowlist and a deny-all egress rule behind them. The key travels in the instance " +
			"metadata item `ztna-registration-key`; the instance has no service account.",
		Attributes: map[string]schema.Attribute{
			"project": requiredString("Project the instance and its firewall rules live in."),
			"zone":    requiredString("Zone, e.g. `europe-west1-b` (the failure domain)."),
			"network": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("default"),
				MarkdownDescription: "VPC network name or URL. Default `default`.",
			},
			"subnetwork": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Subnetwork name or URL; empty uses the network's subnet in the zone's region (auto-mode networks).",
			},
			"assign_public_ip": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Give the instance an external address, for networks without Cloud NAT. Default false.",
			},
			"endpoint": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Compute Engine endpoint URL override (Private Service Connect, or a test double).",
				Validators:          []validator.String{validURL},
			},
			"access_token": schema.StringAttribute{
				Optional: true, Sensitive: true, WriteOnly: true,
				MarkdownDescription: "OAuth 2 access token (e.g. from `gcloud auth print-access-token`), write-only (Terraform " +
					"1.11+): never stored in state or plan, so a new token every hour changes nothing. It is used when the " +
					"host is created or updated; reading and deleting the host use the `" + EnvGCPAccessToken + "` " +
					"environment variable, else Application Default Credentials, as do all operations when it is not set.",
			},
		},
	}
}

var gcpAttrTypes = blockAttrTypes(gcpBlock())

func (p *gcpPlatform) name() string  { return "gcp" }
func (p *gcpPlatform) isLocal() bool { return false }

func (p *gcpPlatform) qualify(id string) string { return id }

func (p *gcpPlatform) complete(ctx context.Context, m *routerHostModel, _ bool) diag.Diagnostics {
	diags := completeCloud(m, "gcp", map[string]types.String{"project": p.Project, "zone": p.Zone})
	if !m.Tags.IsUnknown() && !hasUnknownElement(m.Tags) {
		if err := gcp.ValidateLabels(mapStrings(ctx, m.Tags, &diags)); err != nil {
			diags.AddAttributeError(path.Root("tags"), "Invalid GCP labels", err.Error())
		}
	}
	return diags
}

func hasUnknownElement(m types.Map) bool {
	for _, v := range m.Elements() {
		if v.IsUnknown() {
			return true
		}
	}
	return false
}

func (p *gcpPlatform) driver(ctx context.Context, log *slog.Logger, _ []string) (hostDriver, error) {
	var opts []option.ClientOption
	t := p.AccessToken.ValueString()
	if t == "" {
		t = os.Getenv(EnvGCPAccessToken)
	}
	if t != "" {
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: t})))
	}
	drv, err := gcp.New(ctx, gcp.Options{
		Project:        p.Project.ValueString(),
		Zone:           p.Zone.ValueString(),
		Network:        p.Network.ValueString(),
		Subnetwork:     p.Subnetwork.ValueString(),
		AssignPublicIP: p.AssignPublicIP.ValueBool(),
		Endpoint:       p.Endpoint.ValueString(),
		ClientOptions:  opts,
		Logger:         log,
	})
	if err != nil && t == "" {
		// gcp.access_token is write-only: refresh and destroy never see it.
		return nil, fmt.Errorf("%w. Set the %s environment variable (gcloud auth print-access-token) or Application "+
			"Default Credentials (gcloud auth application-default login): refresh and destroy do not see gcp.access_token", err, EnvGCPAccessToken)
	}
	return drv, err
}

// ---- azure ------------------------------------------------------------------------------

type azurePlatform struct {
	SubscriptionID          types.String `tfsdk:"subscription_id"`
	ResourceGroup           types.String `tfsdk:"resource_group"`
	Location                types.String `tfsdk:"location"`
	SubnetID                types.String `tfsdk:"subnet_id"`
	Zone                    types.String `tfsdk:"zone"`
	ResourceManagerEndpoint types.String `tfsdk:"resource_manager_endpoint"`
}

func azureBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "Run the router on an Azure VM (armcompute/armnetwork; credentials from the default Azure " +
			"credential chain). The VM's NIC has a network security group with a deny-all inbound rule, the egress " +
			"allowlist and a deny-all outbound rule; the key travels in custom data.",
		Attributes: map[string]schema.Attribute{
			"subscription_id": requiredString("Subscription id."),
			"resource_group":  requiredString("Resource group holding every object created for the host."),
			"location":        requiredString("Azure region, e.g. `westeurope`."),
			"subnet_id":       requiredString("Resource id of the subnet the NIC goes in."),
			"zone": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Availability zone (`1`, `2`, `3`); empty places the VM without a zone.",
			},
			"resource_manager_endpoint": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Azure Resource Manager endpoint override (sovereign clouds, private endpoints).",
				Validators:          []validator.String{validURL},
			},
		},
	}
}

var azureAttrTypes = blockAttrTypes(azureBlock())

func (p *azurePlatform) name() string  { return "azure" }
func (p *azurePlatform) isLocal() bool { return false }

func (p *azurePlatform) qualify(id string) string { return p.Location.ValueString() + ":" + id }

func (p *azurePlatform) complete(_ context.Context, m *routerHostModel, _ bool) diag.Diagnostics {
	return completeCloud(m, "azure", map[string]types.String{
		"subscription_id": p.SubscriptionID, "resource_group": p.ResourceGroup, "location": p.Location, "subnet_id": p.SubnetID,
	})
}

func (p *azurePlatform) driver(_ context.Context, log *slog.Logger, _ []string) (hostDriver, error) {
	var opts *arm.ClientOptions
	if e := p.ResourceManagerEndpoint.ValueString(); e != "" {
		opts = &arm.ClientOptions{ClientOptions: policy.ClientOptions{Cloud: azcloud.Configuration{
			ActiveDirectoryAuthorityHost: azcloud.AzurePublic.ActiveDirectoryAuthorityHost,
			Services:                     map[azcloud.ServiceName]azcloud.ServiceConfiguration{azcloud.ResourceManager: {Endpoint: e, Audience: e}},
		}}}
	}
	return azure.New(azure.Options{
		SubscriptionID: p.SubscriptionID.ValueString(),
		ResourceGroup:  p.ResourceGroup.ValueString(),
		Location:       p.Location.ValueString(),
		SubnetID:       p.SubnetID.ValueString(),
		Zone:           p.Zone.ValueString(),
		ClientOptions:  opts,
		Logger:         log,
	})
}

// completeCloud checks what every cloud block needs: its required arguments, and an image for
// the VM to boot.
func completeCloud(m *routerHostModel, block string, required map[string]types.String) diag.Diagnostics {
	diags := requireBlockValues(block, required)
	if !m.Image.IsUnknown() && m.Image.ValueString() == "" {
		diags.AddAttributeError(path.Root("image"), "Missing image",
			"A cloud router host boots a baked router image: set image (for example from the ztna_image data source).")
	}
	return diags
}

// instanceType is the machine a size tier maps to: the sizing table's row for a cloud (named
// like its platform block), a process for a local host.
func instanceType(p platform, tier string) (string, error) {
	if p.isLocal() {
		return "process", nil
	}
	return sizing.Resolve(p.name(), tier, "")
}

// ---- import ---------------------------------------------------------------------------------

var (
	awsImportRE   = regexp.MustCompile(`^aws:([a-z0-9-]+):(i-[0-9a-f]+)$`)
	gcpImportRE   = regexp.MustCompile(`^gcp:(projects/([^/]+)/zones/([^/]+)/instances/[^/]+)$`)
	azureImportRE = regexp.MustCompile(`(?i)^azure:([a-z0-9]+):(/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/[^/]+)$`)
)

// importedModel is the state of a host known only by its resource id; Read fills in the rest
// of what the platform reports, and the next apply adopts the configuration.
func importedModel(ctx context.Context, id string) (*routerHostModel, error) {
	m := &routerHostModel{
		ID:              types.StringValue(id),
		Name:            types.StringNull(),
		RouterID:        types.StringNull(),
		RegistrationKey: types.StringNull(), RegistrationKeyWO: types.StringNull(), RegistrationKeyWOVersion: types.Int64Null(),
		Size: types.StringNull(), InstanceType: types.StringNull(), Image: types.StringNull(),
		DNSServers: types.ListNull(types.StringType), NTPServers: types.ListNull(types.StringType), Tags: types.MapNull(types.StringType),
		Egress:          types.ListNull(types.ObjectType{AttrTypes: map[string]attr.Type{"destination": types.StringType, "protocol": types.StringType, "ports": types.StringType}}),
		Local:           types.ObjectNull(localAttrTypes),
		AWS:             types.ObjectNull(awsAttrTypes),
		GCP:             types.ObjectNull(gcpAttrTypes),
		Azure:           types.ObjectNull(azureAttrTypes),
		PrivateAddress:  types.StringNull(),
		FailureDomain:   types.StringNull(),
		EgressAllowlist: types.ListNull(types.StringType),
		Drift:           types.ListValueMust(types.StringType, nil),
		FirewallDrift:   types.ListValueMust(types.StringType, nil),
		Timeouts:        timeoutsNull(),
	}
	var diags diag.Diagnostics
	switch {
	case strings.HasPrefix(id, "local:"):
		dir := strings.TrimPrefix(id, "local:")
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("local router host id %q must name the host's absolute state directory: local:/var/lib/ztna/router-hosts/NAME", id)
		}
		m.InstanceID = types.StringValue(dir)
		diags = setBlock(ctx, &m.Local, localAttrTypes, &localPlatform{
			StateRoot: types.StringValue(filepath.Dir(dir)), Isolation: types.StringValue(string(local.IsolationNone)),
			RouterBinary: types.StringNull(), LocalAddr: types.StringNull(),
		})
	case awsImportRE.MatchString(id):
		g := awsImportRE.FindStringSubmatch(id)
		m.InstanceID = types.StringValue(g[2])
		diags = setBlock(ctx, &m.AWS, awsAttrTypes, &awsPlatform{
			Region: types.StringValue(g[1]), SubnetID: types.StringNull(), AssignPublicIP: types.BoolValue(false),
			Endpoint: types.StringNull(), PollInterval: types.StringValue("5s"), SecurityGroupIDs: types.ListNull(types.StringType),
		})
	case gcpImportRE.MatchString(id):
		g := gcpImportRE.FindStringSubmatch(id)
		m.InstanceID = types.StringValue(g[1])
		diags = setBlock(ctx, &m.GCP, gcpAttrTypes, &gcpPlatform{
			Project: types.StringValue(g[2]), Zone: types.StringValue(g[3]), Network: types.StringValue("default"),
			Subnetwork: types.StringNull(), AssignPublicIP: types.BoolValue(false), Endpoint: types.StringNull(), AccessToken: types.StringNull(),
		})
	case azureImportRE.MatchString(id):
		g := azureImportRE.FindStringSubmatch(id)
		m.InstanceID = types.StringValue(g[2])
		diags = setBlock(ctx, &m.Azure, azureAttrTypes, &azurePlatform{
			SubscriptionID: types.StringValue(g[3]), ResourceGroup: types.StringValue(g[4]), Location: types.StringValue(g[1]),
			SubnetID: types.StringNull(), Zone: types.StringNull(), ResourceManagerEndpoint: types.StringNull(),
		})
	default:
		return nil, fmt.Errorf("%q is not a router host id: use local:<state dir>, aws:<region>:<instance id>, "+
			"gcp:projects/<project>/zones/<zone>/instances/<name> or azure:<location>:<VM resource id>", id)
	}
	if diags.HasError() {
		return nil, fmt.Errorf("%v", diags)
	}
	return m, nil
}

func timeoutsNull() timeouts.Value {
	return timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "delete": types.StringType})}
}

// ---- small helpers ------------------------------------------------------------------------

func splitHostPort(hostport string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("port %q is not a port number", port)
	}
	return host, uint16(n), nil
}

// edgeHostPort turns an edge API base URL into host:port (443 when the URL names none).
func edgeHostPort(edge string) (string, error) {
	u, err := url.Parse(edge)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the key's edge endpoint %q is not a URL", edge)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

var (
	validURL = stringCheck{"an http(s) URL", func(s string) error {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http(s) URL", s)
		}
		return nil
	}}
	validDuration = stringCheck{`a positive duration such as "5s"`, func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration (use units ms, s, m)", s)
		}
		return nil
	}}
)

// tflogLogger routes a driver's slog records to Terraform's provider log (TF_LOG) through the
// operation's context, so the masks set on it (the registration key) apply to every record.
func tflogLogger(ctx context.Context) *slog.Logger {
	return slog.New(tflogHandler{ctx: ctx})
}

type tflogHandler struct {
	ctx   context.Context
	attrs []slog.Attr
}

func (h tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tflogHandler) Handle(_ context.Context, r slog.Record) error {
	ctx := h.ctx
	fields := map[string]any{}
	add := func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Resolve().String()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(ctx, r.Message, fields)
	default:
		tflog.Debug(ctx, r.Message, fields)
	}
	return nil
}

func (h tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return h
}

func (h tflogHandler) WithGroup(string) slog.Handler { return h }
