// Command packer-plugin-ztna is the ztna Packer plugin: the ztna-router provisioner, the
// ztna-local builder, the ztna-base-image data source and the ztna-catalog post-processor.
// Install it with `packer plugins install --path packer-plugin-ztna github.com/ztna/ztna`.
package main

import (
	"fmt"
	"os"
	"strings"

	goversion "github.com/hashicorp/go-version"
	"github.com/hashicorp/packer-plugin-sdk/plugin"
	pluginversion "github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/ztna/ztna/internal/version"
	"github.com/ztna/ztna/packer/builder/ztnalocal"
	"github.com/ztna/ztna/packer/datasource/baseimage"
	"github.com/ztna/ztna/packer/postprocessor/catalog"
	"github.com/ztna/ztna/packer/provisioner/ztnarouter"
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("local", new(ztnalocal.Builder))
	pps.RegisterProvisioner("router", new(ztnarouter.Provisioner))
	pps.RegisterDatasource("base-image", new(baseimage.Datasource))
	pps.RegisterPostProcessor("catalog", new(catalog.PostProcessor))
	pps.SetVersion(pluginVersion(version.Version))
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// pluginVersion hands the build's semantic version (internal/version) to Packer, which requires
// one; a version linked in by hand that is none reports 0.0.0-dev.
func pluginVersion(v string) *pluginversion.PluginVersion {
	sv, err := goversion.NewSemver(strings.TrimPrefix(v, "v"))
	if err != nil || len(sv.Segments()) != 3 {
		return pluginversion.NewPluginVersion("0.0.0", "dev", "")
	}
	return pluginversion.NewRawVersion(sv.String())
}
