// Command terraform-provider-ztna is the ztna Terraform provider plugin. Terraform starts it;
// with -debug it runs standalone and prints TF_REATTACH_PROVIDERS for debugger sessions.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/ztna/ztna/internal/version"
	"github.com/ztna/ztna/provider"
)

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version.Version), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
