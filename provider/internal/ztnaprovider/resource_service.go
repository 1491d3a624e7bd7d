package ztnaprovider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

var (
	_ resource.ResourceWithConfigure   = (*serviceResource)(nil)
	_ resource.ResourceWithImportState = (*serviceResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*serviceResource)(nil)
)

type serviceResource struct{ data *clientData }

func newServiceResource() resource.Resource { return &serviceResource{} }

type serviceModel struct {
	ID             types.String `tfsdk:"id"`
	Name           types.String `tfsdk:"name"`
	Address        types.String `tfsdk:"address"`
	Port           types.Int64  `tfsdk:"port"`
	PortRanges     types.Set    `tfsdk:"port_ranges"`
	Protocol       types.String `tfsdk:"protocol"`
	RouterRoles    types.Set    `tfsdk:"router_roles"`
	Routers        types.List   `tfsdk:"routers"`
	FailureDomains types.Set    `tfsdk:"failure_domains"`
}

// serviceRouteType is one element of the resource's computed routers list; the data source's
// elements add checked_at (serviceRouteReportType), which changes on every health check and
// so stays out of resource state.
var (
	serviceRouteType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"router_id":      types.StringType,
		"router_name":    types.StringType,
		"status":         types.StringType,
		"failure_domain": types.StringType,
		"resolvable":     types.BoolType,
		"reachable":      types.BoolType,
	}}
	serviceRouteReportType = types.ObjectType{AttrTypes: func() map[string]attr.Type {
		m := maps.Clone(serviceRouteType.AttrTypes)
		m["checked_at"] = types.StringType
		return m
	}()}
)

// serviceRoutes reads every page of the routers that host the service; nil after a
// failure, which it adds to diags.
func serviceRoutes(ctx context.Context, client *apiclient.Client, id string, diags *diag.Diagnostics) []api.ServiceRoute {
	routes, err := client.ServiceRouters(ctx, id)
	if err != nil {
		diags.AddError("Cannot read the routers of service "+id, describeClientError(err))
	}
	return routes
}

// fromAPI copies a service and the routers that host it (serviceRoutes) into the model;
// withCheckedAt adds when each router last checked (data source only).
func (m *serviceModel) fromAPI(s *api.Service, hosts []api.ServiceRoute, withCheckedAt bool, diags *diag.Diagnostics) {
	m.ID = types.StringValue(s.ID)
	m.Name = types.StringValue(s.Name)
	m.Address = types.StringValue(s.Address)
	m.Port = types.Int64Value(int64(s.Port))
	m.PortRanges = stringSet(s.PortRanges)
	m.Protocol = types.StringValue(s.Protocol)
	m.RouterRoles = stringSet(s.RouterRoles)
	routeType := serviceRouteType
	if withCheckedAt {
		routeType = serviceRouteReportType
	}
	routes := make([]attr.Value, 0, len(hosts))
	for _, r := range hosts {
		values := map[string]attr.Value{
			"router_id":      types.StringValue(r.RouterID),
			"router_name":    types.StringValue(r.RouterName),
			"status":         types.StringValue(r.Status),
			"failure_domain": types.StringValue(r.FailureDomain),
			"resolvable":     types.BoolValue(r.Resolvable),
			"reachable":      types.BoolValue(r.Reachable),
		}
		if withCheckedAt {
			values["checked_at"] = timeString(r.CheckedAt)
		}
		v, d := types.ObjectValue(routeType.AttrTypes, values)
		diags.Append(d...)
		routes = append(routes, v)
	}
	var d diag.Diagnostics
	m.Routers, d = types.ListValue(routeType, routes)
	diags.Append(d...)
	m.FailureDomains = stringSet(failureDomains(hosts))
}

