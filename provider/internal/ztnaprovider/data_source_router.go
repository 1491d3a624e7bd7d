package ztnaprovider

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

var (
	_ datasource.DataSourceWithConfigure        = (*routerDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*routerDataSource)(nil)
)

type routerDataSource struct{ data *clientData }

func newRouterDataSource() datasource.DataSource { return &routerDataSource{} }

// routerDataModel adds what the resource leaves out of state: last_seen changes with every
// heartbeat.
type routerDataModel struct {
	routerModel
	LastSeen    types.String `tfsdk:"last_seen"`
	Attestation types.String `tfsdk:"attestation"`
}

func (d *routerDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_router"
}

// lookupAttributes are the id/name pair data sources use to find one object.
func lookupAttributes(what string) (id, name schema.StringAttribute) {
	return schema.StringAttribute{
			Optional: true, Computed: true,
			MarkdownDescription: "Id of the " + what + ". Set exactly one of `id` and `name`.",
		}, schema.StringAttribute{
			Optional: true, Computed: true,
			MarkdownDescription: "Name of the " + what + ". Set exactly one of `id` and `name`.",
			Validators:          []validator.String{validName},
		}
}

func exactlyOneOfIDName() []datasource.ConfigValidator {
	return []datasource.ConfigValidator{datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name"))}
}

func (d *routerDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	id, name := lookupAttributes("router")
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up a router by id or name, with what it last reported (status, version, failure domain, attestation).",
		Attributes: map[string]schema.Attribute{
			"id":             id,
			"name":           name,
			"roles":          schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Roles of the router."},
			"cost":           schema.Int64Attribute{Computed: true, MarkdownDescription: "Static routing cost."},
			"status":         schema.StringAttribute{Computed: true, MarkdownDescription: "`unenrolled`, `online` or `offline`."},
			"version":        schema.StringAttribute{Computed: true, MarkdownDescription: "Software version the router last reported."},
			"last_seen":      schema.StringAttribute{Computed: true, MarkdownDescription: "When the controller last heard from the router (RFC 3339)."},
			"failure_domain": schema.StringAttribute{Computed: true, MarkdownDescription: "Failure domain the router reported, " + failureDomainFormat + "."},
			"attestation":    schema.StringAttribute{Computed: true, MarkdownDescription: "Image attestation the router reported, as JSON (null if none)."},
		},
	}
}

func (d *routerDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return exactlyOneOfIDName()
}

func (d *routerDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (d *routerDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	client, m, ok := clientAndModel[routerDataModel](ctx, d.data, req.Config, &resp.Diagnostics)
	if !ok {
		return
	}
	r, err := findByIDOrName(ctx, m.ID, m.Name, "router", client.GetRouter, client.ListRouters, func(r api.Router) string { return r.Name })
	if err != nil {
		lookupFailed(&resp.Diagnostics, "router", m.ID, err)
		return
	}
	m.fromAPI(r)
	m.LastSeen = timeString(r.LastSeen)
	m.Attestation = types.StringNull()
	if len(r.Attestation) > 0 && string(r.Attestation) != "null" {
		compact, _ := json.Marshal(r.Attestation)
		m.Attestation = types.StringValue(string(compact))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// errNoSuchName reports a name that no object of the collection has.
type errNoSuchName struct{ kind, name string }

func (e errNoSuchName) Error() string { return "no " + e.kind + " is named " + e.name }

// findByIDOrName fetches one object by id, or lists the collection and picks it by name
// (names are unique on the controller).
func findByIDOrName[T any](ctx context.Context, id, name types.String, kind string,
	get func(context.Context, string) (*T, error), list func(context.Context, ...apiclient.ListOption) ([]T, error), nameOf func(T) string,
) (*T, error) {
	if !id.IsNull() {
		return get(ctx, id.ValueString())
	}
	all, err := list(ctx, apiclient.Filter("name", name.ValueString())) // selected by the controller, not by reading every page
	if err != nil {
		return nil, err
	}
	for i := range all {
		if nameOf(all[i]) == name.ValueString() {
			return &all[i], nil
		}
	}
	return nil, errNoSuchName{kind, name.ValueString()}
}

func lookupFailed(diags *diag.Diagnostics, kind string, id types.String, err error) {
	var notFound errNoSuchName
	switch {
	case errors.As(err, &notFound):
		diags.AddAttributeError(path.Root("name"), "No such "+kind, notFound.Error()+" on this controller.")
	case apiclient.IsNotFound(err):
		diags.AddAttributeError(path.Root("id"), "No such "+kind, "No "+kind+" has id "+id.ValueString()+" on this controller.")
	default:
		diags.AddError("Cannot read "+kind, describeClientError(err))
	}
}
