package azure

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/ztna/ztna/cloud"
)

// The official Debian 12 marketplace image (Generation 2 VMs, which every Fsv2 size supports).
const (
	DebianPublisher = "Debian"
	DebianOffer     = "debian-12"
	DebianSKU       = "12-gen2"
)

// LatestDebian returns the newest Debian 12 marketplace image version in the driver's
// location. Its ID is the URN publisher:offer:sku:version, usable as a HostSpec image and as a
// Packer source.
func (d *Driver) LatestDebian(ctx context.Context) (cloud.Image, error) {
	res, err := d.images.List(ctx, d.opts.Location, DebianPublisher, DebianOffer, DebianSKU, nil)
	if err != nil {
		return cloud.Image{}, d.apiError("VirtualMachineImages.List", err)
	}
	var versions []string
	for _, r := range res.VirtualMachineImageResourceArray {
		versions = append(versions, val(r.Name))
	}
	if len(versions) == 0 {
		return cloud.Image{}, fmt.Errorf("azure: no %s:%s:%s image in %s: %w", DebianPublisher, DebianOffer, DebianSKU, d.opts.Location, cloud.ErrNotFound)
	}
	newest := slices.MaxFunc(versions, compareVersions)
	return cloud.Image{
		Cloud: "azure", Region: d.opts.Location, Name: newest,
		ID: strings.Join([]string{DebianPublisher, DebianOffer, DebianSKU, newest}, ":"),
	}, nil
}

// compareVersions orders dotted numeric versions (0.20240211.1654) numerically per part.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// GalleryImage names an image definition in an Azure Compute Gallery of the driver's resource
// group.
type GalleryImage struct {
	Gallery, Image string
}

var galleryVersionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// CreateGalleryImageVersion creates version (MAJOR.MINOR.PATCH) of a gallery image from
// sourceID (a managed image, a VM, or a gallery image version of another environment's
// gallery), replicated to targetRegions (default: the driver's location). This is how an
// image is promoted to the next environment on Azure.
func (d *Driver) CreateGalleryImageVersion(ctx context.Context, g GalleryImage, version, sourceID string, targetRegions []string, tagMap map[string]string) (cloud.Image, error) {
	if err := d.requireGroup(); err != nil {
		return cloud.Image{}, err
	}
	if g.Gallery == "" || g.Image == "" {
		return cloud.Image{}, errors.New("azure: gallery and image definition are required: name the Compute Gallery and its image definition")
	}
	if !galleryVersionRE.MatchString(version) {
		return cloud.Image{}, fmt.Errorf("azure: gallery image version %q is invalid: use MAJOR.MINOR.PATCH with numbers, like 1.2.0", version)
	}
	if !strings.HasPrefix(strings.ToLower(sourceID), "/subscriptions/") {
		return cloud.Image{}, fmt.Errorf("azure: source image %q is not a resource id: use the id of a managed image, VM or gallery image version", sourceID)
	}
	if len(targetRegions) == 0 {
		targetRegions = []string{d.opts.Location}
	}
	var regions []*armcompute.TargetRegion
	for _, r := range targetRegions {
		regions = append(regions, &armcompute.TargetRegion{Name: to.Ptr(r)})
	}
	p, err := d.versions.BeginCreateOrUpdate(ctx, d.opts.ResourceGroup, g.Gallery, g.Image, version, armcompute.GalleryImageVersion{
		Location: to.Ptr(d.opts.Location), Tags: azureTags(tagMap),
		Properties: &armcompute.GalleryImageVersionProperties{
			StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: to.Ptr(sourceID)}},
			PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: regions},
		},
	}, nil)
	res, err := done(ctx, d, "GalleryImageVersions.CreateOrUpdate", p, err)
	if err != nil {
		return cloud.Image{}, err
	}
	return cloud.Image{Cloud: "azure", Region: d.opts.Location, ID: val(res.ID), Name: g.Image + "/" + version}, nil
}
