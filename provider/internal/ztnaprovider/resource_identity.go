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
	_ resource.ResourceWithModifyPlan  = (*identityResource)(nil)
)

type identityResource struct{ data *clientData }

func newIdentityResource() resource.Resource { return &identityResource{} }

type identityModel struct {
	ID              types.String `tfsdk:"id"`
	Name            types.String `tfsdk:"name"`
	Roles           types.Set    `tfsdk:"roles"`
	TokenTTL        types.String `tfsdk:"token_ttl"`
	TokenKeepers    types.Map    `tfsdk:"token_keepers"`
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
	// token_ttl reads back the lifetime of the latest token, so an import fills it in; the
	// configured spelling ("60m" for "1h") stays while it means the same. 0 is a controller
	// that did not record it: keep what state has.
	if i.TokenTTLSeconds != 0 && (m.TokenTTL.IsNull() || m.TokenTTL.IsUnknown() || ttlSeconds(m.TokenTTL) != i.TokenTTLSeconds) {
		m.TokenTTL = types.StringValue(formatTTL(i.TokenTTLSeconds))
	}
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
			"on the client's host. What the identity may dial is decided by `ztna_service_policy` through its roles. " +
			"Changing `token_keepers` or `token_ttl` reissues the token in place (same id): for an identity whose token expired " +
			"unused, or whose certificate expired because its host was off for longer than the certificate's life. " +
			"Enrolling with a reissued token issues a certificate for a new key; certificates issued earlier are not " +
			"revoked: they stay valid until they expire, but are no longer renewed. " +
			"Destroying the identity shuts it out within a second, certificate or not: hubs close its links and " +
			"streams and refuse new ones.",
		Attributes: map[string]schema.Attribute{
			"id":    idAttribute("identity"),
			"name":  nameAttribute("identity"),
			"roles": rolesAttribute("Roles of the identity; service policies grant access to roles, never to single identities.", false),
			"token_ttl": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: ttlDescription("enrolment token") + " Also the lifetime of tokens reissued through `token_keepers`. " +
					"Changing it reissues the token in place with the new lifetime (same id; enrolled clients keep their " +
					"certificates and keep renewing them); removing it keeps the current token and its lifetime. " +
					"Read back from the controller, so an import fills it in.",
				Validators:    []validator.String{validTTL},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"token_keepers": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Arbitrary values that, when changed, mint a new enrolment token for this identity " +
					"without replacing it (for example a rotation date, or the id of the host that enrols next). " +
					"The new token revokes any earlier unused one; the identity keeps its id. The controller does not " +
					"know them, so an import cannot read them back: the first apply after an import records the " +
					"configured keepers in place without minting a token (that would revoke a token someone may be " +
					"about to use); change them again to mint one.",
			},
			"enrollment_token": createOnlySecretAttribute("One-time enrolment token for `ztna identity enroll`; "+
				"replaced by a new one whenever `token_keepers` or `token_ttl` changes. To keep the token out of state, use the "+
				"`ztna_identity_enrollment_token` ephemeral resource instead.",
				"To hand the identity a token again (token expired unused, certificate expired, or after import), "+
					"change `token_keepers`, or use `ztna_identity_enrollment_token`."),
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
	var state identityModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	reissue := reissuesToken(plan, state)
	name := plan.Name.ValueString()
	roles := setStrings(ctx, plan.Roles, &resp.Diagnostics)
	out, err := client.UpdateIdentity(ctx, plan.ID.ValueString(), api.IdentityUpdate{Name: &name, Roles: &roles})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update identity "+name, err, identityFields)
		return
	}
	// The PATCH answer still has the old token's lifetime; the planned one is what applies.
	ttl := plan.TokenTTL
	plan.fromAPI(out)
	plan.TokenTTL = ttl
	if reissue {
		out, err = client.ReissueIdentityToken(ctx, plan.ID.ValueString(), api.IdentityTokenReissue{TokenTTLSeconds: ttlSeconds(plan.TokenTTL)})
		if err != nil {
			addAPIError(&resp.Diagnostics, "reissue the enrolment token of identity "+name, err, identityFields)
			// Name and roles were saved, the old token stays: keep the old keepers so the
			// next apply tries the reissue again.
			plan.TokenKeepers, plan.TokenTTL = state.TokenKeepers, state.TokenTTL
			plan.EnrollmentToken, plan.TokenExpiresAt = state.EnrollmentToken, state.TokenExpiresAt
			resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
			return
		}
		plan.fromAPI(out)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// reissuesToken tells whether going from state to plan mints a new enrolment token: when
// token_keepers or token_ttl change. Two changes do not count: keepers set on an imported
// identity (its state has neither keepers nor a token: the keepers were only unknown to the
// import, and a reissue would revoke the token someone may be about to use), and a token_ttl
// that state did not know (a controller that does not report it). An unknown value may
// change, so it counts.
func reissuesToken(plan, state identityModel) bool {
	imported := state.TokenKeepers.IsNull() && state.EnrollmentToken.IsNull()
	keepers := !plan.TokenKeepers.Equal(state.TokenKeepers) && !imported
	ttl := !state.TokenTTL.IsNull() && (plan.TokenTTL.IsUnknown() || ttlSeconds(plan.TokenTTL) != ttlSeconds(state.TokenTTL))
	return keepers || ttl
}

// ModifyPlan records the identity's roles for the policies planned after it, and plans a new
// enrolment token (unknown until apply) when token_keepers or token_ttl change; otherwise the
// token and its expiry keep their state values.
func (r *identityResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, state identityModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if r.data != nil && !plan.Roles.IsUnknown() {
		r.data.planned.addIdentityRoles(knownStrings(plan.Roles))
	}
	if req.State.Raw.IsNull() {
		return
	}
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !reissuesToken(plan, state) {
		return
	}
	plan.EnrollmentToken = types.StringUnknown()
	plan.TokenExpiresAt = types.StringUnknown()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *identityResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	deleteObject(ctx, r.data, req, resp, "identity", "name", (*apiclient.Client).DeleteIdentity)
}

func (r *identityResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByID(ctx, req, resp)
}
