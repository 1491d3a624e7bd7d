package catalog

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/imagecatalog"
)

// awsCopier and awsSharer are what AWS promotion needs from cloud/aws (split, because the share
// and the copy run with different accounts' credentials).
type (
	awsCopier interface {
		CopyImage(ctx context.Context, sourceRegion, sourceImageID, name string, tags map[string]string) (cloud.Image, error)
	}
	awsSharer interface {
		ImageOwner(ctx context.Context, imageID string) (string, error)
		ShareImage(ctx context.Context, imageID string, accountIDs []string) error
	}
)

// awsAccount is a driver with the id of the account its calls are made in.
type awsAccount[T any] struct {
	drv T
	id  string
}

// promote copies the image recorded for promote_from into environment and returns the new entry.
func (p *PostProcessor) promote(ctx context.Context, ui packersdk.Ui) ([]imagecatalog.Image, error) {
	c := &p.config
	cat, err := imagecatalog.Load(c.CatalogPath)
	if err != nil {
		return nil, err
	}
	src, err := cat.Lookup(c.Cloud, c.Region, c.PromoteFrom)
	if err != nil {
		return nil, fmt.Errorf("ztna-catalog: nothing to promote: %w", err)
	}
	dst := src
	dst.Environment = c.Environment
	dst.PromotedFrom = c.PromoteFrom
	dst.SourceImageID = src.ImageID
	if c.Account != "" {
		dst.Account = c.Account
	}
	name := c.ImageName
	if name == "" {
		name = fmt.Sprintf("ztna-router-%s-%s", src.RouterVersion, c.Environment)
	}
	labels := map[string]string{"ztna-environment": c.Environment, "ztna-router-version": src.RouterVersion, "ztna-promoted-from": c.PromoteFrom}
	ui.Say(fmt.Sprintf("Promoting %s %s from %s to %s as %s", c.Cloud, src.ImageID, c.PromoteFrom, c.Environment, name))

	switch c.Cloud {
	case "aws":
		region := c.AWSTargetRegion
		if region == "" {
			region = src.Region
		}
		// The copy is made with the target's credentials (aws_profile, aws_assume_role_arn), so
		// the promoted environment's account owns it; the share with the source account's.
		copier, targetAccount, err := c.Access.AWSWithAccount(ctx, region)
		if err != nil {
			return nil, fmt.Errorf("ztna-catalog: target account credentials: %w", err)
		}
		if c.Account != "" && c.Account != targetAccount {
			return nil, fmt.Errorf("ztna-catalog: account %s, but the target credentials (aws_profile, aws_assume_role_arn) are of account %s: the copy would be made there", c.Account, targetAccount)
		}
		source := c.Access
		source.AWSAssumeRoleARN = c.AWSSourceAssumeRoleARN
		if c.AWSSourceProfile != "" {
			source.AWSProfile = c.AWSSourceProfile
		}
		sharer, sourceAccount, err := source.AWSWithAccount(ctx, src.Region)
		if err != nil {
			return nil, fmt.Errorf("ztna-catalog: source account credentials: %w", err)
		}
		if src.AttestationDigest != "" {
			labels["ztna-attestation-digest"] = src.AttestationDigest
		}
		img, err := promoteAWS(ctx, awsAccount[awsSharer]{sharer, sourceAccount}, awsAccount[awsCopier]{copier, targetAccount}, src, c.AWSShareWith, name, labels)
		if err != nil {
			return nil, err
		}
		dst.Region, dst.ImageID, dst.Account = region, img.ID, targetAccount
	case "gcp":
		drv, err := c.Access.GCP(ctx, c.GCPTargetProject)
		if err != nil {
			return nil, err
		}
		defer drv.Close()
		gcpLabels := map[string]string{}
		for k, v := range labels {
			gcpLabels[k] = gcpName(v) // label values allow no dots
		}
		img, err := drv.CreateImageFromImage(ctx, gcpName(name), src.ImageID, c.GCPImageFamily, gcpLabels)
		if err != nil {
			return nil, fmt.Errorf("ztna-catalog: %w", err)
		}
		dst.Region, dst.ImageID, dst.Account = "", img.ID, c.GCPTargetProject
	case "azure":
		version := c.AzureGalleryImageVersion
		if version == "" {
			version = src.RouterVersion
		}
		opts := azure.Options{SubscriptionID: c.AzureSubscriptionID, ResourceGroup: c.AzureResourceGroup, Location: src.Region}
		if p.azureOptions != nil {
			p.azureOptions(&opts)
		}
		drv, err := azure.New(opts)
		if err != nil {
			return nil, fmt.Errorf("ztna-catalog: %w", err)
		}
		img, err := drv.CreateGalleryImageVersion(ctx, azure.GalleryImage{Gallery: c.AzureGallery, Image: c.AzureGalleryImage},
			version, src.ImageID, c.AzureReplicationRegions, labels)
		if err != nil {
			return nil, fmt.Errorf("ztna-catalog: %w", err)
		}
		dst.ImageID, dst.Account = img.ID, c.AzureSubscriptionID
	case "local":
		dir := c.LocalTargetDirectory
		if dir == "" {
			dir = filepath.Join(filepath.Dir(c.CatalogPath), "images", c.Environment)
		}
		path, err := promoteLocal(src, dir)
		if err != nil {
			return nil, fmt.Errorf("ztna-catalog: %w", err)
		}
		dst.ImageID = path
	}
	return []imagecatalog.Image{dst}, nil
}

