// Package ztnaprovider implements the ztna Terraform provider: the provider configuration and
// one file per resource, data source and ephemeral resource (resource_<name>.go,
// data_source_<name>.go, ephemeral_<name>.go), in the style of terraform-provider-tls.
package ztnaprovider

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/pki"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/ztna/ztna"

// Environment variables that stand in for the provider block's attributes.
const (
	EnvAddress       = "ZTNA_ADDR"
	EnvToken         = "ZTNA_TOKEN"
	EnvCAFingerprint = "ZTNA_CA_FINGERPRINT"
)

var (
	_ provider.Provider                       = (*ztnaProvider)(nil)
	_ provider.ProviderWithEphemeralResources = (*ztnaProvider)(nil)
)

type ztnaProvider struct {
	version string
}

// New returns a constructor of the provider at the given build version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &ztnaProvider{version: version} }
}

type providerModel struct {
	Address       types.String `tfsdk:"address"`
	Token         types.String `tfsdk:"token"`
	CAFingerprint types.String `tfsdk:"ca_fingerprint"`
}

func (p *ztnaProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "ztna"
	resp.Version = p.version
}

func (p *ztnaProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The ztna provider manages a ztna zero-trust overlay through its controller's " +
			"management API: edge routers, their one-time registration keys, the private services they expose, " +
			"client identities and the policies that let identities dial services.",
		Attributes: map[string]schema.Attribute{
			"address": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Base URL of the controller's management API, e.g. `https://controller.example.com`. " +
					"Defaults to the `" + EnvAddress + "` environment variable.",
			},
			"token": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "Management API bearer token. Defaults to the `" + EnvToken + "` environment variable. " +
					"Prefer the environment variable so the token stays out of configuration files.",
			},
			"ca_fingerprint": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Fingerprint of the controller's CA certificate (`sha256:<hex>`), pinned for every " +
					"connection: a certificate chain without this CA is refused as TLS interception. Defaults to the `" +
					EnvCAFingerprint + "` environment variable.",
			},
		},
	}
}

// Configure connects to the controller and checks the connection once, so that a wrong address,
// token or pin fails with one clear message instead of one per resource.
func (p *ztnaProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for attr, v := range map[string]types.String{"address": cfg.Address, "token": cfg.Token, "ca_fingerprint": cfg.CAFingerprint} {
		if v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(attr), "Unknown provider "+attr,
				"The ztna provider's "+attr+" depends on a value that is only known after apply. "+
					"Use a value known at plan time, or apply the resources it depends on first (-target).")
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	address := valueOrEnv(cfg.Address, EnvAddress)
	token := valueOrEnv(cfg.Token, EnvToken)
	fingerprint := valueOrEnv(cfg.CAFingerprint, EnvCAFingerprint)

	cd := &clientData{address: address}
	resp.DataSourceData, resp.ResourceData, resp.EphemeralResourceData = cd, cd, cd
	if address == "" && token == "" && fingerprint == "" {
		// Nothing names a controller: data sources that need none still work; the others say
		// how to configure one.
		return
	}
	missing := func(attr, env string) {
		resp.Diagnostics.AddAttributeError(path.Root(attr), "Missing "+attr,
			"The ztna provider needs "+attr+": set it in the provider block or in the "+env+" environment variable.")
	}
	if address == "" {
		missing("address", EnvAddress)
	}
	if token == "" {
		missing("token", EnvToken)
	}
	if fingerprint == "" {
		missing("ca_fingerprint", EnvCAFingerprint)
	} else if err := pki.ValidFingerprint(fingerprint); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("ca_fingerprint"), "Invalid ca_fingerprint", err.Error())
	}
	if resp.Diagnostics.HasError() {
		return
	}

	ctx = tflog.MaskAllFieldValuesStrings(ctx, token)
	client, err := apiclient.New(address, token, fingerprint,
		apiclient.WithUserAgent("terraform-provider-ztna/"+p.version),
		apiclient.WithTimeout(30*time.Second))
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("address"), "Invalid controller address", err.Error())
		return
	}
	if _, err := client.ListRouters(ctx, apiclient.PageSize(1), apiclient.FirstPageOnly()); err != nil {
		attr := "address"
		switch {
		case apiclient.IsPinMismatch(err):
			attr = "ca_fingerprint"
		case apiclient.IsUnauthorized(err):
			attr = "token"
		}
		resp.Diagnostics.AddAttributeError(path.Root(attr), "Cannot connect to the ztna controller", describeClientError(err))
		return
	}
	tflog.Debug(ctx, "connected to the ztna controller", map[string]any{"address": address})
	cd.client = client
}

func valueOrEnv(v types.String, env string) string {
	if !v.IsNull() && v.ValueString() != "" {
		return v.ValueString()
	}
	return os.Getenv(env)
}

func (p *ztnaProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newRouterResource,
		newRegistrationKeyResource,
		newServiceResource,
		newIdentityResource,
		newServicePolicyResource,
		newRouterHostResource,
	}
}

func (p *ztnaProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newRouterDataSource,
		newServiceDataSource,
		newRouterSizingDataSource,
		newEgressRulesDataSource,
		newImageDataSource,
	}
}

func (p *ztnaProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{
		newRegistrationKeyEphemeralResource,
		newIdentityEnrollmentTokenEphemeralResource,
	}
}
