// Package provider is the public face of the ztna Terraform provider: main.go and tests that
// need a provider server import New from here. The resources and data sources live in
// provider/internal so that nothing outside this module depends on their Go types.
package provider

import (
	fwprovider "github.com/hashicorp/terraform-plugin-framework/provider"

	"github.com/ztna/ztna/provider/internal/ztnaprovider"
)

// Address is the registry address Terraform configurations use for this provider.
const Address = ztnaprovider.Address

// New returns a constructor of the provider at the given build version.
func New(version string) func() fwprovider.Provider {
	return ztnaprovider.New(version)
}