// promoteAWS shares the source image and its snapshots with the target account (when it does not
// own the image) and the further accounts of shareWith, then copies it with the target's
// credentials, so the promoted environment owns its own AMI and snapshots, tagged with tags.
func promoteAWS(ctx context.Context, source awsAccount[awsSharer], target awsAccount[awsCopier], src imagecatalog.Image, shareWith []string, name string, tags map[string]string) (cloud.Image, error) {
	owner, err := source.drv.ImageOwner(ctx, src.ImageID)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("ztna-catalog: the source image %s, seen from account %s (aws_source_profile, aws_source_assume_role_arn): %w", src.ImageID, source.id, err)
	}
	accounts := slices.Clone(shareWith)
	if target.id != owner && !slices.Contains(accounts, target.id) {
		accounts = append(accounts, target.id)
	}
	if len(accounts) > 0 {
		if owner != source.id {
			return cloud.Image{}, fmt.Errorf("ztna-catalog: %s is owned by account %s, but the source credentials are of account %s and cannot share it: set aws_source_profile or aws_source_assume_role_arn to credentials of %s", src.ImageID, owner, source.id, owner)
		}
		if err := source.drv.ShareImage(ctx, src.ImageID, accounts); err != nil {
			return cloud.Image{}, fmt.Errorf("ztna-catalog: sharing %s with %s: %w", src.ImageID, strings.Join(accounts, ", "), err)
		}
	}
	img, err := target.drv.CopyImage(ctx, src.Region, src.ImageID, name, tags)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("ztna-catalog: copying %s into account %s: %w", src.ImageID, target.id, err)
	}
	return img, nil
}

// gcpName makes a GCP image name from the default name: lower case, dots become dashes.
func gcpName(name string) string {
	return strings.ToLower(strings.NewReplacer(".", "-", "_", "-", "+", "-").Replace(name))
}

// promoteLocal copies the recorded disk image into dir, under a name carrying its digest
// (ztna-router-<12 hex>.qcow2), so the promoted environment has a file of its own that a
// rebuild of the source environment cannot change. The copy is checked against the catalog's
// checksum as it is made: a file that changed since it was recorded (rebuilt, tampered) is
// refused and nothing is written.
func promoteLocal(src imagecatalog.Image, dir string) (string, error) {
	if src.Checksum == "" {
		return "", fmt.Errorf("%s has no checksum in the catalog (recorded by an older ztna-catalog): build it again before promoting", src.ImageID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ext := filepath.Ext(src.ImageID)
	hexSum := strings.TrimPrefix(src.Checksum, "sha256:")
	dst, err := filepath.Abs(filepath.Join(dir, strings.TrimSuffix(filepath.Base(src.ImageID), ext)+"-"+hexSum[:12]+ext))
	if err != nil {
		return "", err
	}
	in, err := os.Open(src.ImageID)
	if err != nil {
		return "", err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	verified := &digestCheck{r: io.TeeReader(in, h), h: h, want: src.Checksum, id: src.ImageID}
	if err := atomicfile.WriteFrom(dst, verified, fi.Mode().Perm()); err != nil {
		return "", err
	}
	return dst, nil
}

// digestCheck passes r on and fails its end of file, so that the copy is not kept, when what
// was read does not hash to want.
type digestCheck struct {
	r        io.Reader
	h        hash.Hash
	want, id string
}

func (d *digestCheck) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err == io.EOF {
		if got := imagecatalog.Digest(d.h); got != d.want {
			return n, fmt.Errorf("%s is not the image the catalog recorded (%s, recorded %s): it was rebuilt or altered since; not promoting", d.id, got, d.want)
		}
	}
	return n, err
}
