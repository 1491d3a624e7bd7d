package gcp

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/ztna/ztna/cloud"
	"google.golang.org/protobuf/proto"
)

// The official Debian images are published in this project under this family.
const (
	DebianProject = "debian-cloud"
	DebianFamily  = "debian-12"
)

// LatestDebian returns the current (newest non-deprecated) image of the Debian 12 family.
func (d *Driver) LatestDebian(ctx context.Context) (cloud.Image, error) {
	img, err := d.images.GetFromFamily(ctx, &computepb.GetFromFamilyImageRequest{Project: DebianProject, Family: DebianFamily})
	if err != nil {
		if isNotFound(err) {
			return cloud.Image{}, fmt.Errorf("gcp: image family %s/%s: %w", DebianProject, DebianFamily, cloud.ErrNotFound)
		}
		return cloud.Image{}, d.apiError("images.getFromFamily", err)
	}
	return image(DebianProject, img), nil
}

// Image returns one image of the driver's project by name.
func (d *Driver) Image(ctx context.Context, name string) (cloud.Image, error) {
	img, err := d.images.Get(ctx, &computepb.GetImageRequest{Project: d.opts.Project, Image: name})
	if err != nil {
		if isNotFound(err) {
			return cloud.Image{}, fmt.Errorf("gcp: image %s in project %s: %w", name, d.opts.Project, cloud.ErrNotFound)
		}
		return cloud.Image{}, d.apiError("images.get", err)
	}
	return image(d.opts.Project, img), nil
}

func image(project string, img *computepb.Image) cloud.Image {
	return cloud.Image{
		Cloud: "gcp", Region: project, Name: img.GetName(), Created: img.GetCreationTimestamp(),
		ID: fmt.Sprintf("projects/%s/global/images/%s", project, img.GetName()),
	}
}

var imageNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// CreateImageFromImage creates image name in the driver's project from sourceImage (a URL such
// as projects/build-project/global/images/ztna-router-1-2-0): the GCP way of promoting an
// image to the next environment's project. family and labels are optional.
func (d *Driver) CreateImageFromImage(ctx context.Context, name, sourceImage, family string, labels map[string]string) (cloud.Image, error) {
	if !imageNameRE.MatchString(name) {
		return cloud.Image{}, fmt.Errorf("gcp: image name %q is invalid: use 1-63 lower-case letters, digits and '-', starting with a letter", name)
	}
	if family != "" && !imageNameRE.MatchString(family) {
		return cloud.Image{}, fmt.Errorf("gcp: image family %q is invalid: use 1-63 lower-case letters, digits and '-'", family)
	}
	if sourceImage == "" {
		return cloud.Image{}, errors.New("gcp: source image is empty: set the image URL to promote")
	}
	lbls, err := labelsOrNil(labels)
	if err != nil {
		return cloud.Image{}, err
	}
	img := &computepb.Image{Name: proto.String(name), SourceImage: proto.String(sourceImage), Labels: lbls}
	if family != "" {
		img.Family = proto.String(family)
	}
	op, err := d.images.Insert(ctx, &computepb.InsertImageRequest{Project: d.opts.Project, ImageResource: img})
	if err != nil {
		return cloud.Image{}, d.apiError("images.insert", err)
	}
	if err := d.wait(ctx, op, "images.insert"); err != nil {
		return cloud.Image{}, err
	}
	return d.Image(ctx, name)
}

func labelsOrNil(m map[string]string) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return labels(m)
}
