package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

var (
	_ resource.ResourceWithConfigure   = (*routerResource)(nil)
	_ resource.ResourceWithImportState = (*routerResource)(nil)
)

type routerResource struct{ data *clientData }

func newRouterResource() resource.Resource { return &routerResource{} }

type routerModel struct {
	ID            types.String `tfsdk:"id"`
	Name          types.String `tfsdk:"name"`
	Roles         types.Set    `tfsdk:"roles"`
	Cost          types.Int64  `tfsdk:"cost"`
	Status        types.String `tfsdk:"status"`
	Version       types.String `tfsdk:"version"`
	FailureDomain types.String `tfsdk:"failure_domain"`
}

func (m *routerModel) fromAPI(r *api.Router) {
	m.ID = types.StringValue(r.ID)
	m.Name = types.StringValue(r.Name)
	m.Roles = stringSet(r.Roles)
	m.Cost = types.Int64Value(int64(r.Cost))
	m.Status = types.StringValue(r.Status)
	m.Version = types.StringValue(r.Version)
	m.FailureDomain = types.StringValue(r.FailureDomain)
}

func (r *routerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_router"
}

func (r *routerResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An edge router as the controller knows it. Creating it reserves the router's identity; " +
			"a `ztna_registration_key` for it lets a `ztna-router` process enrol as this router. " +
			"`status`, `version` and `failure_domain` are reported by the router and refreshed on every plan. What changes " +
			"while nothing happens (when the controller last heard from the router) is not kept in state, so an idle " +
			"stack's `terraform plan -refresh-only` finds no changes: read it with the `ztna_router` data source or " +
			"`ztna status`.",
		Attributes: map[string]schema.Attribute{
			"id":   idAttribute("router"),
			"name": nameAttribute("router"),
			"roles": rolesAttribute("Roles of the router. Services select the routers that host them by role "+
				"(`ztna_service.router_roles`). Lower-case letters, digits, `.`, `_` and `-`.", false),
			"cost": schema.Int64Attribute{
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(0),
				MarkdownDescription: "Static cost added to the measured link cost when smart routing picks a router (0–1000000; lower is preferred). Defaults to 0.",
				Validators:          []validator.Int64{validCost},
			},
			"status": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`unenrolled` until a registration key is used, then `online` or `offline` as reported over the control channel.",
			},
			"version": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Software version the router last reported (empty before it first connects).",
			},
			"failure_domain": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Failure domain the router reported from its host, " + failureDomainFormat +
					". The same string as its host's `ztna_router_host.failure_domain`; services should be hosted in at least two.",
			},
		},
	}
}

func (r *routerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (r *routerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	client, plan, ok := clientAndModel[routerModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	in := api.RouterCreate{
		Name:  plan.Name.ValueString(),
		Roles: setStrings(ctx, plan.Roles, &resp.Diagnostics),
		Cost:  int(plan.Cost.ValueInt64()),
	}
	out, err := client.CreateRouter(ctx, in)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create router "+in.Name, err, nil)
		return
	}
	plan.fromAPI(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *routerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	readObject(ctx, r.data, req, resp, "router", (*apiclient.Client).GetRouter, (*routerModel).fromAPI)
}

func (r *routerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	client, plan, ok := clientAndModel[routerModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	name := plan.Name.ValueString()
	roles := setStrings(ctx, plan.Roles, &resp.Diagnostics)
	cost := int(plan.Cost.ValueInt64())
	out, err := client.UpdateRouter(ctx, plan.ID.ValueString(), api.RouterUpdate{Name: &name, Roles: &roles, Cost: &cost})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update router "+name, err, nil)
		return
	}
	plan.fromAPI(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *routerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	deleteObject(ctx, r.data, req, resp, "router", "name", (*apiclient.Client).DeleteRouter)
}

func (r *routerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByID(ctx, req, resp)
}
