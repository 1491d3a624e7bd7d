package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/apiclient"
)

// The helpers below are the request plumbing every resource backed by one controller object
// shares; what differs between resources (the API calls, how a model maps to the API) stays in
// the resource's own file.

// modelSource is a plan, a state or a configuration: whatever a handler decodes its model from.
type modelSource interface {
	Get(ctx context.Context, target any) diag.Diagnostics
}

// clientAndModel returns the API client and the model decoded from src. ok is false when the
// diagnostics say why the handler cannot go on: no controller configured, or a model that did
// not decode.
func clientAndModel[M any](ctx context.Context, data *clientData, src modelSource, diags *diag.Diagnostics) (client *apiclient.Client, m M, ok bool) {
	client = data.requireClient(diags)
	diags.Append(src.Get(ctx, &m)...)
	return client, m, client != nil && !diags.HasError()
}

// readObject refreshes a resource from the controller object its "id" attribute names: get
// fetches the object and fill copies it into the model from state. An object deleted outside
// Terraform (404) is dropped from state, so the next plan creates it again; any other error is
// a diagnostic.
func readObject[M, O any](ctx context.Context, data *clientData, req resource.ReadRequest, resp *resource.ReadResponse,
	kind string, get func(*apiclient.Client, context.Context, string) (*O, error), fill func(*M, *O),
) {
	client, state, ok := clientAndModel[M](ctx, data, req.State, &resp.Diagnostics)
	if !ok {
		return
	}
	id := stateString(ctx, req.State, "id", &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := get(client, ctx, id)
	switch {
	case apiclient.IsNotFound(err):
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		resp.Diagnostics.AddError("Cannot read "+kind+" "+id, describeClientError(err))
		return
	}
	fill(&state, out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// deleteObject deletes the controller object a resource's "id" attribute names. An object
// that is already gone (404) counts as deleted. The diagnostics name the object by its
// labelAttribute ("name", or "id" for objects without a name).
func deleteObject(ctx context.Context, data *clientData, req resource.DeleteRequest, resp *resource.DeleteResponse,
	kind, labelAttribute string, del func(*apiclient.Client, context.Context, string) error,
) {
	client := data.requireClient(&resp.Diagnostics)
	id := stateString(ctx, req.State, "id", &resp.Diagnostics)
	label := stateString(ctx, req.State, labelAttribute, &resp.Diagnostics)
	if client == nil || resp.Diagnostics.HasError() {
		return
	}
	if err := del(client, ctx, id); err != nil && !apiclient.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete "+kind+" "+label, err, nil)
	}
}

// importByID imports a resource by its controller id; the Read that follows fills in the rest.
func importByID(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// stateString is one string attribute of a state.
func stateString(ctx context.Context, state tfsdk.State, attribute string, diags *diag.Diagnostics) string {
	var v types.String
	diags.Append(state.GetAttribute(ctx, path.Root(attribute), &v)...)
	return v.ValueString()
}
