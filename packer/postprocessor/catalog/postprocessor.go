//go:generate go tool -modfile=../../../tools/go.mod packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool -modfile=../../../tools/go.mod packer-sdc struct-markdown

// Package catalog is the ztna-catalog Packer post-processor. After a build it records the image
// (cloud, region, environment, id, router version, base image) in the image catalog file that
// the Terraform data source ztna_image reads. With promote_from set it promotes the image an
// environment has to this one instead (AWS copy and share, GCP image from source image, Azure
// gallery image version, local file copy) through the drivers in cloud/, and records the copy.
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/imagecatalog"
	"github.com/ztna/ztna/packer/internal/clouds"
)

// Config is the post-processor's HCL block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Path of the image catalog file; created when absent.
	CatalogPath string `mapstructure:"catalog_path" required:"true"`
	// Environment the image is recorded in (dev, staging, prod, ...).
	Environment string `mapstructure:"environment" required:"true"`
	// Cloud of the image: aws, gcp, azure or local. Default: derived from the builder
	// (amazon-ebs, googlecompute, azure-arm, ztna-local).
	Cloud string `mapstructure:"cloud"`
	// Region of the image. amazon-ebs artifacts carry their regions; required for azure;
	// empty for GCP images, which are global.
	Region string `mapstructure:"region"`
	// Version of the router baked into the image.
	RouterVersion string `mapstructure:"router_version"`
	// Base image of the build (e.g. build.SourceAMIName). Default: what ztna-local reports.
	BaseImage string `mapstructure:"base_image"`
	// Hardening profile recorded by the ztna-router provisioner, e.g. ztna-v2+ssh-lockdown.
	HardeningProfile string `mapstructure:"hardening_profile"`
	// Account owning the image (AWS account id, GCP project, Azure subscription). For GCP it is
	// the project the image is in and named under; default: the one googlecompute reports it
	// created the image in (image_project_id when set, else project_id), and a different
	// account is refused. For AWS promotion it is checked against the account of the target
	// credentials, which the copy is recorded with.
	Account string `mapstructure:"account"`

	// Promote the image recorded for this environment to `environment` instead of recording the
	// build's artifact (use with the null builder).
	PromoteFrom string `mapstructure:"promote_from"`
	// Name of the promoted image. Default: ztna-router-<version>-<environment>.
	ImageName string `mapstructure:"image_name"`
	// AWS promotion: further accounts the source image and its EBS snapshots are shared with
	// before the copy. The target account (of aws_profile / aws_assume_role_arn, which make the
	// copy) always is, when it does not own the source image.
	AWSShareWith []string `mapstructure:"aws_share_with"`
	// AWS promotion: profile of the account that owns the source image and shares it (launch
	// permission on the image, createVolumePermission on its snapshots). Default: aws_profile.
	// The copy is made with aws_profile and aws_assume_role_arn: the target account's
	// credentials, so the promoted image and its snapshots belong to the target account.
	AWSSourceProfile string `mapstructure:"aws_source_profile"`
	// AWS promotion: IAM role in the source image's account assumed (with the
	// aws_source_profile credentials) to share it. Default: none, the credentials themselves;
	// aws_assume_role_arn applies to the copy only.
	AWSSourceAssumeRoleARN string `mapstructure:"aws_source_assume_role_arn"`
	// AWS promotion: region the copy is made in. Default: the source image's region.
	AWSTargetRegion string `mapstructure:"aws_target_region"`
	// GCP promotion: project the new image is created in (required for gcp promotion).
	GCPTargetProject string `mapstructure:"gcp_target_project"`
	// GCP promotion: image family of the new image.
	GCPImageFamily string `mapstructure:"gcp_image_family"`
	// Azure promotion: subscription the new gallery image version is created in (required
	// for azure promotion). Credentials come from the Azure SDK's default chain (environment,
	// managed identity, az login).
	AzureSubscriptionID string `mapstructure:"azure_subscription_id"`
	// Azure promotion: resource group of the Compute Gallery (required for azure promotion).
	AzureResourceGroup string `mapstructure:"azure_resource_group"`
	// Azure promotion: Compute Gallery the version is created in (required for azure promotion).
	AzureGallery string `mapstructure:"azure_gallery"`
	// Azure promotion: image definition in the gallery (required for azure promotion).
	AzureGalleryImage string `mapstructure:"azure_gallery_image"`
	// Azure promotion: gallery image version (MAJOR.MINOR.PATCH). Default: the router version.
	AzureGalleryImageVersion string `mapstructure:"azure_gallery_image_version"`
	// Azure promotion: regions the version is replicated to. Default: the source's region.
	AzureReplicationRegions []string `mapstructure:"azure_replication_regions"`
	// Local promotion: directory the disk image is copied to (as <name>-<12 hex of its
	// digest>.<ext>, checked against the catalog's checksum). Default: images/<environment>
	// next to the catalog.
	LocalTargetDirectory string `mapstructure:"local_target_directory"`

	clouds.Access `mapstructure:",squash"`

	ctx interpolate.Context
}

