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
	_ ephemeral.EphemeralResourceWithConfigure = (*registrationKeyEphemeral)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*registrationKeyEphemeral)(nil)
)

// registrationKeyEphemeral mints a key that Terraform never writes to state or plan files:
// the way to hand a key to a write-only attribute (a secret store's value_wo, a router host's
// key argument) without the key ever resting in state.
type registrationKeyEphemeral struct{ data *clientData }

func newRegistrationKeyEphemeralResource() ephemeral.EphemeralResource {
	return &registrationKeyEphemeral{}
}

type registrationKeyEphemeralModel struct {
	RouterID     types.String `tfsdk:"router_id"`
	TTL          types.String `tfsdk:"ttl"`
	RevokeUnused types.Bool   `tfsdk:"revoke_unused"`
	Reenrol      types.Bool   `tfsdk:"allow_reenrollment"`
	ID           types.String `tfsdk:"id"`
	Key          types.String `tfsdk:"key"`
	ExpiresAt    types.String `tfsdk:"expires_at"`
}

func (e *registrationKeyEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_registration_key"
}

func (e *registrationKeyEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Mints a one-time registration key for a router without storing it in state or in the " +
			"plan file. Terraform opens ephemeral resources on every plan and apply, so each run mints a new key, " +
			"and closes them when the run ends: by default a key still unused then is revoked, so plans leave no " +
			"live keys behind. That suits consumers that enrol during the apply (`ztna_router_host` waits until its " +
			"router is online). Set `revoke_unused = false` when the key goes to something that enrols after " +
			"Terraform finishes (a secret store a VM reads at first boot); unused keys then expire after `ttl` " +
			"(keep it short). Use the key only in places that " +
			"accept ephemeral values: write-only attributes (Terraform 1.11+) such as `ztna_router_host.registration_key_wo` " +
			"or a secret store's write-only value, provider blocks, or ephemeral outputs. Prefer it to the " +
			"`ztna_registration_key` resource wherever the consumer takes a write-only value: nothing secret is left " +
			"in state, and a replaced host gets a fresh key automatically.",
		Attributes: map[string]schema.Attribute{
			"router_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Id of the `ztna_router` the key enrols.",
			},
			"ttl": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: ttlDescription("key"),
				Validators:          []validator.String{validTTL},
			},
			"revoke_unused": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Whether the key is revoked when Terraform closes the ephemeral resource at the end " +
					"of the plan or apply, if nothing has enrolled with it by then. Defaults to `true`. Set it to `false` " +
					"only for a consumer that enrols after the run (the key then stays live until used or expired).",
			},
			"allow_reenrollment": schema.BoolAttribute{
				Optional:            true,
				MarkdownDescription: allowReenrollmentDescription,
			},
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Controller-assigned id of the key (to look it up or revoke it).",
			},
			"key": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "The registration key (`ztna-key-v1.…`).",
			},
			"expires_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the key stops being accepted (RFC 3339).",
			},
		},
	}
}

func (e *registrationKeyEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (e *registrationKeyEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	client, m, ok := clientAndModel[registrationKeyEphemeralModel](ctx, e.data, req.Config, &resp.Diagnostics)
	if !ok {
		return
	}
	out := createRegistrationKey(ctx, client, m.RouterID, m.TTL, m.Reenrol, &resp.Diagnostics)
	if out == nil {
		return
	}
	m.ID = types.StringValue(out.ID)
	m.Key = types.StringValue(out.Key)
	m.ExpiresAt = timeString(&out.ExpiresAt)
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
	markForRevoke(ctx, resp, m.RevokeUnused, out.ID)
}

// Close revokes the key if nothing enrolled with it during the run. Terraform closes an
// ephemeral resource after every consumer in the run is done, so an unused key here is one
// that a plan minted, or that an apply handed to nothing that enrolled.
func (e *registrationKeyEphemeral) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	id := toRevoke(ctx, req, &resp.Diagnostics)
	if id == "" {
		return // revoke_unused = false, or nothing was minted
	}
	client := e.data.requireClient(&resp.Diagnostics)
	if client == nil {
		return
	}
	k, err := client.GetRegistrationKey(ctx, id)
	switch {
	case apiclient.IsNotFound(err):
		return // deleted (or its router was) meanwhile: nothing to revoke
	case err != nil:
		resp.Diagnostics.AddWarning("Cannot revoke unused registration key "+id, describeClientError(err)+
			" The key stays valid until it expires or is revoked (POST /v1/registration-keys/"+id+"/revoke).")
		return
	case k.State != api.KeyUnused:
		return
	}
	if _, err := client.RevokeRegistrationKey(ctx, id); err != nil && !apiclient.IsNotFound(err) {
		resp.Diagnostics.AddWarning("Cannot revoke unused registration key "+id, describeClientError(err)+
			" The key stays valid until it expires or is revoked (POST /v1/registration-keys/"+id+"/revoke).")
	}
}
