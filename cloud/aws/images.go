package aws

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/ztna/ztna/cloud"
)

// Debian's official AMIs are published by this account; the name pattern selects Debian 12
// (bookworm) for x86_64.
const (
	DebianOwner       = "136693071363"
	DebianNamePattern = "debian-12-amd64-*"
)

// LatestDebian returns the newest available official Debian 12 amd64 image in the region.
func (d *Driver) LatestDebian(ctx context.Context) (cloud.Image, error) {
	out, err := d.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{DebianOwner},
		Filters: []types.Filter{
			{Name: awssdk.String("name"), Values: []string{DebianNamePattern}},
			{Name: awssdk.String("architecture"), Values: []string{"x86_64"}},
			{Name: awssdk.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return cloud.Image{}, d.apiError("DescribeImages", err)
	}
	var newest *types.Image
	for i, img := range out.Images {
		// Creation dates are ISO 8601 in UTC, so they sort as strings.
		if newest == nil || awssdk.ToString(img.CreationDate) > awssdk.ToString(newest.CreationDate) {
			newest = &out.Images[i]
		}
	}
	if newest == nil {
		return cloud.Image{}, fmt.Errorf("aws: no Debian 12 image from owner %s in %s: %w", DebianOwner, d.region, cloud.ErrNotFound)
	}
	return d.image(*newest), nil
}

// Image returns one image by id.
func (d *Driver) Image(ctx context.Context, id string) (cloud.Image, error) {
	img, err := d.describeImage(ctx, id)
	if err != nil {
		return cloud.Image{}, err
	}
	return d.image(img), nil
}

// describeImage is one image as EC2 describes it (to this account: not found unless it owns the
// image or may launch it).
func (d *Driver) describeImage(ctx context.Context, id string) (types.Image, error) {
	out, err := d.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if apiCode(err) == "InvalidAMIID.NotFound" {
			return types.Image{}, fmt.Errorf("aws: image %s in %s: %w", id, d.region, cloud.ErrNotFound)
		}
		return types.Image{}, d.apiError("DescribeImages", err)
	}
	if len(out.Images) == 0 {
		return types.Image{}, fmt.Errorf("aws: image %s in %s: %w", id, d.region, cloud.ErrNotFound)
	}
	return out.Images[0], nil
}

func (d *Driver) image(img types.Image) cloud.Image {
	return cloud.Image{
		Cloud: "aws", Region: d.region, ID: awssdk.ToString(img.ImageId),
		Name: awssdk.ToString(img.Name), Created: awssdk.ToString(img.CreationDate),
	}
}

var amiNameRE = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)

// CopyImage copies an image from sourceRegion into the driver's region and the driver's account
// (to promote into another account, ShareImage with it first and copy with that account's
// credentials), tags the copy and its new snapshots, and waits until it is available. The copy
// keeps the source's encryption: an image encrypted with the AWS-managed key cannot be shared
// with other accounts, so encryption is decided when the image is baked, not here.
func (d *Driver) CopyImage(ctx context.Context, sourceRegion, sourceImageID, name string, tags map[string]string) (cloud.Image, error) {
	if !amiNameRE.MatchString(name) {
		return cloud.Image{}, fmt.Errorf("aws: image name %q is invalid: use 3-128 letters, digits, spaces and ( ) [ ] . / - ' @ _", name)
	}
	out, err := d.ec2.CopyImage(ctx, &ec2.CopyImageInput{
		SourceRegion:  awssdk.String(sourceRegion),
		SourceImageId: awssdk.String(sourceImageID),
		Name:          awssdk.String(name),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: ec2Tags(tags, name)},
			{ResourceType: types.ResourceTypeSnapshot, Tags: ec2Tags(tags, name)},
		},
	})
	if err != nil {
		return cloud.Image{}, d.apiError("CopyImage", err)
	}
	id := awssdk.ToString(out.ImageId)
	w := ec2.NewImageAvailableWaiter(d.ec2, func(o *ec2.ImageAvailableWaiterOptions) { o.MinDelay, o.MaxDelay = d.poll, d.poll })
	if err := w.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}}, d.wait); err != nil {
		return cloud.Image{}, fmt.Errorf("aws: copied image %s did not become available: %w", id, err)
	}
	return d.Image(ctx, id)
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// ShareImage lets other AWS accounts launch and copy an image of this account: it grants
// createVolumePermission on the image's EBS snapshots, without which EC2 refuses another
// account's CopyImage ("You do not have permission to access the storage of this ami"), then
// launch permission on the image.
func (d *Driver) ShareImage(ctx context.Context, imageID string, accountIDs []string) error {
	if len(accountIDs) == 0 {
		return errors.New("aws: no account to share the image with: list the 12-digit account ids")
	}
	users := make([]types.LaunchPermission, len(accountIDs))
	volumeUsers := make([]types.CreateVolumePermission, len(accountIDs))
	for i, a := range accountIDs {
		if !accountRE.MatchString(a) {
			return fmt.Errorf("aws: account id %q is invalid: use the 12-digit AWS account id", a)
		}
		users[i] = types.LaunchPermission{UserId: awssdk.String(a)}
		volumeUsers[i] = types.CreateVolumePermission{UserId: awssdk.String(a)}
	}
	snapshots, err := d.imageSnapshots(ctx, imageID)
	if err != nil {
		return err
	}
	for _, id := range snapshots {
		_, err := d.ec2.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
			SnapshotId:             awssdk.String(id),
			Attribute:              types.SnapshotAttributeNameCreateVolumePermission,
			CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: volumeUsers},
		})
		if err != nil {
			return d.apiError("ModifySnapshotAttribute", err)
		}
	}
	_, err = d.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          awssdk.String(imageID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: users},
	})
	if err != nil {
		return d.apiError("ModifyImageAttribute", err)
	}
	return nil
}

// ImageOwner returns the id of the account owning an image (one this account owns or may launch).
func (d *Driver) ImageOwner(ctx context.Context, id string) (string, error) {
	img, err := d.describeImage(ctx, id)
	if err != nil {
		return "", err
	}
	return awssdk.ToString(img.OwnerId), nil
}

// imageSnapshots returns the EBS snapshots of an image's block device mapping.
func (d *Driver) imageSnapshots(ctx context.Context, imageID string) ([]string, error) {
	img, err := d.describeImage(ctx, imageID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, b := range img.BlockDeviceMappings {
		if b.Ebs != nil && b.Ebs.SnapshotId != nil {
			ids = append(ids, *b.Ebs.SnapshotId)
		}
	}
	return ids, nil
}
