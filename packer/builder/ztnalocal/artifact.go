package ztnalocal

import (
	"fmt"
	"os"
)

// Artifact is the disk image a ztna-local build wrote.
type Artifact struct {
	path      string
	format    string
	baseImage string
	generated map[string]interface{}
	// attestation is the image's /etc/ztna/image.json.
	attestation string
}

// BuilderId identifies the builder that made the artifact.
func (a *Artifact) BuilderId() string { return BuilderID }

// Files is the disk image.
func (a *Artifact) Files() []string { return []string{a.path} }

// Id is the disk image's path: what a local hypervisor (and the image catalog) refers to.
func (a *Artifact) Id() string { return a.path }

func (a *Artifact) String() string {
	return fmt.Sprintf("%s disk image %s (base %s)", a.format, a.path, a.baseImage)
}

// State exposes the generated data (SourceImageName), the image format and the image's
// attestation (/etc/ztna/image.json, "" without the ztna-router provisioner) to post-processors.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "attestation":
		return a.attestation
	case "generated_data":
		return a.generated
	case "format":
		return a.format
	case "base_image":
		return a.baseImage
	}
	return nil
}

// Destroy deletes the disk image.
func (a *Artifact) Destroy() error { return os.Remove(a.path) }
