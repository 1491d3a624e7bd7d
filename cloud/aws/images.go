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
	out, err := d.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if apiCode(err) == "InvalidAMIID.NotFound" {
			return cloud.Image{}, fmt.Errorf("aws: image %s in %s: %w", id, d.region, cloud.ErrNotFound)
		}
		return cloud.Image{}, d.apiError("DescribeImages", err)
	}
	if len(out.Images) == 0 {
		return cloud.Image{}, fmt.Errorf("aws: image %s in %s: %w", id, d.region, cloud.ErrNotFound)
	}
	return d.image(out.Images[0]), nil
}

func (d *Driver) image(img types.Image) cloud.Image {
	return cloud.Image{
		Cloud: "aws", Region: d.region, ID: awssdk.ToString(img.ImageId),
		Name: awssdk.ToString(img.Name), Created: awssdk.ToString(img.CreationDate),
	}
}

var amiNameRE = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)

// CopyImage copies an image from sourceRegion into the driver's region (and the driver's
// account: to promote into another account, share the image with it first and copy with that
// account's credentials), tags the copy, and waits until it is available. The copy keeps the
// source's encryption: an image encrypted with the AWS-managed key cannot be shared with other
// accounts, so encryption is decided when the image is baked, not here.
func (d *Driver) CopyImage(ctx context.Context, sourceRegion, sourceImageID, name string, tags map[string]string) (cloud.Image, error) {
	if !amiNameRE.MatchString(name) {
		return cloud.Image{}, fmt.Errorf("aws: image name %q is invalid: use 3-128 letters, digits, spaces and ( ) [ ] . / - ' @ _", name)
	}
	out, err := d.ec2.CopyImage(ctx, &ec2.CopyImageInput{
		SourceRegion:  awssdk.String(sourceRegion),
		SourceImageId: awssdk.String(sourceImageID),
		Name:          awssdk.String(name),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeImage, Tags: ec2Tags(tags, name),
		}},
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

// ShareImage grants launch permission on an image to other AWS accounts.
func (d *Driver) ShareImage(ctx context.Context, imageID string, accountIDs []string) error {
	if len(accountIDs) == 0 {
		return errors.New("aws: no account to share the image with: list the 12-digit account ids")
	}
	perms := make([]types.LaunchPermission, len(accountIDs))
	for i, a := range accountIDs {
		if !accountRE.MatchString(a) {
			return fmt.Errorf("aws: account id %q is invalid: use the 12-digit AWS account id", a)
		}
		perms[i] = types.LaunchPermission{UserId: awssdk.String(a)}
	}
	_, err := d.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          awssdk.String(imageID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: perms},
	})
	if err != nil {
		return d.apiError("ModifyImageAttribute", err)
	}
	return nil
}