// failureDomains lists the distinct failure domains of the routers hosting a service; routers
// that have not reported one yet are not counted, since nothing says they are independent.
func failureDomains(routes []api.ServiceRoute) []string {
	var out []string
	for _, r := range routes {
		if r.FailureDomain != "" && !slices.Contains(out, r.FailureDomain) {
			out = append(out, r.FailureDomain)
		}
	}
	return out
}

func (r *serviceResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service"
}

func (r *serviceResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A private service (`address:port`) exposed through the overlay and hosted by every router " +
			"whose roles match `router_roles`. Those routers resolve `address` with the customer's DNS and dial only " +
			"the targets assigned to them. Terraform warns when the hosting routers span fewer than two failure " +
			"domains, since one outage would then cut the service off.",
		Attributes: map[string]schema.Attribute{
			"id":   idAttribute("service"),
			"name": nameAttribute("service"),
			"address": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Fully qualified domain name (resolved by the hosting routers) or IP address of the target, e.g. `prod-db.customerdomain.me`.",
				Validators:          []validator.String{validAddress},
			},
			"port": schema.Int64Attribute{
				Required:            true,
				MarkdownDescription: "Port of the target (1–65535).",
				Validators:          []validator.Int64{validPort},
			},
			"port_ranges": schema.SetAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				Computed:            true,
				Default:             setdefault.StaticValue(types.SetValueMust(types.StringType, nil)),
				MarkdownDescription: "Additional port ranges exposed on the same target, each `\"from-to\"` (e.g. `\"8000-8100\"`).",
				Validators:          []validator.Set{setvalidator.ValueStringsAre(validPortRange)},
			},
			"protocol": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(api.ProtocolTCP),
				MarkdownDescription: "`tcp` (the default and, for now, the only value): the data plane carries TCP streams only, so `udp` is refused at plan time until datagrams are carried end to end.",
				Validators:          []validator.String{validProtocol},
			},
			"router_roles": rolesAttribute("Routers holding any of these roles host the service.", true),
			"routers": schema.ListNestedAttribute{
				Computed: true,
				MarkdownDescription: "The routers currently selected to host the service and what each last reported about it. " +
					"When each last checked changes on every health check and is not kept in state (an idle stack's " +
					"`terraform plan -refresh-only` finds no changes): read it with the `ztna_service` data source or `ztna status`.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"router_id":      schema.StringAttribute{Computed: true, MarkdownDescription: "Router id."},
					"router_name":    schema.StringAttribute{Computed: true, MarkdownDescription: "Router name."},
					"status":         schema.StringAttribute{Computed: true, MarkdownDescription: "Router status (`unenrolled`, `online`, `offline`)."},
					"failure_domain": schema.StringAttribute{Computed: true, MarkdownDescription: "Failure domain the router reported, `cloud/region/zone`."},
					"resolvable":     schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the router could resolve `address`."},
					"reachable":      schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the router could connect to the target."},
				}},
			},
			"failure_domains": schema.SetAttribute{
				ElementType:         types.StringType,
				Computed:            true,
				MarkdownDescription: "Distinct failure domains (`cloud/region/zone`) of the hosting routers. Fewer than two means no redundancy.",
			},
		},
	}
}

