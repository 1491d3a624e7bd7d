package image

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/imagecatalog"
)

// TestLocalPromotion promotes the built image from dev to prod with the real Packer and
// examples/packer/promote.pkr.hcl: prod gets a copy of its own carrying the recorded digest; a
// dev image altered after it was recorded is refused and prod keeps its image. (It works on a
// copy of the build's image and catalog, so the other tests keep theirs.)
func TestLocalPromotion(t *testing.T) {
	img := localImage(t)
	dir := t.TempDir()
	devImage := filepath.Join(dir, "output", "ztna-router.qcow2")
	copyFile(t, img.path, devImage)
	cat, err := imagecatalog.Load(img.catalog)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := cat.Lookup("local", "", "dev")
	if err != nil {
		t.Fatal(err)
	}
	if sum, _ := imagecatalog.FileDigest(img.path); dev.Checksum != sum || dev.AttestationDigest == "" {
		t.Fatalf("dev entry checksum %q attestation_digest %q; the image's digest is %s", dev.Checksum, dev.AttestationDigest, sum)
	}
	dev.ImageID = devImage
	catalog := filepath.Join(dir, "images.json")
	local := &imagecatalog.Catalog{}
	if _, err := local.Upsert(dev); err != nil {
		t.Fatal(err)
	}
	if err := local.Save(catalog); err != nil {
		t.Fatal(err)
	}
	promote := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		return packer(ctx, nil, "build", "-var", "catalog_path="+catalog, "-var", "cloud=local", "-var", "from=dev", "-var", "to=prod",
			"examples/packer/promote.pkr.hcl")
	}
	if out, err := promote(); err != nil {
		t.Fatalf("packer build promote.pkr.hcl: %v\n%s", err, out)
	}
	lookupProd := func() imagecatalog.Image {
		cat, err := imagecatalog.Load(catalog)
		if err != nil {
			t.Fatal(err)
		}
		prod, err := cat.Lookup("local", "", "prod")
		if err != nil {
			t.Fatal(err)
		}
		return prod
	}
	prod := lookupProd()
	if filepath.Dir(prod.ImageID) != filepath.Join(dir, "images", "prod") || prod.Checksum != dev.Checksum || prod.AttestationDigest != dev.AttestationDigest {
		t.Errorf("prod entry %+v: want a copy under images/prod with dev's checksum and attestation digest", prod)
	}
	if sum, _ := imagecatalog.FileDigest(prod.ImageID); sum != prod.Checksum {
		t.Errorf("prod's file digest %s, catalog %s", sum, prod.Checksum)
	}

	f, err := os.OpenFile(devImage, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	out, err := promote()
	if err == nil || !strings.Contains(out, "is not the image the catalog recorded") {
		t.Fatalf("promoting a tampered image: %v\n%s", err, out)
	}
	if got := lookupProd(); got != prod {
		t.Errorf("prod after the refused promotion: %+v, want %+v", got, prod)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}
