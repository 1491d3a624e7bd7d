package catalog

import (
	"context"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"
	"github.com/ugorji/go/codec"
	"google.golang.org/protobuf/proto"

	"github.com/ztna/ztna/cloud/gcp/computefake"
	"github.com/ztna/ztna/internal/imagecatalog"
)

// googlecomputeArtifact is what googlecompute hands over for an image created in imageProject by
// a build in project build-proj: "ProjectId" is the build's project, the HCP Packer metadata
// has the image's.
func googlecomputeArtifact(imageProject string, metadata func(*registryimage.Image) any) artifact {
	md := &registryimage.Image{ImageID: "ztna-router-1-2-3", ProviderName: "gce", ProviderRegion: "europe-west1-b", Labels: map[string]string{
		"self_link":  "https://www.googleapis.com/compute/v1/projects/" + imageProject + "/global/images/ztna-router-1-2-3",
		"project_id": imageProject,
	}}
	return artifact{builderID: googleCompute, id: "ztna-router-1-2-3"}.with("ProjectId", "build-proj").with(registryimage.ArtifactStateURI, metadata(md))
}

// overRPC is the metadata as a post-processor in another plugin process gets it: the SDK's RPC
// encodes artifact state with msgpack (codec.MsgpackHandle{WriteExt: true}).
func overRPC(t *testing.T) func(*registryimage.Image) any {
	return func(img *registryimage.Image) any {
		h := &codec.MsgpackHandle{WriteExt: true}
		var b []byte
		if err := codec.NewEncoderBytes(&b, h).Encode(img); err != nil {
			t.Fatal(err)
		}
		var out interface{}
		if err := codec.NewDecoderBytes(b, h).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func inProcess(img *registryimage.Image) any { return img }

// withoutProjectID leaves only the self_link label, as older builders report.
func withoutProjectID(img *registryimage.Image) any {
	delete(img.Labels, "project_id")
	return img
}

// TestGCPImageProjectRecordedAndPromoted records an image googlecompute created in images-proj
// (image_project_id) from a build in build-proj, and promotes it with the image only in
// images-proj, as GCP has it: recording the build's project would make the promotion fail.
func TestGCPImageProjectRecordedAndPromoted(t *testing.T) {
	for name, metadata := range map[string]func(*registryimage.Image) any{
		"in process": inProcess, "over the plugin RPC": overRPC(t), "self_link only": withoutProjectID,
	} {
		t.Run(name, func(t *testing.T) {
			fake := computefake.New()
			defer fake.Close()
			fake.AddImage("images-proj", &computepb.Image{Name: proto.String("ztna-router-1-2-3")})
			path := t.TempDir() + "/catalog.json"
			rec := newPP(t, map[string]interface{}{"catalog_path": path, "environment": "dev", "router_version": "1.2.3", "base_image": "debian-12"})
			if _, _, _, err := rec.PostProcess(context.Background(), ui, googlecomputeArtifact("images-proj", metadata)); err != nil {
				t.Fatal(err)
			}
			cat, err := imagecatalog.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			dev, err := cat.Lookup("gcp", "", "dev")
			if err != nil {
				t.Fatal(err)
			}
			if dev.ImageID != "projects/images-proj/global/images/ztna-router-1-2-3" || dev.Account != "images-proj" {
				t.Fatalf("recorded %s in %s, want the image project's", dev.ImageID, dev.Account)
			}
			prod := promoteToProd(t, path, map[string]interface{}{"cloud": "gcp", "gcp_target_project": "prod-proj", "gcp_endpoint": fake.URL, "gcp_access_token": "t"})
			if imgs := fake.Images("prod-proj"); prod.Account != "prod-proj" || len(imgs) != 1 || imgs[0].GetSourceImage() != dev.ImageID {
				t.Errorf("promoted %+v; prod-proj has %v", prod, imgs)
			}
		})
	}
}

func TestGCPAccountContradictingImageProject(t *testing.T) {
	p := newPP(t, map[string]interface{}{"catalog_path": t.TempDir() + "/c.json", "environment": "dev", "router_version": "1.2.3", "base_image": "debian-12", "account": "build-proj"})
	_, _, _, err := p.PostProcess(context.Background(), ui, googlecomputeArtifact("images-proj", inProcess))
	if err == nil || !strings.Contains(err.Error(), "created the image in project images-proj") {
		t.Fatalf("err = %v", err)
	}
}
