package ztnaprovider

import (
	"context"
	"net/url"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/api"
)

var _ datasource.DataSourceWithConfigure = (*egressRulesDataSource)(nil)

// egressRulesDataSource renders cloud/egress's allowlist for teams that run their own firewalls.
type egressRulesDataSource struct{ data *clientData }

func newEgressRulesDataSource() datasource.DataSource { return &egressRulesDataSource{} }

type egressRulesModel struct {
	RouterRoles     types.Set    `tfsdk:"router_roles"`
	ControllerHost  types.String `tfsdk:"controller_host"`
	ControllerPorts types.List   `tfsdk:"controller_ports"`
	DNSServers      types.List   `tfsdk:"dns_servers"`
	NTPServers      types.List   `tfsdk:"ntp_servers"`
	Rules           types.List   `tfsdk:"rules"`
}

var egressRuleType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"destination":   types.StringType,
	"protocol":      types.StringType,
	"from_port":     types.Int64Type,
	"to_port":       types.Int64Type,
	"ports":         types.StringType,
	"firewall_cidr": types.StringType,
}}

func (d *egressRulesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_egress_rules"
}

func (d *egressRulesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The outbound allowlist of a router host, for teams that manage their own firewalls: the " +
			"controller on ports 80, 443 and 6262 over TCP and UDP, DNS resolvers on port 53, time servers on UDP 123, and the targets of every " +
			"service hosted by routers with `router_roles`. A router needs no inbound rule at all. Rules are " +
			"normalised: deduplicated, adjacent port ranges merged, sorted.",
		Attributes: map[string]schema.Attribute{
			"router_roles": schema.SetAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Roles of the router: the targets of the services these roles host are added. Omit for the controller and DNS rules only.",
				Validators:          []validator.Set{setvalidator.ValueStringsAre(validRole)},
			},
			"controller_host": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Controller host name or address the router dials. Defaults to the host of the provider's `address`.",
				Validators:          []validator.String{validAddress},
			},
			"controller_ports": schema.ListAttribute{
				ElementType:         types.Int64Type,
				Optional:            true,
				MarkdownDescription: "Controller ports. Defaults to 80, 443 and 6262 (fabric, edge API, control channel).",
				Validators:          []validator.List{listvalidator.ValueInt64sAre(validPort)},
			},
			"dns_servers": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "IP addresses of the resolvers the router uses (port 53 TCP and UDP each). Cloud resolvers at link-local addresses need no rule.",
			},
			"ntp_servers": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Host names or IP addresses of the time servers the router's image uses (the Packer provisioner's `ntp_servers`), UDP 123 each. Cloud time services at link-local addresses (AWS `169.254.169.123`) need no rule in a cloud firewall.",
			},
			"rules": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The allowlist, one rule per destination, protocol and port range.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"destination":   schema.StringAttribute{Computed: true, MarkdownDescription: "CIDR prefix or lower-case DNS name."},
					"protocol":      schema.StringAttribute{Computed: true, MarkdownDescription: "`tcp` or `udp`."},
					"from_port":     schema.Int64Attribute{Computed: true, MarkdownDescription: "First port."},
					"to_port":       schema.Int64Attribute{Computed: true, MarkdownDescription: "Last port (equal to `from_port` for one port)."},
					"ports":         schema.StringAttribute{Computed: true, MarkdownDescription: "`443` or `8000-8100`."},
					"firewall_cidr": schema.StringAttribute{Computed: true, MarkdownDescription: "Destination for address-based firewalls: the CIDR, or `0.0.0.0/0` (still port-restricted) for a DNS name."},
				}},
			},
		},
	}
}

func (d *egressRulesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (d *egressRulesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m egressRulesModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	in := egress.Input{
		DNSServers: setStrings(ctx, m.DNSServers, &resp.Diagnostics),
		NTPServers: setStrings(ctx, m.NTPServers, &resp.Diagnostics),
	}

	host := m.ControllerHost.ValueString()
	if host == "" && d.data != nil && d.data.address != "" {
		if u, err := url.Parse(d.data.address); err == nil {
			host = u.Hostname()
		}
	}
	if host == "" {
		resp.Diagnostics.AddAttributeError(path.Root("controller_host"), "Controller host unknown",
			"Set controller_host, or configure the provider's address (ZTNA_ADDR), so the rules can name the controller.")
		return
	}
	var ports []int64
	resp.Diagnostics.Append(m.ControllerPorts.ElementsAs(ctx, &ports, false)...)
	ctrl := egress.ControllerEndpoint{Host: host}
	for _, p := range ports {
		ctrl.Ports = append(ctrl.Ports, uint16(p))
	}
	in.Controllers = []egress.ControllerEndpoint{ctrl}

	if roles := setStrings(ctx, m.RouterRoles, &resp.Diagnostics); len(roles) > 0 {
		client := d.data.requireClient(&resp.Diagnostics)
		if client == nil {
			return
		}
		services, err := client.ListServices(ctx)
		if err != nil {
			resp.Diagnostics.AddError("Cannot list services", describeClientError(err))
			return
		}
		targets, err := serviceTargets(services, roles)
		if err != nil {
			resp.Diagnostics.AddError("Invalid service on the controller", err.Error())
			return
		}
		in.Services = targets
	}
	if resp.Diagnostics.HasError() {
		return
	}
	rules, err := egress.Compute(in)
	if err != nil {
		resp.Diagnostics.AddError("Cannot compute egress rules", err.Error())
		return
	}
	m.Rules = egressRulesValue(rules, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// serviceTargets returns the targets of the services that routers with any of roles host.
func serviceTargets(services []api.Service, roles []string) ([]egress.ServiceTarget, error) {
	var out []egress.ServiceTarget
	for _, s := range services {
		if !slices.ContainsFunc(s.RouterRoles, func(r string) bool { return slices.Contains(roles, r) }) {
			continue
		}
		t := egress.ServiceTarget{Address: s.Address, Ports: []egress.PortRange{egress.Port(uint16(s.Port))}}
		for _, r := range s.PortRanges {
			pr, err := egress.ParsePortRange(r)
			if err != nil {
				return nil, err
			}
			t.Ports = append(t.Ports, pr)
		}
		proto, err := egress.ParseProtocol(s.Protocol)
		if err != nil {
			return nil, err
		}
		t.Protocols = []egress.Protocol{proto}
		out = append(out, t)
	}
	return out, nil
}

func egressRulesValue(rules []egress.Rule, diags *diag.Diagnostics) types.List {
	elems := make([]attr.Value, 0, len(rules))
	for _, r := range rules {
		v, d := types.ObjectValue(egressRuleType.AttrTypes, map[string]attr.Value{
			"destination":   types.StringValue(r.Destination),
			"protocol":      types.StringValue(string(r.Protocol)),
			"from_port":     types.Int64Value(int64(r.Ports.From)),
			"to_port":       types.Int64Value(int64(r.Ports.To)),
			"ports":         types.StringValue(r.Ports.String()),
			"firewall_cidr": types.StringValue(r.FirewallCIDR()),
		})
		diags.Append(d...)
		elems = append(elems, v)
	}
	l, d := types.ListValue(egressRuleType, elems)
	diags.Append(d...)
	return l
}
