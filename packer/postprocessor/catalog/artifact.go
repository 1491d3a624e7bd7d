package catalog

import (
	"strings"

	"github.com/ztna/ztna/internal/imagecatalog"
)

// ArtifactID identifies ztna-catalog artifacts.
const ArtifactID = "ztna.catalog"

// Artifact lists the catalog entries a post-processor run wrote. It owns no image: destroying it
// leaves the images and the catalog alone.
type Artifact struct {
	catalogPath string
	entries     []imagecatalog.Image
}

// BuilderId identifies the post-processor.
func (a *Artifact) BuilderId() string { return ArtifactID }

// Files is empty: the catalog is shared by many builds and is not this artifact's to delete.
func (a *Artifact) Files() []string { return nil }

// Id lists the recorded image ids.
func (a *Artifact) Id() string {
	ids := make([]string, len(a.entries))
	for i, e := range a.entries {
		ids[i] = e.ImageID
	}
	return strings.Join(ids, ",")
}

func (a *Artifact) String() string {
	parts := make([]string, len(a.entries))
	for i, e := range a.entries {
		parts[i] = key(e) + " = " + e.ImageID
	}
	return "Recorded in image catalog " + a.catalogPath + ": " + strings.Join(parts, ", ")
}

// State returns the catalog path under "catalog_path".
func (a *Artifact) State(name string) interface{} {
	if name == "catalog_path" {
		return a.catalogPath
	}
	return nil
}

// Destroy does nothing; see Artifact.
func (a *Artifact) Destroy() error { return nil }
