package ztnaprovider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
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
	_ resource.ResourceWithModifyPlan  = (*servicePolicyResource)(nil)
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
			"id":   idAttribute("service policy"),
			"name": nameAttribute("service policy"),
			"identity_roles": rolesAttribute("Identities holding any of these roles are allowed. The plan warns about a role "+
				"that no identity holds, neither on the controller nor in this run's plan (a typo, or an identity not yet "+
				"written): the policy then lets no one in.", true),
			"service_names": schema.SetAttribute{
				ElementType: types.StringType,
				Required:    true,
				MarkdownDescription: "Names of the `ztna_service`s the identities may dial. Reference them " +
					"(`[ztna_service.db.name]`) rather than writing the names: the plan fails for a name that neither the " +
					"controller nor this run's plan has as a service, and the reference is what makes Terraform plan and " +
					"create the service first.",
				Validators: []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(validName)},
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

// ModifyPlan checks the policy against the services and identities there will be: those the
// controller has now and those this run plans (recorded by their resources' plans, which run
// first when the policy references them). A service name that is neither is an error (the
// policy would allow nothing; most likely a typo or a missing reference); a role nobody holds
// is a warning (an identity may get it later). Names already in state only warn when they
// vanish, so that a service deleted behind Terraform's back does not block unrelated applies.
// Values unknown at plan time are checked when the apply plans them again.
func (r *servicePolicyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil || r.data.client == nil {
		return
	}
	var plan servicePolicyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var inState []string
	if !req.State.Raw.IsNull() {
		var state servicePolicyModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		inState = knownStrings(state.ServiceNames)
	}
	name := plan.Name.ValueString()
	if !plan.ServiceNames.IsUnknown() {
		r.checkServices(ctx, name, knownStrings(plan.ServiceNames), inState, &resp.Diagnostics)
	}
	if !plan.IdentityRoles.IsUnknown() {
		r.checkRoles(ctx, name, knownStrings(plan.IdentityRoles), &resp.Diagnostics)
	}
}

func (r *servicePolicyResource) checkServices(ctx context.Context, policy string, names, inState []string, diags *diag.Diagnostics) {
	if len(names) == 0 {
		return
	}
	services, err := r.data.client.ListServices(ctx)
	if err != nil {
		diags.AddWarning("Cannot check the services of service policy "+policy, describeClientError(err))
		return
	}
	existing := make([]string, 0, len(services))
	for _, s := range services {
		existing = append(existing, s.Name)
	}
	var missing, vanished []string
	for _, n := range names {
		switch {
		case slices.Contains(existing, n) || r.data.planned.hasService(n):
		case slices.Contains(inState, n):
			vanished = append(vanished, n)
		default:
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		diags.AddAttributeError(path.Root("service_names"), "Unknown service",
			fmt.Sprintf("Service policy %s names %s, which is neither a service of the controller nor one this plan creates%s. "+
				"Fix the name, or declare the service as a ztna_service and reference it (service_names = [ztna_service.<label>.name]) "+
				"so that Terraform creates it before the policy.", policy, quoteList(missing), knownList(existing)))
	}
	if len(vanished) > 0 {
		diags.AddAttributeWarning(path.Root("service_names"), "Service no longer exists",
			fmt.Sprintf("Service policy %s names %s, which the controller no longer has (deleted outside Terraform?): "+
				"the policy allows nothing there. Create the service again or remove it from service_names.", policy, quoteList(vanished)))
	}
}

func (r *servicePolicyResource) checkRoles(ctx context.Context, policy string, roles []string, diags *diag.Diagnostics) {
	if len(roles) == 0 {
		return
	}
	identities, err := r.data.client.ListIdentities(ctx)
	if err != nil {
		diags.AddWarning("Cannot check the identity roles of service policy "+policy, describeClientError(err))
		return
	}
	var unheld []string
	for _, role := range roles {
		held := r.data.planned.hasIdentityRole(role) || slices.ContainsFunc(identities, func(i api.Identity) bool {
			return slices.Contains(i.Roles, role)
		})
		if !held {
			unheld = append(unheld, role)
		}
	}
	if len(unheld) > 0 {
		diags.AddAttributeWarning(path.Root("identity_roles"), "Identity roles nobody holds",
			fmt.Sprintf("No identity holds %s, neither on the controller nor in this plan: service policy %s lets no one "+
				"with these roles in until one does. Give a ztna_identity the role (roles = [...]), or fix the role.",
				quoteList(unheld), policy))
	}
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// knownList names the services there are, for an error about one that is not (at most 10).
func knownList(names []string) string {
	if len(names) == 0 {
		return " (the controller has no services yet)"
	}
	slices.Sort(names)
	more := ""
	if len(names) > 10 {
		names, more = names[:10], fmt.Sprintf(" and %d more", len(names)-10)
	}
	return " (the controller has " + quoteList(names) + more + ")"
}
