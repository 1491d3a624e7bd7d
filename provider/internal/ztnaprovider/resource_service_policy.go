package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

var (
	_ resource.ResourceWithConfigure   = (*servicePolicyResource)(nil)
	_ resource.ResourceWithImportState = (*servicePolicyResource)(nil)
)

type servicePolicyResource struct{ data *clientData }

func newServicePolicyResource() resource.Resource { return &servicePolicyResource{} }

type servicePolicyModel struct {
	ID            types.String `tfsdk:"id"`
	Name          types.String `tfsdk:"name"`
	IdentityRoles types.Set    `tfsdk:"identity_roles"`
	ServiceNames  types.Set    `tfsdk:"service_names"`
}

func (m *servicePolicyModel) fromAPI(p *api.ServicePolicy) {
	m.ID = types.StringValue(p.ID)
	m.Name = types.StringValue(p.Name)
	m.IdentityRoles = stringSet(p.IdentityRoles)
	m.ServiceNames = stringSet(p.ServiceNames)
}

func (r *servicePolicyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_policy"
}

func (r *servicePolicyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lets identities holding any of `identity_roles` dial the services named in `service_names`. " +
			"Access is denied unless a policy allows it (least privilege); an identity only ever sees the services " +
			"its policies name. Changes take effect on live traffic within a second: streams a policy no longer " +
			"allows are cut, not only new dials refused.",
		Attributes: map[string]schema.Attribute{
			"id":             idAttribute("service policy"),
			"name":           nameAttribute("service policy"),
			"identity_roles": rolesAttribute("Identities holding any of these roles are allowed.", true),
			"service_names": schema.SetAttribute{
				ElementType:         types.StringType,
				Required:            true,
				MarkdownDescription: "Names of the `ztna_service`s the identities may dial.",
				Validators:          []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(validName)},
			},
		},
	}
}

func (r *servicePolicyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (r *servicePolicyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	client, plan, ok := clientAndModel[servicePolicyModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	in := api.ServicePolicyCreate{
		Name:          plan.Name.ValueString(),
		IdentityRoles: setStrings(ctx, plan.IdentityRoles, &resp.Diagnostics),
		ServiceNames:  setStrings(ctx, plan.ServiceNames, &resp.Diagnostics),
	}
	out, err := client.CreateServicePolicy(ctx, in)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create service policy "+in.Name, err, nil)
		return
	}
	plan.fromAPI(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *servicePolicyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	readObject(ctx, r.data, req, resp, "service policy", (*apiclient.Client).GetServicePolicy, (*servicePolicyModel).fromAPI)
}

func (r *servicePolicyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	client, plan, ok := clientAndModel[servicePolicyModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	name := plan.Name.ValueString()
	roles := setStrings(ctx, plan.IdentityRoles, &resp.Diagnostics)
	services := setStrings(ctx, plan.ServiceNames, &resp.Diagnostics)
	out, err := client.UpdateServicePolicy(ctx, plan.ID.ValueString(), api.ServicePolicyUpdate{Name: &name, IdentityRoles: &roles, ServiceNames: &services})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update service policy "+name, err, nil)
		return
	}
	plan.fromAPI(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *servicePolicyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	deleteObject(ctx, r.data, req, resp, "service policy", "name", (*apiclient.Client).DeleteServicePolicy)
}

func (r *servicePolicyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByID(ctx, req, resp)
}
