package ztnaprovider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/imagecatalog"
)

var _ datasource.DataSource = (*imageDataSource)(nil)

// imageDataSource reads the image catalog that the Packer post-processor writes; it needs no
// controller.
type imageDataSource struct{}

func newImageDataSource() datasource.DataSource { return &imageDataSource{} }

type imageModel struct {
	Catalog          types.String `tfsdk:"catalog"`
	Cloud            types.String `tfsdk:"cloud"`
	Region           types.String `tfsdk:"region"`
	Environment      types.String `tfsdk:"environment"`
	ImageID          types.String `tfsdk:"image_id"`
	Account          types.String `tfsdk:"account"`
	RouterVersion    types.String `tfsdk:"router_version"`
	HardeningProfile types.String `tfsdk:"hardening_profile"`
	BuildTime        types.String `tfsdk:"build_time"`
	BaseImage        types.String `tfsdk:"base_image"`
	PromotedFrom     types.String `tfsdk:"promoted_from"`
	SourceImageID    types.String `tfsdk:"source_image_id"`
}

func (d *imageDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image"
}

func (d *imageDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Picks the router image for a cloud, region and environment from the image catalog that the " +
			"`ztna-catalog` Packer post-processor writes. An entry recorded without a region (a global GCP image, a " +
			"local disk image) matches every region; an exact region match wins. Needs no controller.",
		Attributes: map[string]schema.Attribute{
			"catalog": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Path of the image catalog JSON file.",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"cloud": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`aws`, `gcp`, `azure` or `local`.",
				Validators:          []validator.String{stringvalidator.OneOf(imagecatalog.Clouds...)},
			},
			"region": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Region the image must be usable in (required for `aws` and `azure` images).",
			},
			"environment": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Environment the image was built for or promoted to, e.g. `dev` or `prod`.",
			},
			"image_id":          computed("What the cloud's VM API takes: an AMI id, a GCP image, an Azure image id, or a local disk image path."),
			"account":           computed("Account, project or subscription owning the image (null if not recorded)."),
			"router_version":    computed("Version of `ztna-router` baked into the image."),
			"hardening_profile": computed("Hardening profile applied when baking (null if not recorded)."),
			"build_time":        computed("When the image was built (RFC 3339)."),
			"base_image":        computed("Base OS image the router image was built from."),
			"promoted_from":     computed("Environment the image was promoted from (null for a direct build)."),
			"source_image_id":   computed("Image this one was copied from when promoted (null for a direct build)."),
		},
	}
}

func (d *imageDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m imageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	catalog, err := imagecatalog.Load(m.Catalog.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("catalog"), "Cannot read the image catalog", err.Error())
		return
	}
	img, err := catalog.Lookup(m.Cloud.ValueString(), m.Region.ValueString(), m.Environment.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("environment"), "No matching image", err.Error())
		return
	}
	m.ImageID = types.StringValue(img.ImageID)
	m.Account = optionalString(img.Account)
	m.RouterVersion = types.StringValue(img.RouterVersion)
	m.HardeningProfile = optionalString(img.HardeningProfile)
	m.BuildTime = types.StringValue(img.BuildTime.UTC().Format(time.RFC3339))
	m.BaseImage = types.StringValue(img.BaseImage)
	m.PromotedFrom = optionalString(img.PromotedFrom)
	m.SourceImageID = optionalString(img.SourceImageID)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}
