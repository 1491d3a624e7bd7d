//go:generate go tool -modfile=../../../tools/go.mod packer-sdc mapstructure-to-hcl2 -type Config,DatasourceOutput
//go:generate go tool -modfile=../../../tools/go.mod packer-sdc struct-markdown

// Package baseimage is the ztna-base-image Packer data source: the current official Debian 12
// image of a cloud (newest debian-12-amd64 AMI of Debian's AWS account, the debian-12 family on
// GCP, the newest Debian:debian-12:12-gen2 marketplace version on Azure), looked up through the cloud drivers in cloud/, so router images always start from a
// patched base.
package baseimage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/hcl2helper"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/zclconf/go-cty/cty"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/packer/internal/clouds"
)

// Config is the data source's HCL block.
type Config struct {
	// Cloud to look up: aws, gcp or azure.
	Cloud string `mapstructure:"cloud" required:"true"`
	// AWS region or Azure location (required for aws and azure).
	Region string `mapstructure:"region"`
	// Azure subscription the lookup is made in (required for azure). Credentials come from the
	// environment (azidentity's default chain: environment, workload identity, managed identity,
	// Azure CLI).
	AzureSubscriptionID string `mapstructure:"azure_subscription_id"`
	clouds.Access       `mapstructure:",squash"`
	// How long the lookup may take. Default "2m".
	Timeout string `mapstructure:"timeout"`
}

// DatasourceOutput is what the data source returns.
type DatasourceOutput struct {
	// The id to build from: an AMI id, projects/debian-cloud/global/images/NAME on GCP, or the
	// marketplace URN publisher:offer:sku:version on Azure.
	ImageID string `mapstructure:"image_id"`
	// The image's name, e.g. debian-12-amd64-20250210-2019 (what the attestation records).
	Name string `mapstructure:"name"`
	// Creation time reported by the cloud (RFC 3339).
	Created string `mapstructure:"created"`
	// AWS region, GCP project or Azure location the image lives in.
	Region string `mapstructure:"region"`
}

// Datasource implements packersdk.Datasource.
type Datasource struct {
	config  Config
	timeout time.Duration
	// azureOptions lets tests point the Azure driver at the SDK's fake servers.
	azureOptions func(*azure.Options)
}

var _ packersdk.Datasource = (*Datasource)(nil)

// Clouds this data source serves.
var supported = []string{"aws", "gcp", "azure"}

// ConfigSpec returns the HCL2 spec of Config.
func (d *Datasource) ConfigSpec() hcldec.ObjectSpec { return d.config.FlatMapstructure().HCL2Spec() }

// OutputSpec returns the HCL2 spec of DatasourceOutput.
func (d *Datasource) OutputSpec() hcldec.ObjectSpec {
	return (&DatasourceOutput{}).FlatMapstructure().HCL2Spec()
}

// Configure decodes and validates the configuration.
func (d *Datasource) Configure(raws ...interface{}) error {
	if err := config.Decode(&d.config, nil, raws...); err != nil {
		return err
	}
	c := &d.config
	var errs []error
	if !slices.Contains(supported, c.Cloud) {
		errs = append(errs, fmt.Errorf("cloud %q: must be one of %s", c.Cloud, strings.Join(supported, ", ")))
	}
	if c.Cloud == "aws" && c.Region == "" {
		errs = append(errs, errors.New("region: required for aws (the AMI id differs per region)"))
	}
	if c.Cloud == "azure" && (c.Region == "" || c.AzureSubscriptionID == "") {
		errs = append(errs, errors.New("region and azure_subscription_id: required for azure (marketplace versions are listed per location and subscription)"))
	}
	if c.Cloud == "gcp" && c.GCPProject == "" {
		errs = append(errs, errors.New("gcp_project: required for gcp (the project that makes the API call; the image comes from debian-cloud)"))
	}
	if c.Timeout == "" {
		c.Timeout = "2m"
	}
	var err error
	if d.timeout, err = time.ParseDuration(c.Timeout); err != nil || d.timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %q: a positive duration such as 2m", c.Timeout))
	}
	errs = append(errs, c.Access.Validate())
	return errors.Join(errs...)
}

// latestDebian is what the data source needs from a cloud driver.
type latestDebian interface {
	LatestDebian(ctx context.Context) (cloud.Image, error)
}

// Execute looks the image up.
func (d *Datasource) Execute() (cty.Value, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	var finder latestDebian
	switch d.config.Cloud {
	case "aws":
		drv, err := d.config.Access.AWS(ctx, d.config.Region)
		if err != nil {
			return cty.NullVal(cty.EmptyObject), err
		}
		finder = drv
	case "gcp":
		drv, err := d.config.Access.GCP(ctx, d.config.GCPProject)
		if err != nil {
			return cty.NullVal(cty.EmptyObject), err
		}
		defer drv.Close()
		finder = drv
	case "azure":
		opts := azure.Options{SubscriptionID: d.config.AzureSubscriptionID, Location: d.config.Region}
		if d.azureOptions != nil {
			d.azureOptions(&opts)
		}
		drv, err := azure.New(opts)
		if err != nil {
			return cty.NullVal(cty.EmptyObject), err
		}
		finder = drv
	}
	img, err := finder.LatestDebian(ctx)
	if err != nil {
		return cty.NullVal(cty.EmptyObject), fmt.Errorf("ztna-base-image: %w", err)
	}
	out := DatasourceOutput{ImageID: img.ID, Name: img.Name, Created: img.Created, Region: img.Region}
	return hcl2helper.HCL2ValueFromConfig(out, d.OutputSpec()), nil
}