func (r *serviceResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configured(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan records the service's name for the policies planned after it, and warns when
// the routers that would host the service span fewer than two failure domains. It looks at the routers the controller knows now, so the warning shows up at plan
// time, before anything is created.
func (r *serviceResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil || r.data.client == nil {
		return
	}
	var plan serviceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Name.IsUnknown() {
		r.data.planned.addService(plan.Name.ValueString())
	}
	if plan.RouterRoles.IsUnknown() || plan.Name.IsUnknown() {
		return
	}
	roles := setStrings(ctx, plan.RouterRoles, &resp.Diagnostics)
	routers, err := r.data.client.ListRouters(ctx)
	if err != nil {
		resp.Diagnostics.AddWarning("Cannot check the redundancy of service "+plan.Name.ValueString(), describeClientError(err))
		return
	}
	if msg := redundancyProblem(plan.Name.ValueString(), roles, routers); msg != "" {
		resp.Diagnostics.AddAttributeWarning(path.Root("router_roles"), "Service is not redundant", msg)
	}
}

// redundancyProblem explains, or returns "", why routers with any of roles do not give the
// service two failure domains.
func redundancyProblem(service string, roles []string, routers []api.Router) string {
	var hosts []string
	var domains []string
	for _, rt := range routers {
		if !slices.ContainsFunc(rt.Roles, func(role string) bool { return slices.Contains(roles, role) }) {
			continue
		}
		hosts = append(hosts, rt.Name)
		if rt.FailureDomain != "" && !slices.Contains(domains, rt.FailureDomain) {
			domains = append(domains, rt.FailureDomain)
		}
	}
	if len(domains) >= 2 {
		return ""
	}
	have := "no router has"
	if len(hosts) > 0 {
		have = fmt.Sprintf("routers %s have", strings.Join(hosts, ", "))
	}
	where := "no reported failure domain"
	if len(domains) == 1 {
		where = "only failure domain " + domains[0]
	}
	return fmt.Sprintf("Service %s is hosted in %s: %s one of the roles %s. Deploy routers with these roles in at least "+
		"two distinct failure domains (different clouds, regions or zones), so that the service survives the loss of one.",
		service, where, have, strings.Join(roles, ", "))
}

// serviceInputs reads the configurable attributes of a plan.
func serviceInputs(ctx context.Context, plan serviceModel, diags *diag.Diagnostics) api.ServiceCreate {
	return api.ServiceCreate{
		Name:        plan.Name.ValueString(),
		Address:     plan.Address.ValueString(),
		Port:        int(plan.Port.ValueInt64()),
		PortRanges:  setStrings(ctx, plan.PortRanges, diags),
		Protocol:    plan.Protocol.ValueString(),
		RouterRoles: setStrings(ctx, plan.RouterRoles, diags),
	}
}

func (r *serviceResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	client, plan, ok := clientAndModel[serviceModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	in := serviceInputs(ctx, plan, &resp.Diagnostics)
	out, err := client.CreateService(ctx, in)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create service "+in.Name, err, nil)
		return
	}
	r.save(ctx, client, out, &resp.State, &resp.Diagnostics)
}

func (r *serviceResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	readObject(ctx, r.data, req, resp, "service", (*apiclient.Client).GetService, func(state *serviceModel, out *api.Service) {
		state.fromAPI(out, serviceRoutes(ctx, r.data.client, out.ID, &resp.Diagnostics), false, &resp.Diagnostics)
	})
}

func (r *serviceResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	client, plan, ok := clientAndModel[serviceModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	in := serviceInputs(ctx, plan, &resp.Diagnostics)
	out, err := client.UpdateService(ctx, plan.ID.ValueString(), api.ServiceUpdate{
		Name: &in.Name, Address: &in.Address, Port: &in.Port, PortRanges: &in.PortRanges,
		Protocol: &in.Protocol, RouterRoles: &in.RouterRoles,
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update service "+in.Name, err, nil)
		return
	}
	r.save(ctx, client, out, &resp.State, &resp.Diagnostics)
}

// stateSetter is the part of tfsdk.State that save needs.
type stateSetter interface {
	Set(context.Context, any) diag.Diagnostics
}

func (r *serviceResource) save(ctx context.Context, client *apiclient.Client, out *api.Service, state stateSetter, diags *diag.Diagnostics) {
	var m serviceModel
	m.fromAPI(out, serviceRoutes(ctx, client, out.ID, diags), false, diags)
	diags.Append(state.Set(ctx, &m)...)
}

func (r *serviceResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	deleteObject(ctx, r.data, req, resp, "service", "name", (*apiclient.Client).DeleteService)
}

func (r *serviceResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByID(ctx, req, resp)
}
