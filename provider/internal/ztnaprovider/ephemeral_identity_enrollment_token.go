package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

var (
	_ ephemeral.EphemeralResourceWithConfigure = (*identityTokenEphemeral)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*identityTokenEphemeral)(nil)
)

// identityTokenEphemeral hands out an identity's enrolment token without it resting in state
// or in a plan file: a write-only attribute only carries a value into a provider, so a token
// the controller mints can leave the provider without state only as an ephemeral value.
type identityTokenEphemeral struct{ data *clientData }

func newIdentityEnrollmentTokenEphemeralResource() ephemeral.EphemeralResource {
	return &identityTokenEphemeral{}
}

type identityTokenEphemeralModel struct {
	IdentityID   types.String `tfsdk:"identity_id"`
	TTL          types.String `tfsdk:"ttl"`
	RevokeUnused types.Bool   `tfsdk:"revoke_unused"`
	Token        types.String `tfsdk:"token"`
	ExpiresAt    types.String `tfsdk:"expires_at"`
}

func (e *identityTokenEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity_enrollment_token"
}

func (e *identityTokenEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reissues a `ztna_identity`'s one-time enrolment token without storing it in state or in the " +
			"plan file: the path that keeps identity tokens out of state (a write-only attribute can only carry a " +
			"value into a provider, never a token the controller mints out of it). Terraform opens ephemeral resources " +
			"on every plan and apply, so each run reissues the token, which revokes the identity's earlier unused " +
			"tokens (the `enrollment_token` the `ztna_identity` resource holds in state among them); enrolled clients " +
			"keep their certificates and keep renewing them. When the run ends the token is revoked if nothing " +
			"enrolled with it, so plans leave no live token. Hand it to something that enrols during the apply and " +
			"accepts ephemeral values: a provisioner or connection block (e.g. `ztna identity enroll --token-file` on " +
			"the client's host), a provider block, or a write-only attribute. For a consumer that enrols after the run " +
			"set `revoke_unused = false`; the next plan still revokes that token when it reissues one, so such a " +
			"consumer suits the `ztna_identity` resource's `enrollment_token` better.",
		Attributes: map[string]schema.Attribute{
			"identity_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Id of the `ztna_identity` the token enrols.",
			},
			"ttl": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: ttlDescription("token"),
				Validators:          []validator.String{validTTL},
			},
			"revoke_unused": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Whether the identity's unused tokens are revoked when Terraform closes the ephemeral " +
					"resource at the end of the plan or apply. Defaults to `true`.",
			},
			"token": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "The one-time enrolment token (`ztna-key-v1.…`) for `ztna identity enroll`.",
			},
			"expires_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the token stops being accepted (RFC 3339).",
			},
		},
	}
}

func (e *identityTokenEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (e *identityTokenEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	client, m, ok := clientAndModel[identityTokenEphemeralModel](ctx, e.data, req.Config, &resp.Diagnostics)
	if !ok {
		return
	}
	id := m.IdentityID.ValueString()
	out, err := client.ReissueIdentityToken(ctx, id, api.IdentityTokenReissue{TokenTTLSeconds: ttlSeconds(m.TTL)})
	if err != nil {
		addAPIError(&resp.Diagnostics, "issue an enrolment token for identity "+id, err, map[string]string{"token_ttl_seconds": "ttl"})
		return
	}
	m.Token = types.StringValue(out.EnrollmentToken)
	m.ExpiresAt = timeString(&out.TokenExpiresAt)
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
	markForRevoke(ctx, resp, m.RevokeUnused, id)
}

// Close revokes the identity's unused tokens: the one Open reissued, unless it enrolled
// someone during the run (Terraform closes after every consumer in the run is done).
func (e *identityTokenEphemeral) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	id := toRevoke(ctx, req, &resp.Diagnostics)
	if id == "" {
		return // revoke_unused = false
	}
	client := e.data.requireClient(&resp.Diagnostics)
	if client == nil {
		return
	}
	if _, err := client.RevokeIdentityTokens(ctx, id); err != nil && !apiclient.IsNotFound(err) {
		resp.Diagnostics.AddWarning("Cannot revoke the unused enrolment token of identity "+id, describeClientError(err)+
			" The token stays valid until it expires or is revoked (POST /v1/identities/"+id+"/enrollment-token/revoke).")
	}
}
