package ztnaprovider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestAccProviderConfig: each way of misconfiguring the provider fails with a message naming
// the attribute (or environment variable) to fix, and the token is never echoed back.
func TestAccProviderConfig(t *testing.T) {
	needController(t)
	addr, token, fp := controller.Env["ZTNA_ADDR"], controller.Env["ZTNA_TOKEN"], controller.Env["ZTNA_CA_FINGERPRINT"]
	provider := func(address, token, fingerprint string) string {
		return fmt.Sprintf(`
provider "ztna" {
  address        = %q
  token          = %q
  ca_fingerprint = %q
}
data "ztna_router_sizing" "t" {
  tier = "med"
}
`, address, token, fingerprint)
	}
	for name, tc := range map[string]struct {
		config string
		env    map[string]string
		want   []string
	}{
		"unreachable": {provider("https://127.0.0.1:1", token, fp), nil,
			[]string{"Cannot connect to the ztna controller", "could not be reached (address / ZTNA_ADDR)", "connection refused"}},
		"wrong token": {provider(addr, "not-the-token-0123456789", fp), nil,
			[]string{"Cannot connect to the ztna controller", "rejected the token (token / ZTNA_TOKEN)"}},
		"pin mismatch": {provider(addr, token, "sha256:"+strings.Repeat("ab", 32)), nil,
			[]string{"Cannot connect to the ztna controller", "does not match ca_fingerprint", "TLS interception"}},
		"bad fingerprint": {provider(addr, token, "md5:1234"), nil,
			[]string{"Invalid ca_fingerprint"}},
		"not https": {provider("http://"+strings.TrimPrefix(addr, "https://"), token, fp), nil,
			[]string{"Invalid controller address", "must be an https:// URL"}},
		"missing token": {`data "ztna_router_sizing" "t" { tier = "med" }`, map[string]string{"ZTNA_TOKEN": ""},
			[]string{"Missing token", "ZTNA_TOKEN environment variable"}},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					ExpectError: expectError(tc.want...),
				}},
			})
		})
	}
}

// TestAccProviderConfig_noController: with nothing configured, data sources that need no
// controller work and resources say how to configure one.
func TestAccProviderConfig_noController(t *testing.T) {
	for _, env := range []string{EnvAddress, EnvToken, EnvCAFingerprint} {
		t.Setenv(env, "")
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      routerConfig("edge", `[]`),
				ExpectError: expectError("ztna provider is not configured", "ZTNA_ADDR"),
			},
			{
				Config: `data "ztna_router_sizing" "t" { tier = "high" }`,
				Check:  resource.TestCheckResourceAttr("data.ztna_router_sizing.t", "instance_types.aws.name", "c6i.2xlarge"),
			},
		},
	})
}
