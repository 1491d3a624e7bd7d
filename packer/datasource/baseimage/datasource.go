//go:generate go tool -modfile=../../../tools/go.mod packer-sdc mapstructure-to-hcl2 -type Config,DatasourceOutput

// Package baseimage is the ztna-base-image Packer data source: the current official Debian 12
// image of a cloud (newest debian-12-amd64 AMI of Debian's AWS account, the debian-12 family on
// GCP), looked up through the cloud drivers in cloud/, so router images always start from a
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
	"github.com/ztna/ztna/packer/internal/clouds"
)

// Config is the data source's HCL block.
type Config struct {
	// Cloud to look up: aws or gcp.
	Cloud string `mapstructure:"cloud" required:"true"`
	// AWS region (required for aws).
	Region        string `mapstructure:"region"`
	clouds.Access `mapstructure:",squash"`
	// How long the lookup may take. Default "2m".
	Timeout string `mapstructure:"timeout"`
}

// DatasourceOutput is what the data source returns.
type DatasourceOutput struct {
	// The id to build from: an AMI id, or projects/debian-cloud/global/images/NAME on GCP.
	ImageID string `mapstructure:"image_id"`
	// The image's name, e.g. debian-12-amd64-20250210-2019 (what the attestation records).
	Name string `mapstructure:"name"`
	// Creation time reported by the cloud (RFC 3339).
	Created string `mapstructure:"created"`
	// AWS region or GCP project the image lives in.
	Region string `mapstructure:"region"`
}

// Datasource implements packersdk.Datasource.
type Datasource struct {
	config  Config
	timeout time.Duration
}

var _ packersdk.Datasource = (*Datasource)(nil)

// Clouds this data source serves.
var supported = []string{"aws", "gcp"}

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
		errs = append(errs, fmt.Errorf("cloud %q: must be one of %s (Azure base images are marketplace URNs: use azure-arm's image_publisher/image_offer/image_sku)", c.Cloud, strings.Join(supported, ", ")))
	}
	if c.Cloud == "aws" && c.Region == "" {
		errs = append(errs, errors.New("region: required for aws (the AMI id differs per region)"))
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
	}
	img, err := finder.LatestDebian(ctx)
	if err != nil {
		return cty.NullVal(cty.EmptyObject), fmt.Errorf("ztna-base-image: %w", err)
	}
	out := DatasourceOutput{ImageID: img.ID, Name: img.Name, Created: img.Created, Region: img.Region}
	return hcl2helper.HCL2ValueFromConfig(out, d.OutputSpec()), nil
}
