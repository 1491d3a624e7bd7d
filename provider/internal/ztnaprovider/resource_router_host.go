package ztnaprovider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/sizing"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/regkey"
)

var (
	_ resource.ResourceWithConfigure        = (*routerHostResource)(nil)
	_ resource.ResourceWithImportState      = (*routerHostResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*routerHostResource)(nil)
	_ resource.ResourceWithConfigValidators = (*routerHostResource)(nil)
)

// Default timeouts: a cloud VM boots, installs nothing (the image is baked) and enrols in a
// few minutes; a local process is online in seconds.
const (
	defaultHostCreateTimeout = 15 * time.Minute
	defaultHostDeleteTimeout = 15 * time.Minute
	// onlinePoll is how often Create asks the controller whether the router is online.
	onlinePoll = 500 * time.Millisecond
)

// routerHostResource provisions the machine (or local process) that runs a router, through
// the platform drivers in cloud/.
type routerHostResource struct{ data *clientData }

func newRouterHostResource() resource.Resource { return &routerHostResource{} }

type routerHostModel struct {
	ID                       types.String   `tfsdk:"id"`
	Name                     types.String   `tfsdk:"name"`
	RouterID                 types.String   `tfsdk:"router_id"`
	RegistrationKey          types.String   `tfsdk:"registration_key"`
	RegistrationKeyWO        types.String   `tfsdk:"registration_key_wo"`
	RegistrationKeyWOVersion types.Int64    `tfsdk:"registration_key_wo_version"`
	Size                     types.String   `tfsdk:"size"`
	InstanceType             types.String   `tfsdk:"instance_type"`
	Image                    types.String   `tfsdk:"image"`
	DNSServers               types.List     `tfsdk:"dns_servers"`
	NTPServers               types.List     `tfsdk:"ntp_servers"`
	Tags                     types.Map      `tfsdk:"tags"`
	Egress                   types.List     `tfsdk:"egress"`
	Local                    types.Object   `tfsdk:"local"`
	AWS                      types.Object   `tfsdk:"aws"`
	GCP                      types.Object   `tfsdk:"gcp"`
	Azure                    types.Object   `tfsdk:"azure"`
	InstanceID               types.String   `tfsdk:"instance_id"`
	PrivateAddress           types.String   `tfsdk:"private_address"`
	FailureDomain            types.String   `tfsdk:"failure_domain"`
	EgressAllowlist          types.List     `tfsdk:"egress_allowlist"`
	Drift                    types.List     `tfsdk:"drift"`
	FirewallDrift            types.List     `tfsdk:"firewall_drift"`
	Timeouts                 timeouts.Value `tfsdk:"timeouts"`
}

type egressBlockModel struct {
	Destination types.String `tfsdk:"destination"`
	Protocol    types.String `tfsdk:"protocol"`
	Ports       types.String `tfsdk:"ports"`
}

func (r *routerHostResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_router_host"
}

