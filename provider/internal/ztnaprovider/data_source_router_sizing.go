package ztnaprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/cloud/sizing"
)

var _ datasource.DataSource = (*routerSizingDataSource)(nil)

// routerSizingDataSource shows the sizing table of cloud/sizing; it needs no controller.
type routerSizingDataSource struct{}

func newRouterSizingDataSource() datasource.DataSource { return &routerSizingDataSource{} }

type routerSizingModel struct {
	Tier          types.String `tfsdk:"tier"`
	Cloud         types.String `tfsdk:"cloud"`
	VCPU          types.Int64  `tfsdk:"vcpu"`
	MemoryMiB     types.Int64  `tfsdk:"memory_mib"`
	DiskGiB       types.Int64  `tfsdk:"disk_gib"`
	InstanceType  types.String `tfsdk:"instance_type"`
	InstanceTypes types.Map    `tfsdk:"instance_types"`
}

var instanceTypeType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"name":       types.StringType,
	"vcpu":       types.Int64Type,
	"memory_mib": types.Int64Type,
}}

func stringsOf[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func (d *routerSizingDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_router_sizing"
}

func (d *routerSizingDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The router VM sizing table: a size tier (`low-med`, `med`, `high`) mapped to vCPUs, RAM, " +
			"disk and a concrete instance type per cloud. AWS uses the compute-optimised `c6i` family (`c6i.large`, " +
			"`c6i.xlarge`, `c6i.2xlarge`), valid in every commercial region; Azure `Standard_F2s_v2`/`F4s_v2`/`F8s_v2`; " +
			"GCP `e2-standard-2`/`4`/`8` (which carry more RAM than the tier's minimum). Needs no controller.",
		Attributes: map[string]schema.Attribute{
			"tier": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Size tier: `low-med`, `med` or `high`.",
				Validators:          []validator.String{stringvalidator.OneOf(stringsOf(sizing.Tiers())...)},
			},
			"cloud": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "`aws`, `azure` or `gcp`: sets `instance_type` to that cloud's type for the tier.",
				Validators:          []validator.String{stringvalidator.OneOf(stringsOf(sizing.Clouds())...)},
			},
			"vcpu":          schema.Int64Attribute{Computed: true, MarkdownDescription: "Minimum vCPUs of the tier."},
			"memory_mib":    schema.Int64Attribute{Computed: true, MarkdownDescription: "Minimum RAM of the tier, in MiB."},
			"disk_gib":      schema.Int64Attribute{Computed: true, MarkdownDescription: "Boot disk size, in GiB."},
			"instance_type": schema.StringAttribute{Computed: true, MarkdownDescription: "Instance type on `cloud` (null when `cloud` is not set)."},
			"instance_types": schema.MapNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Instance type of the tier on every cloud, keyed by cloud.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":       schema.StringAttribute{Computed: true, MarkdownDescription: "Instance type name."},
					"vcpu":       schema.Int64Attribute{Computed: true, MarkdownDescription: "vCPUs of the instance type."},
					"memory_mib": schema.Int64Attribute{Computed: true, MarkdownDescription: "RAM of the instance type, in MiB."},
				}},
			},
		},
	}
}

func (d *routerSizingDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m routerSizingModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, err := sizing.Lookup(m.Tier.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("tier"), "Unknown tier", err.Error())
		return
	}
	m.VCPU = types.Int64Value(int64(spec.VCPU))
	m.MemoryMiB = types.Int64Value(int64(spec.MemoryMiB))
	m.DiskGiB = types.Int64Value(int64(spec.DiskGiB))
	byCloud := map[string]attr.Value{}
	for cloud, it := range spec.InstanceTypes {
		v, diags := types.ObjectValue(instanceTypeType.AttrTypes, map[string]attr.Value{
			"name":       types.StringValue(it.Name),
			"vcpu":       types.Int64Value(int64(it.VCPU)),
			"memory_mib": types.Int64Value(int64(it.MemoryMiB)),
		})
		resp.Diagnostics.Append(diags...)
		byCloud[string(cloud)] = v
	}
	var diags diag.Diagnostics
	m.InstanceTypes, diags = types.MapValue(instanceTypeType, byCloud)
	resp.Diagnostics.Append(diags...)
	m.InstanceType = types.StringNull()
	if !m.Cloud.IsNull() {
		m.InstanceType = types.StringValue(spec.InstanceTypes[sizing.Cloud(m.Cloud.ValueString())].Name)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
