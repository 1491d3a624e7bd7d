package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/api"
)

var (
	_ datasource.DataSourceWithConfigure        = (*serviceDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*serviceDataSource)(nil)
)

type serviceDataSource struct{ data *clientData }

func newServiceDataSource() datasource.DataSource { return &serviceDataSource{} }

func (d *serviceDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service"
}

func (d *serviceDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	id, name := lookupAttributes("service")
	routeAttr := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up a service by id or name, with the routers that host it and their health reports.",
		Attributes: map[string]schema.Attribute{
			"id":           id,
			"name":         name,
			"address":      schema.StringAttribute{Computed: true, MarkdownDescription: "FQDN or IP address of the target."},
			"port":         schema.Int64Attribute{Computed: true, MarkdownDescription: "Port of the target."},
			"port_ranges":  schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Additional port ranges."},
			"protocol":     schema.StringAttribute{Computed: true, MarkdownDescription: "`tcp` or `udp`."},
			"router_roles": schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Roles of the hosting routers."},
			"routers": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Routers selected to host the service and what each last reported.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"router_id":      routeAttr("Router id."),
					"router_name":    routeAttr("Router name."),
					"status":         routeAttr("Router status."),
					"failure_domain": routeAttr("Failure domain the router reported, `cloud/region/zone`."),
					"resolvable":     schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the router could resolve the address."},
					"reachable":      schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the router could connect to the target."},
					"checked_at":     routeAttr("When the router last checked (RFC 3339)."),
				}},
			},
			"failure_domains": schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Distinct failure domains (`cloud/region/zone`) of the hosting routers."},
		},
	}
}

func (d *serviceDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return exactlyOneOfIDName()
}

func (d *serviceDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configured(req.ProviderData, &resp.Diagnostics)
}

func (d *serviceDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	client, m, ok := clientAndModel[serviceModel](ctx, d.data, req.Config, &resp.Diagnostics)
	if !ok {
		return
	}
	s, err := findByIDOrName(ctx, m.ID, m.Name, "service", client.GetService, client.ListServices, func(s api.Service) string { return s.Name })
	if err != nil {
		lookupFailed(&resp.Diagnostics, "service", m.ID, err)
		return
	}
	m.fromAPI(s, serviceRoutes(ctx, client, s.ID, &resp.Diagnostics), true, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