func (r *routerHostResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A machine that runs a `ztna_router`: a VM on AWS, GCP or Azure, or a local process. " +
			"The host gets an egress-only firewall — no inbound rule at all; outbound only to the controller's " +
			"endpoints (from the registration key), the DNS servers, the targets of the services the router's roles " +
			"host, and the declared `egress` blocks — and receives its registration key only through instance " +
			"metadata (user data, custom data, a 0600 key file locally). Create waits until the router reports " +
			"`online` to the controller. A host deleted or stopped outside Terraform is planned for creation again; " +
			"changes to the instance that break the egress-only model (an ingress rule, a detached or deleted " +
			"firewall) show up in `drift` and force a replacement.\n\n" +
			"The egress allowlist follows the services the router hosts: when a service is added, changed or removed " +
			"(or `egress`, or `dns_servers` on clouds, change), the plan shows `egress_allowlist` changing and apply updates the " +
			"firewall in place — nftables in the namespace, security group rules, VPC firewall rules, NSG rules — " +
			"without touching the VM or the router process. Any other difference between the firewall and the " +
			"allowlist (a rule added or changed outside Terraform) shows up in `firewall_drift` and is repaired in " +
			"place by the next apply.\n\n" +
			"`tags` are updated in place too (instance, volumes and security group on AWS; instance labels on GCP; VM, " +
			"NIC and NSG on Azure), as are `timeouts` and the platform blocks' API settings (`endpoint`, " +
			"`poll_interval`, `resource_manager_endpoint`, `access_token`). What needs a new VM — `image`, `size`, " +
			"`instance_type`, placement (`region`, `subnet_id`, `zone`, `project`, `network`, `subnetwork`, " +
			"`location`, `resource_group`, ...), `assign_public_ip`, the platform, the key — replaces the host. A replacement host enrols again, which needs an unused key: use `registration_key_wo` with the " +
			"`ztna_registration_key` ephemeral resource (a fresh key on every run), or rotate the " +
			"`ztna_registration_key` with `keepers`." +
			"\n\n" +
			"`create_before_destroy` works when the replacement has a name and a router of its own: the new host starts " +
			"while the old one still runs, so the two cannot share a name (a local state directory, a GCP or Azure VM " +
			"name, an AWS security group name; Create refuses a name in use and says so), and a new host enrolling the " +
			"same `router_id` would supersede the old host's certificate and cut it off before it is destroyed. Put what " +
			"replaces the host (for example a hash of the image) in `name` and in the `ztna_router`'s name, and replace " +
			"the `ztna_router` with the host (`replace_triggered_by`). The old host's router is then undisturbed until " +
			"Terraform destroys it, and drains as it stops (new streams go to other routers, open ones may finish for " +
			"`ztna-router run --drain`, 5 s). `examples/modules/redundant-router` does this for a rolling upgrade of a pair.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`<platform>:<instance id>`, e.g. `aws:eu-west-1:i-0abc…` or `local:/var/lib/ztna/router-hosts/edge-a`; the import id.",
				PlanModifiers:       keep,
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Name of the host on its platform; every object created for it is named after it. " +
					"1-40 lower-case letters, digits and `-`, starting with a letter.",
				Validators: []validator.String{stringCheck{"a router host name", cloud.ValidateName}},
			},
			"router_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Id of the `ztna_router` this host runs. Its roles decide which service targets the egress allowlist contains.",
			},
			"registration_key": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "The router's one-time registration key (`ztna_registration_key.<name>.key`). Stored in state " +
					"(sensitive). Exactly one of `registration_key` and `registration_key_wo` is required.",
			},
			"registration_key_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				MarkdownDescription: "The registration key as a write-only argument (Terraform 1.11+): never stored in state or plan " +
					"files. Pass `ephemeral.ztna_registration_key.<name>.key`. Change `registration_key_wo_version` to " +
					"re-provision the host with a new key.",
			},
			"registration_key_wo_version": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: "Any number; changing it replaces the host so that it enrols with the current `registration_key_wo`.",
				Validators: []validator.Int64{
					int64validator.AlsoRequires(path.MatchRoot("registration_key_wo")),
				},
			},
			"size": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Size tier from the sizing table: `low-med` (2 vCPU, 4 GiB), `med` (4 vCPU, 8 GiB) or `high` " +
					"(8 vCPU, 16 GiB); see the `ztna_router_sizing` data source. Defaults to `low-med` on clouds. " +
					"Conflicts with `instance_type`. A local host is a process and has no size.",
				Validators: []validator.String{
					stringvalidator.OneOf(tierNames()...),
					stringvalidator.ConflictsWith(path.MatchRoot("instance_type")),
				},
			},
			"instance_type": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Explicit machine type (`c6i.large`, `e2-standard-2`, `Standard_F2s_v2`) instead of a `size` " +
					"tier. Computed from `size` when not set; `process` for local hosts.",
			},
			"image": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Image the VM boots: an AMI id, a GCP image URL, an Azure image or gallery image version id " +
					"(see the `ztna_image` data source). Required on clouds; a free-form label on local hosts.",
			},
			"ntp_servers": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Host names or IP addresses of the time servers the router's image syncs with (the Packer " +
					"provisioner's `ntp_servers`), allowed on UDP 123 each and updated in place. Cloud time services at " +
					"link-local addresses (AWS `169.254.169.123`, GCP's metadata server) need no rule.",
				Validators: []validator.List{listvalidator.ValueStringsAre(stringCheck{"a host name or IP address", egress.ValidateNTPServer})},
			},
			"dns_servers": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Resolvers the router uses for service names (`IP` for port 53, or `IP:port`), allowed on TCP " +
					"and UDP. Local hosts use the first one for the router; on clouds the VM's resolver is set by the " +
					"network, and cloud resolvers at link-local addresses need no rule.",
				Validators: []validator.List{listvalidator.ValueStringsAre(stringCheck{"an IP address or IP:port", func(s string) error {
					_, err := egress.ParseDNSServer(s)
					return err
				}})},
			},
			"tags": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Tags (AWS), labels (GCP) or tags (Azure) on the objects created for the host, updated in " +
					"place; tags changed on the cloud are read back and planned as an in-place update. GCP labels are checked " +
					"at plan time (lower-case keys and values). A local host has nothing to tag: it keeps them in state, and a change is an in-place update. Never put secrets in tags.",
			},
			"instance_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The platform's id of the host: EC2 instance id, GCP instance path, Azure VM resource id, or the local state directory.",
				PlanModifiers:       keep,
			},
			"private_address": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The host's private IP address (a local host in a network namespace: its namespace address).",
				PlanModifiers:       keep,
			},
			"failure_domain": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Where the host runs, " + failureDomainFormat + ". Its router reports the same string " +
					"as `ztna_router.failure_domain`. Two routers of a service belong in different failure domains.",
				PlanModifiers: keep,
			},
			"egress_allowlist": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				MarkdownDescription: "The outbound allowlist the host's firewall enforces, one `protocol destination:ports` " +
					"rule per element: the controller endpoints, `dns_servers`, the targets of the services the router " +
					"hosts and the `egress` blocks. Planned again on every run (the services on the controller may have " +
					"changed) and applied in place. Nothing inbound is allowed.",
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"firewall_drift": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				MarkdownDescription: "Differences between the host's firewall and `egress_allowlist` found when the host was " +
					"read: an allow missing, or any allow beyond the allowlist (an accept rule inserted into the namespace's " +
					"nftables chains, an extra security group rule). The next apply repairs them in place.",
			},
			"drift": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				MarkdownDescription: "Changes made outside Terraform that break the egress-only model and cannot be repaired " +
					"in place (an added ingress rule, a deleted or detached firewall, a removed namespace firewall). Empty " +
					"when the host is as created; anything here forces a replacement.",
			},
		},
		Blocks: map[string]schema.Block{
			"egress": schema.ListNestedBlock{
				MarkdownDescription: "Additional outbound rule, for example a proxy or an NTP server.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"destination": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "A DNS name, an IP address or a CIDR prefix. Cloud firewalls match addresses, so a name is allowed on its ports to any address there; declare a CIDR to pin it.",
						Validators: []validator.String{stringCheck{"a DNS name, IP address or CIDR prefix", func(s string) error {
							_, err := egress.NormalizeDestination(s)
							return err
						}}},
					},
					"protocol": schema.StringAttribute{
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString("tcp"),
						MarkdownDescription: "`tcp` (default) or `udp`.",
						Validators:          []validator.String{stringvalidator.OneOf("tcp", "udp")},
					},
					"ports": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "A port (`123`) or a range (`8000-8100`).",
						Validators: []validator.String{stringCheck{`a port or a range "from-to"`, func(s string) error {
							_, err := egress.ParsePortRange(s)
							return err
						}}},
					},
				}},
			},
			"local":    localBlock(),
			"aws":      awsBlock(),
			"gcp":      gcpBlock(),
			"azure":    azureBlock(),
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Delete: true}),
		},
	}
}

