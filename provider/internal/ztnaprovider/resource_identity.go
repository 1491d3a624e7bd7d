package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

var (
	_ resource.ResourceWithConfigure   = (*identityResource)(nil)
	_ resource.ResourceWithImportState = (*identityResource)(nil)
)

type identityResource struct{ data *clientData }

func newIdentityResource() resource.Resource { return &identityResource{} }

type identityModel struct {
	ID              types.String `tfsdk:"id"`
	Name            types.String `tfsdk:"name"`
	Roles           types.Set    `tfsdk:"roles"`
	TokenTTL        types.String `tfsdk:"token_ttl"`
	EnrollmentToken types.String `tfsdk:"enrollment_token"`
	TokenExpiresAt  types.String `tfsdk:"token_expires_at"`
	Enrolled        types.Bool   `tfsdk:"enrolled"`
}

func (m *identityModel) fromAPI(i *api.Identity) {
	m.ID = types.StringValue(i.ID)
	m.Name = types.StringValue(i.Name)
	m.Roles = stringSet(i.Roles)
	m.Enrolled = types.BoolValue(i.Enrolled)
	m.TokenExpiresAt = timeString(&i.TokenExpiresAt)
	if i.EnrollmentToken != "" {
		m.EnrollmentToken = types.StringValue(i.EnrollmentToken)
	}
}

func (r *identityResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity"
}

func (r *identityResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A client identity (an integration runtime) that dials services through the overlay. " +
			"Creating it mints a one-time enrolment token; `ztna identity enroll` turns the token into a certificate " +
			"on the client's host. What the identity may dial is decided by `ztna_service_policy` through its roles.",
		Attributes: map[string]schema.Attribute{
			"id":    idAttribute("identity"),
			"name":  nameAttribute("identity"),
			"roles": rolesAttribute("Roles of the identity; service policies grant access to roles, never to single identities.", false),
			"token_ttl": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: ttlDescription("enrolment token") + " Changing it creates a new identity (the token is minted once, at creation).",
				Validators:          []validator.String{validTTL},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"enrollment_token": createOnlySecretAttribute("One-time enrolment token for `ztna identity enroll`.",
				"An identity that has not enrolled yet and needs a token is replaced to mint a new one "+
					"(`terraform apply -replace`)."),
			"token_expires_at": expiresAtAttribute("enrolment token"),
			"enrolled": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the identity has enrolled (refreshed on every plan).",
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *identityResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configured(req.ProviderData, &resp.Diagnostics)
}

var identityFields = map[string]string{"token_ttl_seconds": "token_ttl"}

func (r *identityResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	client, plan, ok := clientAndModel[identityModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	in := api.IdentityCreate{
		Name:            plan.Name.ValueString(),
		Roles:           setStrings(ctx, plan.Roles, &resp.Diagnostics),
		TokenTTLSeconds: ttlSeconds(plan.TokenTTL),
	}
	out, err := client.CreateIdentity(ctx, in)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create identity "+in.Name, err, identityFields)
		return
	}
	plan.fromAPI(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *identityResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	readObject(ctx, r.data, req, resp, "identity", (*apiclient.Client).GetIdentity, (*identityModel).fromAPI)
}

func (r *identityResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	client, plan, ok := clientAndModel[identityModel](ctx, r.data, req.Plan, &resp.Diagnostics)
	if !ok {
		return
	}
	name := plan.Name.ValueString()
	roles := setStrings(ctx, plan.Roles, &resp.Diagnostics)
	out, err := client.UpdateIdentity(ctx, plan.ID.ValueString(), api.IdentityUpdate{Name: &name, Roles: &roles})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update identity "+name, err, identityFields)
		return
	}
	plan.fromAPI(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *identityResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	deleteObject(ctx, r.data, req, resp, "identity", "name", (*apiclient.Client).DeleteIdentity)
}

func (r *identityResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByID(ctx, req, resp)
}
