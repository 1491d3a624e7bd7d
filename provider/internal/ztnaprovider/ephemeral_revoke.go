package ztnaprovider

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The ephemeral resources that mint a one-time secret share how Open tells Close what to
// revoke: the id of what was minted, in the ephemeral resource's private data, only when
// revoke_unused is on (its default).

// privateRevokeID is the private-data key Open leaves the id under.
const privateRevokeID = "revoke_id"

// markForRevoke records id for Close unless revokeUnused is false.
func markForRevoke(ctx context.Context, resp *ephemeral.OpenResponse, revokeUnused types.Bool, id string) {
	if !revokeUnused.IsNull() && !revokeUnused.ValueBool() {
		return
	}
	b, _ := json.Marshal(id)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateRevokeID, b)...)
}

// toRevoke is the id Open recorded, or "" when there is nothing to revoke.
func toRevoke(ctx context.Context, req ephemeral.CloseRequest, diags *diag.Diagnostics) string {
	raw, d := req.Private.GetKey(ctx, privateRevokeID)
	diags.Append(d...)
	var id string
	if raw == nil || json.Unmarshal(raw, &id) != nil {
		return ""
	}
	return id
}