func tierNames() []string {
	var out []string
	for _, t := range sizing.Tiers() {
		out = append(out, string(t))
	}
	return out
}

func (r *routerHostResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		onePlatform{},
		resourcevalidator.ExactlyOneOf(path.MatchRoot("registration_key"), path.MatchRoot("registration_key_wo")),
	}
}

// onePlatform requires exactly one platform block. Unlike resourcevalidator.ExactlyOneOf it
// treats a block with unknown arguments as unknown: a dynamic block whose for_each is not known
// yet (a module validated before its inputs are) looks like a configured block of unknowns.
type onePlatform struct{}

var platformBlocks = []string{"local", "aws", "gcp", "azure"}

func (onePlatform) Description(context.Context) string {
	return "exactly one of the blocks " + strings.Join(platformBlocks, ", ") + " must be configured"
}

func (v onePlatform) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v onePlatform) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var set []string
	for _, name := range platformBlocks {
		var block types.Object
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root(name), &block)...)
		switch {
		case block.IsNull():
		case block.IsUnknown() || hasUnknown(block):
			return
		default:
			set = append(set, name)
		}
	}
	if len(set) != 1 && !resp.Diagnostics.HasError() {
		resp.Diagnostics.AddError("Exactly one platform block is required",
			fmt.Sprintf("A ztna_router_host runs on exactly one platform: declare one of the blocks local, aws, gcp or azure (found %d: %s).",
				len(set), strings.Join(set, ", ")))
	}
}

