package cloud_test

import (
	"context"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/azure"
	"github.com/ztna/ztna/cloud/gcp"
	"github.com/ztna/ztna/cloud/local"
)

// hostDriver is the interface a consumer (the ztna_router_host resource) declares; every
// platform driver must satisfy it, so the resource treats them alike.
type hostDriver interface {
	Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error)
	Read(ctx context.Context, id string) (cloud.Host, error)
	Delete(ctx context.Context, id string) error
}

// baseImageFinder is what the Packer base-image data source needs from each cloud.
type baseImageFinder interface {
	LatestDebian(ctx context.Context) (cloud.Image, error)
}

var (
	_ hostDriver = (*aws.Driver)(nil)
	_ hostDriver = (*gcp.Driver)(nil)
	_ hostDriver = (*azure.Driver)(nil)
	_ hostDriver = (*local.Driver)(nil)

	_ baseImageFinder = (*aws.Driver)(nil)
	_ baseImageFinder = (*gcp.Driver)(nil)
	_ baseImageFinder = (*azure.Driver)(nil)
)