// PostProcessor implements packersdk.PostProcessor.
type PostProcessor struct {
	config Config
	// now stamps recorded builds; tests pin it.
	now func() time.Time
	// azureOptions adjusts the Azure driver's options; tests point it at the SDK fakes.
	azureOptions func(*azure.Options)
}

var _ packersdk.PostProcessor = (*PostProcessor)(nil)

// ConfigSpec returns the HCL2 spec of Config.
func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Configure decodes and validates the configuration.
func (p *PostProcessor) Configure(raws ...interface{}) error {
	err := config.Decode(&p.config, &config.DecodeOpts{
		PluginType:         "ztna-catalog",
		Interpolate:        true,
		InterpolateContext: &p.config.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	if p.now == nil {
		p.now = time.Now
	}
	c := &p.config
	var errs []error
	if c.CatalogPath == "" {
		errs = append(errs, errors.New("catalog_path: required"))
	}
	errs = append(errs, imagecatalog.ValidateEnvironment(c.Environment))
	if c.Cloud != "" && !slices.Contains(imagecatalog.Clouds, c.Cloud) {
		errs = append(errs, fmt.Errorf("cloud %q: must be one of %s", c.Cloud, strings.Join(imagecatalog.Clouds, ", ")))
	}
	if c.PromoteFrom == "" {
		if c.RouterVersion == "" {
			errs = append(errs, errors.New("router_version: required to record a build (use the same value as the ztna-router provisioner)"))
		}
	} else {
		errs = append(errs, c.validatePromotion()...)
	}
	errs = append(errs, c.Access.Validate())
	return errors.Join(errs...)
}

func (c *Config) validatePromotion() []error {
	var errs []error
	if c.PromoteFrom == c.Environment {
		errs = append(errs, fmt.Errorf("promote_from %q: must differ from environment", c.PromoteFrom))
	}
	switch c.Cloud {
	case "":
		errs = append(errs, errors.New("cloud: required with promote_from"))
	case "aws":
		if c.Region == "" {
			errs = append(errs, errors.New("region: required for aws promotion (the source image's region)"))
		}
		if c.AWSSourceAssumeRoleARN != "" {
			if err := aws.ValidateRoleARN(c.AWSSourceAssumeRoleARN); err != nil {
				errs = append(errs, fmt.Errorf("aws_source_assume_role_arn: %w", err))
			}
		}
	case "gcp":
		if c.GCPTargetProject == "" {
			errs = append(errs, errors.New("gcp_target_project: required for gcp promotion"))
		}
	case "azure":
		if c.Region == "" {
			errs = append(errs, errors.New("region: required for azure promotion (the source image's location)"))
		}
		for name, v := range map[string]string{"azure_subscription_id": c.AzureSubscriptionID, "azure_resource_group": c.AzureResourceGroup,
			"azure_gallery": c.AzureGallery, "azure_gallery_image": c.AzureGalleryImage} {
			if v == "" {
				errs = append(errs, fmt.Errorf("%s: required for azure promotion", name))
			}
		}
	}
	return errs
}

// PostProcess records (or promotes) and returns an artifact describing the catalog entries. The
// build's own artifact is always kept.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, source packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	c := &p.config
	var entries []imagecatalog.Image
	var err error
	if c.PromoteFrom != "" {
		entries, err = p.promote(ctx, ui)
	} else {
		entries, err = p.fromArtifact(source)
	}
	if err != nil {
		return nil, true, false, err
	}
	err = imagecatalog.Update(ctx, c.CatalogPath, func(cat *imagecatalog.Catalog) error {
		for _, e := range entries {
			old, err := cat.Upsert(e)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("Catalog %s: %s = %s (router %s)", c.CatalogPath, key(e), e.ImageID, e.RouterVersion)
			if old != nil && old.ImageID != e.ImageID {
				msg += ", replacing " + old.ImageID
			}
			ui.Say(msg)
		}
		return nil
	})
	if err != nil {
		return nil, true, false, fmt.Errorf("ztna-catalog: %w", err)
	}
	return &Artifact{catalogPath: c.CatalogPath, entries: entries}, true, false, nil
}

func key(e imagecatalog.Image) string {
	region := e.Region
	if region == "" {
		region = "global"
	}
	return e.Cloud + "/" + region + "/" + e.Environment
}

// Builder ids of the artifacts this post-processor understands.
const (
	amazonEBS     = "mitchellh.amazonebs"
	googleCompute = "packer.googlecompute"
	azureARM      = "Azure.ResourceManagement.VMImage"
	ztnaLocal     = "ztna.local"
)

// fromArtifact turns a build's artifact into catalog entries (one per region for amazon-ebs).
func (p *PostProcessor) fromArtifact(a packersdk.Artifact) ([]imagecatalog.Image, error) {
	c := &p.config
	cloud := c.Cloud
	if cloud == "" {
		switch a.BuilderId() {
		case amazonEBS:
			cloud = "aws"
		case googleCompute:
			cloud = "gcp"
		case azureARM:
			cloud = "azure"
		case ztnaLocal:
			cloud = "local"
		default:
			return nil, fmt.Errorf("ztna-catalog: cannot tell the cloud of a %q artifact: set cloud", a.BuilderId())
		}
	}
	base := c.BaseImage
	if s, ok := a.State("base_image").(string); ok && base == "" {
		base = s
	}
	if base == "" {
		return nil, errors.New("ztna-catalog: base_image: not set and the builder reports none; set it (e.g. base_image = build.SourceAMIName)")
	}
	entry := imagecatalog.Image{
		Cloud: cloud, Region: c.Region, Environment: c.Environment, Account: c.Account,
		RouterVersion: strings.TrimPrefix(c.RouterVersion, "v"), HardeningProfile: c.HardeningProfile,
		BuildTime: p.now().UTC().Truncate(time.Second), BaseImage: base,
	}
	if raw, ok := a.State("attestation").(string); ok && raw != "" {
		if err := fromAttestation(&entry, []byte(raw)); err != nil {
			return nil, err
		}
	}
	switch cloud {
	case "aws":
		return awsEntries(entry, a.Id())
	case "gcp":
		// The image is where googlecompute created it: image_project_id when set, else the
		// build's project_id. Its artifact says which only in its HCP Packer metadata;
		// "ProjectId" is always the build's project.
		project := gcpImageProject(a)
		switch {
		case project != "" && entry.Account != "" && project != entry.Account:
			return nil, fmt.Errorf("ztna-catalog: account %s, but googlecompute created the image in project %s (image_project_id): remove account or make it %s", entry.Account, project, project)
		case project == "":
			project = entry.Account
		}
		if project == "" {
			project, _ = a.State("ProjectId").(string)
		}
		if project != "" {
			entry.ImageID = fmt.Sprintf("projects/%s/global/images/%s", project, a.Id())
			entry.Account = project
		} else {
			entry.ImageID = a.Id()
		}
	case "local":
		path, err := filepath.Abs(a.Id())
		if err != nil {
			return nil, err
		}
		entry.ImageID = path
		if entry.Checksum, err = imagecatalog.FileDigest(path); err != nil {
			return nil, fmt.Errorf("ztna-catalog: checksum of %s: %w", path, err)
		}
	default:
		entry.ImageID = a.Id()
	}
	return []imagecatalog.Image{entry}, nil
}

// awsEntries splits an amazon-ebs artifact id ("us-east-1:ami-1,eu-west-1:ami-2") into one
// entry per region.
func awsEntries(entry imagecatalog.Image, id string) ([]imagecatalog.Image, error) {
	var out []imagecatalog.Image
	for _, part := range strings.Split(id, ",") {
		region, ami, ok := strings.Cut(part, ":")
		if !ok || region == "" || !strings.HasPrefix(ami, "ami-") {
			return nil, fmt.Errorf("ztna-catalog: amazon-ebs artifact id %q is not region:ami-id pairs", id)
		}
		e := entry
		e.Region, e.ImageID = region, ami
		out = append(out, e)
	}
	return out, nil
}

// fromAttestation takes what the image itself attests (the builder reports its
// /etc/ztna/image.json): hardening profile, build time and the file's digest. A router_version
// that contradicts the image's is an error.
func fromAttestation(entry *imagecatalog.Image, raw []byte) error {
	var a control.Attestation
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("ztna-catalog: the image's attestation: %w", err)
	}
	if entry.RouterVersion != "" && entry.RouterVersion != a.RouterVersion {
		return fmt.Errorf("ztna-catalog: router_version %s, but the image's attestation says %s", entry.RouterVersion, a.RouterVersion)
	}
	if entry.HardeningProfile != "" && entry.HardeningProfile != a.HardeningProfile {
		return fmt.Errorf("ztna-catalog: hardening_profile %s, but the image's attestation says %s", entry.HardeningProfile, a.HardeningProfile)
	}
	sum := sha256.Sum256(raw)
	entry.RouterVersion, entry.HardeningProfile, entry.BuildTime = a.RouterVersion, a.HardeningProfile, a.BuildTime.UTC()
	entry.AttestationDigest = "sha256:" + hex.EncodeToString(sum[:])
	return nil
}