func (r *routerHostResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configured(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan fills in what is known before apply (instance type, local defaults), checks what
// the platform needs, and replaces the host when a creation-time argument changed or drift was
// found. A host just imported (marked in private state) adopts the configuration in place.
func (r *routerHostResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan routerHostModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, diags := platformOf(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() || p == nil {
		return // unknown platform block values: checked again at apply
	}
	resp.Diagnostics.Append(p.complete(ctx, &plan, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.InstanceType.IsUnknown() {
		if it, err := instanceType(p, plan.Size.ValueString()); err == nil {
			plan.InstanceType = types.StringValue(it)
		}
	}
	plan.Drift = types.ListValueMust(types.StringType, nil)
	plan.FirewallDrift = types.ListValueMust(types.StringType, nil)
	if !req.State.Raw.IsNull() {
		var state routerHostModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		imported, diags := importedHost(ctx, req.Private, &state)
		resp.Diagnostics.Append(diags...)
		r.planReplacement(p, &plan, &state, imported, resp)
		if len(resp.RequiresReplace) == 0 {
			r.planAllowlist(ctx, &plan, &state, req.Config, resp)
		} else {
			r.checkReplacementKey(ctx, &plan, &state, resp)
		}
	}
	// A new host enrols its router, except a local one created again in its old state
	// directory (its process had exited), which restarts with the saved enrolment.
	if (req.State.Raw.IsNull() && !p.isLocal()) || len(resp.RequiresReplace) > 0 {
		r.checkReenrolmentKey(ctx, &plan, req.Config, &resp.Diagnostics)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// planAllowlist plans the host's allowlist from what the controller has now (services come
// and go without the host's configuration changing), so a changed service set is an in-place
// update of egress_allowlist; firewall drift found by Read is planned away the same way.
func (r *routerHostResource) planAllowlist(ctx context.Context, plan, state *routerHostModel, config tfsdk.Config, resp *resource.ModifyPlanResponse) {
	if r.data == nil || r.data.client == nil || plan.RouterID.IsUnknown() || hasUnknownValues(plan.DNSServers, plan.NTPServers, plan.Egress) {
		return // the allowlist is planned from state; apply computes it
	}
	key, keyPath := registrationKey(ctx, plan, config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() || key == "" {
		// An unknown key (a key resource created in this run): its controller endpoints are
		// not known yet; the allowlist in state stays until a later plan.
		return
	}
	rules, ok := r.allowlist(ctx, r.data.client, plan, key, keyPath, &resp.Diagnostics)
	if !ok {
		return
	}
	plan.EgressAllowlist = stringList(ruleStrings(rules))
	if drift := listStrings(state.FirewallDrift); len(drift) > 0 {
		resp.Diagnostics.AddAttributeWarning(path.Root("firewall_drift"), "Router host "+state.Name.ValueString()+"'s firewall drifted",
			"Changed outside Terraform: "+strings.Join(drift, "; ")+". Apply makes the firewall the allowlist again, in place.")
	}
}

func hasUnknownValues(values ...attr.Value) bool {
	for _, v := range values {
		if v.IsUnknown() {
			return true
		}
		if l, ok := v.(types.List); ok {
			for _, e := range l.Elements() {
				if e.IsUnknown() {
					return true
				}
				if o, ok := e.(types.Object); ok {
					for _, a := range o.Attributes() {
						if a.IsUnknown() {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// parseRules reads egress_allowlist elements back: "tcp 10.0.0.0/8:5432", "udp name:8000-8100".
func parseRules(list []string) ([]egress.Rule, error) {
	out := make([]egress.Rule, 0, len(list))
	for _, s := range list {
		proto, rest, ok := strings.Cut(s, " ")
		i := strings.LastIndexByte(rest, ':')
		if !ok || i < 0 {
			return nil, fmt.Errorf("egress rule %q is not protocol destination:ports", s)
		}
		ports, err := egress.ParsePortRange(rest[i+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, egress.Rule{Destination: rest[:i], Protocol: egress.Protocol(proto), Ports: ports})
	}
	return out, nil
}

// planReplacement replaces the host when an argument that only takes effect at creation
// changed. The allowlist's inputs (egress blocks, and DNS servers on clouds, where the VM's
// resolver is the network's) are applied in place instead.
func (r *routerHostResource) planReplacement(p platform, plan, state *routerHostModel, imported bool, resp *resource.ModifyPlanResponse) {
	if imported {
		return // imported: the next apply records the configuration without touching the host
	}
	changed := map[string]bool{
		"name":                        !plan.Name.Equal(state.Name),
		"router_id":                   !plan.RouterID.Equal(state.RouterID),
		"registration_key":            !plan.RegistrationKey.Equal(state.RegistrationKey),
		"registration_key_wo_version": !plan.RegistrationKeyWOVersion.Equal(state.RegistrationKeyWOVersion),
		"size":                        !plan.Size.Equal(state.Size),
		"instance_type":               !plan.InstanceType.Equal(state.InstanceType),
		"image":                       !plan.Image.Equal(state.Image),
		// A local router is started with its first DNS server.
		"dns_servers": p.isLocal() && !plan.DNSServers.Equal(state.DNSServers),
	}
	for attr, c := range changed {
		if c {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root(attr))
		}
	}
	// Tags, and the block arguments that only say how to reach the cloud's API, change in
	// place; placement (region, zone, subnet, network) needs a new VM.
	for _, block := range []struct {
		name        string
		plan, state types.Object
	}{{"local", plan.Local, state.Local}, {"aws", plan.AWS, state.AWS}, {"gcp", plan.GCP, state.GCP}, {"azure", plan.Azure, state.Azure}} {
		resp.RequiresReplace = append(resp.RequiresReplace, blockReplacements(block.name, block.plan, block.state)...)
	}
	if drift := listStrings(state.Drift); len(drift) > 0 {
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("drift"))
		resp.Diagnostics.AddAttributeWarning(path.Root("drift"), "Router host "+state.Name.ValueString()+" drifted",
			"Changed outside Terraform: "+strings.Join(drift, "; ")+". The host will be replaced; the new host enrols again "+
				"and needs an unused registration key (registration_key_wo with the ztna_registration_key ephemeral resource "+
				"provides one on every run; otherwise rotate the ztna_registration_key's keepers).")
	}
}

// inPlaceBlockAttributes are the platform block arguments a host takes without a new VM:
// API endpoints, polling and write-only credentials are used by the provider, not the VM.
var inPlaceBlockAttributes = map[string]bool{
	"aws.endpoint": true, "aws.poll_interval": true, "aws.security_group_ids": true,
	"gcp.endpoint": true, "gcp.access_token": true,
	"azure.resource_manager_endpoint": true,
}

// blockReplacements names the arguments of a platform block whose change needs a new host;
// a block added or removed (another platform) replaces the host as a whole.
func blockReplacements(name string, plan, state types.Object) []path.Path {
	if plan.IsNull() != state.IsNull() {
		return []path.Path{path.Root(name)}
	}
	if plan.IsNull() {
		return nil
	}
	var out []path.Path
	have := state.Attributes()
	for attr, v := range plan.Attributes() {
		if inPlaceBlockAttributes[name+"."+attr] {
			continue
		}
		if old, ok := have[attr]; !ok || !v.Equal(old) {
			out = append(out, path.Root(name).AtName(attr))
		}
	}
	return out
}

// checkReplacementKey refuses, at plan time, a replacement that would enrol with a stateful
// key already used: apply would destroy the working host and the new one would be refused
// ("key was already used"), leaving the router offline.
func (r *routerHostResource) checkReplacementKey(ctx context.Context, plan, state *routerHostModel, resp *resource.ModifyPlanResponse) {
	if r.data == nil || r.data.client == nil || plan.RegistrationKey.IsUnknown() || plan.RegistrationKey.IsNull() {
		return // a write-only key (fresh every run) or a key replaced in this run
	}
	k, err := regkey.Parse(plan.RegistrationKey.ValueString())
	if err != nil {
		return // ValidateConfig and apply report it
	}
	stored, err := r.data.client.GetRegistrationKey(ctx, k.ID)
	if err != nil || stored.State == api.KeyUnused {
		return
	}
	var changed []string
	for _, p := range resp.RequiresReplace {
		changed = append(changed, p.String())
	}
	resp.Diagnostics.AddAttributeError(path.Root("registration_key"), "Router host "+plan.Name.ValueString()+" cannot be replaced with its registration key",
		fmt.Sprintf("The host must be replaced (%s), and the new host enrols again, but its registration key %s is %s: the "+
			"current host would be destroyed and the new one refused. Give the host a fresh key: pass "+
			"ephemeral.ztna_registration_key.<name>.key to registration_key_wo (a new key on every run), or add a keepers "+
			"entry to the ztna_registration_key that changes with the host (for example the image) so the key is "+
			"replaced too.", strings.Join(changed, ", "), k.ID, stored.State))
}

// checkReenrolmentKey refuses, at plan time, a new host (a replacement, or a host re-created
// after it vanished) for a router that is already enrolled when its key may not enrol that
// router again: the controller would refuse the enrolment (router-enrolled) after the old
// host was destroyed. Unknown keys and routers (made in this run) are checked by Create.
func (r *routerHostResource) checkReenrolmentKey(ctx context.Context, plan *routerHostModel, config tfsdk.Config, diags *diag.Diagnostics) {
	if r.data == nil || r.data.client == nil || plan.RouterID.IsUnknown() || plan.RegistrationKey.IsUnknown() {
		return
	}
	key, keyPath := registrationKey(ctx, plan, config, diags)
	if diags.HasError() || key == "" {
		return
	}
	if err := reenrolmentRefusal(ctx, r.data.client, plan.RouterID.ValueString(), key); err != nil {
		diags.AddAttributeError(keyPath, "Router host "+plan.Name.ValueString()+" cannot enrol its router", err.Error())
	}
}

// reenrolmentRefusal says why the controller would refuse key for router routerID because the
// router is already enrolled (store.AdmitEnrolment), and how to fix it; nil when it would not
// (or when the key or router cannot be read: other checks report those).
func reenrolmentRefusal(ctx context.Context, client *apiclient.Client, routerID, key string) error {
	k, err := regkey.Parse(key)
	if err != nil {
		return nil
	}
	stored, err := client.GetRegistrationKey(ctx, k.ID)
	if err != nil || stored.AllowReenrollment || stored.State != api.KeyUnused {
		return nil
	}
	router, err := client.GetRouter(ctx, routerID)
	if err != nil || router.Status == api.RouterUnenrolled || router.ReenrollmentAllowed {
		return nil
	}
	return fmt.Errorf("router %s (%s) is already enrolled, and registration key %s was created without allow_reenrollment, "+
		"so the controller refuses to enrol the router again with it (that protects a running router from stray keys). "+
		"A router host enrols its router again whenever it is replaced: set allow_reenrollment = true on the "+
		"ztna_registration_key (ephemeral or resource) that feeds this host, or have an operator reset the router's "+
		"enrolment (POST /v1/routers/%s/reset-enrollment)", router.Name, routerID, k.ID, routerID)
}

// registrationKey is the key from whichever argument carries it; the write-only one is only
// in the configuration.
func registrationKey(ctx context.Context, plan *routerHostModel, config interface {
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}, diags *diag.Diagnostics) (string, path.Path) {
	if !plan.RegistrationKey.IsNull() {
		return plan.RegistrationKey.ValueString(), path.Root("registration_key")
	}
	var wo types.String
	diags.Append(config.GetAttribute(ctx, path.Root("registration_key_wo"), &wo)...)
	return wo.ValueString(), path.Root("registration_key_wo")
}

func (r *routerHostResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	client, plan, ok := clientAndModel[routerHostModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	key, keyPath := registrationKey(ctx, &plan, req.Config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = tflog.MaskAllFieldValuesStrings(ctx, key)
	ctx = tflog.MaskMessageStrings(ctx, key)
	timeout, diags := plan.Timeouts.Create(ctx, defaultHostCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	p, diags := platformOf(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(p.complete(ctx, &plan, true)...)
	resp.Diagnostics.Append(configCredentials(ctx, p, req.Config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	rules, ok := r.allowlist(ctx, client, &plan, key, keyPath, &resp.Diagnostics)
	if !ok {
		return
	}
	// Checked again now that every value is known: a host whose enrolment the controller
	// would refuse is not created (it would only wait out its timeout). A local host may
	// restart with its saved enrolment instead (see ModifyPlan).
	if err := reenrolmentRefusal(ctx, client, plan.RouterID.ValueString(), key); err != nil && !p.isLocal() {
		resp.Diagnostics.AddAttributeError(keyPath, "Router host "+plan.Name.ValueString()+" cannot enrol its router", err.Error())
		return
	}
	drv, err := p.driver(ctx, tflogLogger(ctx), listStrings(plan.DNSServers))
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root(p.name()), "Cannot use the "+p.name()+" platform", err.Error())
		return
	}
	defer closeDriver(drv)
	spec := cloud.HostSpec{
		Name:            plan.Name.ValueString(),
		RegistrationKey: key,
		Tier:            plan.Size.ValueString(),
		Image:           plan.Image.ValueString(),
		Egress:          rules,
		Tags:            mapStrings(ctx, plan.Tags, &resp.Diagnostics),
		RouterID:        plan.RouterID.ValueString(),
		DNSServers:      listStrings(plan.DNSServers),
	}
	if !p.isLocal() {
		// Only an instance type from the configuration is explicit; otherwise the plan holds
		// the tier's type.
		var explicit types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("instance_type"), &explicit)...)
		spec.InstanceType = explicit.ValueString()
	}
	tflog.Info(ctx, "creating router host", map[string]any{"host": spec.Name, "platform": p.name(), "egress_rules": len(rules)})
	host, err := drv.Create(ctx, spec)
	if err != nil {
		detail := err.Error()
		if errors.Is(err, cloud.ErrNameInUse) {
			detail += ". With create_before_destroy the new host starts while the one it replaces still runs, so the two " +
				"need different names: make name change with what replaces the host (examples/modules/redundant-router " +
				"adds a hash of the image and placement)."
		}
		resp.Diagnostics.AddError("Cannot create router host "+spec.Name, detail)
		return
	}
	plan.setHost(p, host)
	plan.EgressAllowlist = stringList(ruleStrings(rules))
	// The host exists from here on: record it before waiting, so that a router that never comes
	// online leaves a tainted resource (replaced on the next apply), not an orphaned machine.
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var keyID string
	if k, err := regkey.Parse(key); err == nil {
		keyID = k.ID
	}
	if err := waitOnline(ctx, client, drv, plan.RouterID.ValueString(), keyID, host.ID); err != nil {
		resp.Diagnostics.AddError("Router host "+spec.Name+" did not come online", err.Error()+
			fmt.Sprintf(". The host is kept and marked tainted; the next apply replaces it. Raise timeouts.create (now %s) for slow platforms.", timeout))
	}
}

// allowlist computes the host's egress rules: the controller endpoints from the registration
// key, the DNS servers, the targets of every service the router's roles host, and the extra
// egress blocks.
func (r *routerHostResource) allowlist(ctx context.Context, client *apiclient.Client, plan *routerHostModel, key string, keyPath path.Path, diags *diag.Diagnostics) ([]egress.Rule, bool) {
	k, err := regkey.Parse(key)
	if err != nil {
		diags.AddAttributeError(keyPath, "Invalid registration key", err.Error()+". Pass the key attribute of a ztna_registration_key.")
		return nil, false
	}
	if k.Kind != regkey.KindRouter {
		diags.AddAttributeError(keyPath, "Not a router registration key",
			fmt.Sprintf("The key is a %s key; a router host needs the key of a ztna_registration_key for its router.", k.Kind))
		return nil, false
	}
	routerID := plan.RouterID.ValueString()
	if stored, err := client.GetRegistrationKey(ctx, k.ID); err == nil && stored.RouterID != routerID {
		diags.AddAttributeError(keyPath, "Registration key of another router",
			fmt.Sprintf("The key enrols router %s, but router_id is %s: pass the key of router_id's ztna_registration_key.", stored.RouterID, routerID))
		return nil, false
	}
	router, err := client.GetRouter(ctx, routerID)
	if err != nil {
		if apiclient.IsNotFound(err) {
			diags.AddAttributeError(path.Root("router_id"), "Unknown router", "No router "+routerID+" on the controller: use the id of a ztna_router.")
		} else {
			diags.AddError("Cannot read router "+routerID, describeClientError(err))
		}
		return nil, false
	}
	services, err := client.ListServices(ctx)
	if err != nil {
		diags.AddError("Cannot list services", describeClientError(err))
		return nil, false
	}
	targets, err := serviceTargets(services, router.Roles)
	if err != nil {
		diags.AddError("Invalid service on the controller", err.Error())
		return nil, false
	}
	controllers, err := controllerEndpoints(k)
	if err != nil {
		diags.AddAttributeError(keyPath, "Invalid registration key", err.Error())
		return nil, false
	}
	in := egress.Input{
		Controllers: controllers,
		DNSServers:  listStrings(plan.DNSServers),
		NTPServers:  listStrings(plan.NTPServers),
		Services:    targets,
	}
	var blocks []egressBlockModel
	diags.Append(plan.Egress.ElementsAs(ctx, &blocks, false)...)
	for _, b := range blocks {
		ports, err := egress.ParsePortRange(b.Ports.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("egress"), "Invalid egress ports", err.Error())
			return nil, false
		}
		in.Extra = append(in.Extra, egress.Rule{Destination: b.Destination.ValueString(), Protocol: egress.Protocol(b.Protocol.ValueString()), Ports: ports})
	}
	rules, err := egress.Compute(in)
	if err != nil {
		diags.AddError("Cannot compute the egress allowlist", err.Error())
		return nil, false
	}
	return rules, !diags.HasError()
}

// controllerEndpoints are the controller addresses a key names: its edge API URLs, control
// channel and fabric endpoints, each on its own port. A key without control or fabric
// endpoints (older controllers) falls back to the production ports on the edge hosts.
func controllerEndpoints(k *regkey.Key) ([]egress.ControllerEndpoint, error) {
	var out []egress.ControllerEndpoint
	var edgeHosts []string
	add := func(hostport, what string) error {
		host, port, err := splitHostPort(hostport)
		if err != nil {
			return fmt.Errorf("the key's %s endpoint %q: %w", what, hostport, err)
		}
		out = append(out, egress.ControllerEndpoint{Host: host, Ports: []uint16{port}})
		return nil
	}
	for _, e := range k.Edge {
		hostport, err := edgeHostPort(e)
		if err != nil {
			return nil, err
		}
		if err := add(hostport, "edge"); err != nil {
			return nil, err
		}
		h, _, _ := splitHostPort(hostport)
		edgeHosts = append(edgeHosts, h)
	}
	for _, c := range k.Control {
		if err := add(c, "control"); err != nil {
			return nil, err
		}
	}
	for _, f := range k.Fabric {
		if err := add(f, "fabric"); err != nil {
			return nil, err
		}
	}
	if len(k.Control) == 0 || len(k.Fabric) == 0 {
		for _, h := range edgeHosts {
			out = append(out, egress.ControllerEndpoint{Host: h})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the key names no controller endpoint: create the key on a controller with a public edge address")
	}
	return out, nil
}

// waitOnline polls the controller until the new host has enrolled with its key (keyID, when
// known) and the router reports online. The key matters when a host replaces another of the
// same router: the old host's session can still read "online" for a moment after its VM is
// gone, and a wait that ended then would let an ephemeral key be revoked, unused, at the end
// of the run, before the new host enrols. Meanwhile it checks the host, so a router process
// that died or a VM that was deleted fails at once instead of at the timeout.
func waitOnline(ctx context.Context, client *apiclient.Client, drv hostDriver, routerID, keyID, hostID string) error {
	tick := time.NewTicker(onlinePoll)
	defer tick.Stop()
	last := "unknown"
	enrolled := keyID == ""
	for i := 0; ; i++ {
		if !enrolled {
			if k, err := client.GetRegistrationKey(ctx, keyID); err == nil && k.State == api.KeyUsed {
				enrolled = true
			} else if err == nil {
				last = "not enrolled yet (key " + k.State + ")"
			}
		}
		rt, err := client.GetRouter(ctx, routerID)
		switch {
		case err == nil && rt.Status == api.RouterOnline && enrolled:
			return nil
		case err == nil && enrolled:
			last = rt.Status
		case apiclient.IsNotFound(err):
			return fmt.Errorf("router %s was deleted from the controller while its host started", routerID)
		}
		if i%10 == 9 {
			if _, err := drv.Read(ctx, hostID); errors.Is(err, cloud.ErrNotFound) {
				return fmt.Errorf("the host stopped before its router came online: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("router %s is still %q when the create timeout ran out: check that the host reaches the controller (egress_allowlist) and that the key is unused", routerID, last)
		case <-tick.C:
		}
	}
}

func (m *routerHostModel) setHost(p platform, h cloud.Host) {
	m.ID = types.StringValue(p.name() + ":" + p.qualify(h.ID))
	m.InstanceID = types.StringValue(h.ID)
	m.PrivateAddress = types.StringValue(h.PrivateAddress)
	m.FailureDomain = types.StringValue(h.FailureDomain.String())
	if h.InstanceType != "" {
		m.InstanceType = types.StringValue(h.InstanceType)
	}
	m.Drift = stringList(h.Drift)
	if m.Drift.IsNull() {
		m.Drift = types.ListValueMust(types.StringType, nil)
	}
}

// recordedDriver decodes the platform block of a host in state and opens its driver; nil means
// the diagnostics say why not. The DNS servers resolve the allowlist's names (local hosts).
// config, when there is one (Update), carries the write-only credentials.
func recordedDriver(ctx context.Context, state *routerHostModel, config *tfsdk.Config, diags *diag.Diagnostics) (platform, hostDriver) {
	p, d := platformOf(ctx, state)
	diags.Append(d...)
	if diags.HasError() {
		return nil, nil
	}
	if config != nil {
		if diags.Append(configCredentials(ctx, p, *config)...); diags.HasError() {
			return nil, nil
		}
	}
	drv, err := p.driver(ctx, tflogLogger(ctx), listStrings(state.DNSServers))
	if err != nil {
		diags.AddError("Cannot use the "+p.name()+" platform", err.Error())
		return nil, nil
	}
	return p, drv
}

func (r *routerHostResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state routerHostModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, drv := recordedDriver(ctx, &state, nil, &resp.Diagnostics)
	if drv == nil {
		return
	}
	defer closeDriver(drv)
	host, err := drv.Read(ctx, state.InstanceID.ValueString())
	if errors.Is(err, cloud.ErrNotFound) {
		tflog.Warn(ctx, "router host is gone; planning to create it again", map[string]any{"host": state.Name.ValueString(), "reason": err.Error()})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read router host "+state.Name.ValueString(), err.Error())
		return
	}
	instanceType := state.InstanceType
	state.setHost(p, host)
	if host.Tags != nil && (len(host.Tags) > 0 || !state.Tags.IsNull()) {
		// Tags changed on the cloud show as an in-place update back to the configuration.
		tags, d := types.MapValueFrom(ctx, types.StringType, host.Tags)
		if resp.Diagnostics.Append(d...); resp.Diagnostics.HasError() {
			return
		}
		state.Tags = tags
	}
	state.GCP = withoutWriteOnly(state.GCP)
	if p.isLocal() && !instanceType.IsNull() {
		state.InstanceType = instanceType
	}
	if ap, ok := p.(*awsPlatform); ok && host.SecurityGroups != nil && (len(host.SecurityGroups) > 0 || !ap.SecurityGroupIDs.IsNull()) {
		// Groups attached or detached in the console show as an in-place update.
		ap.SecurityGroupIDs = stringList(host.SecurityGroups)
		if resp.Diagnostics.Append(setBlock(ctx, &state.AWS, awsAttrTypes, ap)...); resp.Diagnostics.HasError() {
			return
		}
	}
	imported, diags := importedHost(ctx, req.Private, &state)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if imported { // take what the platform knows
		if host.RouterID != "" {
			state.RouterID = types.StringValue(host.RouterID)
		}
		if len(host.DNSServers) > 0 {
			state.DNSServers = stringList(host.DNSServers)
		}
		if host.Name != "" {
			state.Name = types.StringValue(host.Name)
		}
		if host.Image != "" {
			state.Image = types.StringValue(host.Image)
		}
		if lp, ok := p.(*localPlatform); ok && host.Isolation != "" {
			// The import id names only the directory; the host's record says how it is confined.
			lp.Isolation = types.StringValue(host.Isolation)
			if resp.Diagnostics.Append(setBlock(ctx, &state.Local, localAttrTypes, lp)...); resp.Diagnostics.HasError() {
				return
			}
		}
	}
	state.FirewallDrift = types.ListValueMust(types.StringType, nil)
	if !state.EgressAllowlist.IsNull() && !state.EgressAllowlist.IsUnknown() {
		drift, ok := firewallDrift(ctx, drv, &state, &resp.Diagnostics)
		if !ok {
			return
		}
		state.FirewallDrift = drift
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// firewallDrift asks the driver how the host's firewall differs from the allowlist in m.
func firewallDrift(ctx context.Context, drv hostDriver, m *routerHostModel, diags *diag.Diagnostics) (types.List, bool) {
	rules, err := parseRules(listStrings(m.EgressAllowlist))
	if err != nil {
		diags.AddAttributeError(path.Root("egress_allowlist"), "Invalid egress allowlist in state", err.Error())
		return types.List{}, false
	}
	drift, err := drv.EgressDrift(ctx, m.InstanceID.ValueString(), rules)
	if err != nil {
		diags.AddError("Cannot read the firewall of router host "+m.Name.ValueString(), err.Error())
		return types.List{}, false
	}
	return types.ListValueMust(types.StringType, stringList(drift).Elements()), true
}

// Update applies what changes in place: tags (labels on GCP) on the cloud's objects, the egress allowlist (services added or removed,
// egress blocks, DNS servers on clouds) and repairs of firewall drift go to the host's
// firewall, without touching the VM or process; timeouts and the configuration of an
// imported host are recorded. Everything else replaces the host (ModifyPlan).
func (r *routerHostResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state routerHostModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.InstanceType.IsUnknown() {
		plan.InstanceType = state.InstanceType
	}
	if plan.EgressAllowlist.IsUnknown() {
		// Not planned (the key was unknown at plan time): compute it now.
		client := r.data.requireClient(&resp.Diagnostics)
		if client == nil {
			return
		}
		key, keyPath := registrationKey(ctx, &plan, req.Config, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
		rules, ok := r.allowlist(ctx, client, &plan, key, keyPath, &resp.Diagnostics)
		if !ok {
			return
		}
		plan.EgressAllowlist = stringList(ruleStrings(rules))
	}
	var drv hostDriver
	openDriver := func() bool {
		if drv == nil {
			if _, drv = recordedDriver(ctx, &plan, &req.Config, &resp.Diagnostics); drv == nil {
				return false
			}
		}
		return true
	}
	defer func() {
		if drv != nil {
			closeDriver(drv)
		}
	}()
	planTags, stateTags := mapStrings(ctx, plan.Tags, &resp.Diagnostics), mapStrings(ctx, state.Tags, &resp.Diagnostics)
	if !maps.Equal(planTags, stateTags) {
		if !openDriver() {
			return
		}
		// Local hosts have no tags (nothing to update); on clouds the driver retags in place.
		if t, ok := drv.(tagUpdater); ok {
			tflog.Info(ctx, "updating the router host's tags in place", map[string]any{"host": plan.Name.ValueString(), "tags": len(planTags)})
			if err := t.UpdateTags(ctx, plan.InstanceID.ValueString(), planTags); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("tags"), "Cannot update the tags of router host "+plan.Name.ValueString(), err.Error())
				return
			}
		}
	}
	if !plan.AWS.IsNull() && !state.AWS.IsNull() {
		want, have := plan.AWS.Attributes()["security_group_ids"], state.AWS.Attributes()["security_group_ids"]
		if !slices.Equal(listStrings(want.(types.List)), listStrings(have.(types.List))) {
			if !openDriver() {
				return
			}
			if err := drv.(securityGroupUpdater).UpdateSecurityGroups(ctx, plan.InstanceID.ValueString(), listStrings(want.(types.List))); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("aws").AtName("security_group_ids"), "Cannot change the security groups of router host "+plan.Name.ValueString(), err.Error())
				return
			}
		}
	}
	if !plan.EgressAllowlist.Equal(state.EgressAllowlist) || len(listStrings(state.FirewallDrift)) > 0 {
		if !openDriver() {
			return
		}
		rules, err := parseRules(listStrings(plan.EgressAllowlist))
		if err != nil {
			resp.Diagnostics.AddError("Invalid egress allowlist", err.Error())
			return
		}
		tflog.Info(ctx, "updating the router host's firewall in place", map[string]any{"host": plan.Name.ValueString(), "egress_rules": len(rules)})
		if err := drv.UpdateEgress(ctx, plan.InstanceID.ValueString(), rules); err != nil {
			resp.Diagnostics.AddError("Cannot update the firewall of router host "+plan.Name.ValueString(), err.Error())
			return
		}
		drift, ok := firewallDrift(ctx, drv, &plan, &resp.Diagnostics)
		if !ok {
			return
		}
		if n := len(drift.Elements()); n > 0 {
			resp.Diagnostics.AddError("Router host "+plan.Name.ValueString()+"'s firewall is not its allowlist after the update",
				strings.Join(listStrings(drift), "; "))
			return
		}
	}
	plan.FirewallDrift = types.ListValueMust(types.StringType, nil)
	// An imported host has adopted its configuration: from now on it is like any other.
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, importedKey, nil)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *routerHostResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state routerHostModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultHostDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, drv := recordedDriver(ctx, &state, nil, &resp.Diagnostics)
	if drv == nil {
		return
	}
	defer closeDriver(drv)
	if err := drv.Delete(ctx, state.InstanceID.ValueString()); err != nil {
		resp.Diagnostics.AddError("Cannot delete router host "+state.Name.ValueString(), err.Error())
	}
}

// ImportState accepts the resource id: local:<state dir>, aws:<region>:<instance id>,
// gcp:projects/<p>/zones/<z>/instances/<name>, azure:<VM resource id>.
func (r *routerHostResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	m, err := importedModel(ctx, req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import id", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, importedKey, []byte("true"))...)
}

// importedKey marks, in the resource's private state, a host imported and not yet applied:
// Read fills in what the platform recorded, and the next apply adopts the configuration in
// place instead of replacing the host.
const importedKey = "imported"

// importedHost reports whether the host in state was imported and not yet applied. State
// imported by an earlier provider carries no mark, only the null router_id it had then.
func importedHost(ctx context.Context, private interface {
	GetKey(context.Context, string) ([]byte, diag.Diagnostics)
}, state *routerHostModel) (bool, diag.Diagnostics) {
	v, diags := private.GetKey(ctx, importedKey)
	return len(v) > 0 || state.RouterID.IsNull(), diags
}

func ruleStrings(rules []egress.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.String()
	}
	return out
}

// stringList is a Terraform list of strings (null for nil).
func stringList(values []string) types.List {
	if values == nil {
		return types.ListNull(types.StringType)
	}
	elems := make([]attr.Value, len(values))
	for i, v := range values {
		elems[i] = types.StringValue(v)
	}
	return types.ListValueMust(types.StringType, elems)
}

// listStrings returns the known string elements of a list (none when null or unknown).
func listStrings(l types.List) []string {
	var out []string
	for _, e := range l.Elements() {
		if s, ok := e.(types.String); ok && !s.IsNull() && !s.IsUnknown() {
			out = append(out, s.ValueString())
		}
	}
	return out
}

func mapStrings(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	out := map[string]string{}
	if m.IsNull() || m.IsUnknown() {
		return out
	}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}
