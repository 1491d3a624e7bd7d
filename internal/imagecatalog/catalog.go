// Package imagecatalog reads and writes the image catalog: the JSON file in which the Packer
// post-processor ztna-catalog records every router image it builds or promotes, and from which
// the Terraform data source ztna_image picks the image a router host boots.
//
// One entry exists per (cloud, region, environment); recording a new build for the same key
// replaces the previous one. Writers go through Update, which serialises concurrent writers with a
// lock file and replaces the catalog atomically, so a reader never sees a half-written file.
package imagecatalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/atomicfile"
)

// FormatVersion is the catalog format this package writes. Files with a newer version are
// refused rather than rewritten, so an old writer cannot drop fields it does not know.
//
// Version 2 added checksum and attestation_digest: a version 1 reader would refuse them as
// unknown fields, a version 1 writer would drop them.
const FormatVersion = 2

// Clouds a catalog entry may name. "local" is a disk image built by the ztna-local builder.
var Clouds = []string{"aws", "gcp", "azure", "local"}

// ErrNotFound is wrapped by Lookup when no entry matches.
var ErrNotFound = errors.New("image not found in catalog")

// Catalog is the whole file.
type Catalog struct {
	Version int     `json:"version"`
	Images  []Image `json:"images"`
}

// Image is one built (or promoted) router image.
type Image struct {
	Cloud string `json:"cloud"`
	// Region the image is usable in. Empty means every region of the cloud (GCP images are
	// global; local images have no region).
	Region      string `json:"region,omitempty"`
	Environment string `json:"environment"`
	// ImageID is what the cloud's VM API takes: an AMI id, a GCP image self link or
	// "projects/P/global/images/N", an Azure image or gallery image version resource id, or the
	// path of a local disk image.
	ImageID string `json:"image_id"`
	// Account that owns the image: AWS account id, GCP project, Azure subscription. Optional.
	Account          string    `json:"account,omitempty"`
	RouterVersion    string    `json:"router_version"`
	HardeningProfile string    `json:"hardening_profile,omitempty"`
	BuildTime        time.Time `json:"build_time"`
	BaseImage        string    `json:"base_image"`
	// PromotedFrom names the environment this image was promoted from, and SourceImageID the
	// image it was copied from; both empty for an image built directly.
	PromotedFrom  string `json:"promoted_from,omitempty"`
	SourceImageID string `json:"source_image_id,omitempty"`
	// Checksum is "sha256:<hex>" of a local disk image file, taken when it was recorded;
	// promotion refuses a file that no longer matches it. (Cloud images are immutable cloud
	// objects named by their id.)
	Checksum string `json:"checksum,omitempty"`
	// AttestationDigest is "sha256:<hex>" of the image's /etc/ztna/image.json as built, when
	// the builder reports it (ztna-local).
	AttestationDigest string `json:"attestation_digest,omitempty"`
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// FileDigest is the "sha256:<hex>" digest of a file's content.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return Digest(h), nil
}

// Digest formats a finished SHA-256 hash as "sha256:<hex>".
func Digest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62})$`)

// Validate reports every problem with the entry at once, naming the field to fix.
func (img Image) Validate() error {
	var errs []error
	if !slices.Contains(Clouds, img.Cloud) {
		errs = append(errs, fmt.Errorf("cloud %q: must be one of %s", img.Cloud, strings.Join(Clouds, ", ")))
	}
	if img.Region == "" && (img.Cloud == "aws" || img.Cloud == "azure") {
		errs = append(errs, fmt.Errorf("region: required for %s images", img.Cloud))
	}
	if img.Region != "" && strings.ContainsAny(img.Region, " \t\n") {
		errs = append(errs, fmt.Errorf("region %q: must not contain whitespace", img.Region))
	}
	if err := ValidateEnvironment(img.Environment); err != nil {
		errs = append(errs, err)
	}
	if img.ImageID == "" {
		errs = append(errs, errors.New("image_id: required"))
	} else if strings.ContainsAny(img.ImageID, " \t\n") {
		errs = append(errs, fmt.Errorf("image_id %q: must not contain whitespace", img.ImageID))
	} else if img.Cloud == "aws" && !strings.HasPrefix(img.ImageID, "ami-") {
		errs = append(errs, fmt.Errorf("image_id %q: an AWS image id starts with \"ami-\"", img.ImageID))
	}
	if img.RouterVersion == "" {
		errs = append(errs, errors.New("router_version: required"))
	}
	if img.BuildTime.IsZero() {
		errs = append(errs, errors.New("build_time: required"))
	}
	if img.BaseImage == "" {
		errs = append(errs, errors.New("base_image: required"))
	}
	if img.PromotedFrom != "" && img.PromotedFrom == img.Environment {
		errs = append(errs, fmt.Errorf("promoted_from %q: an image cannot be promoted to the environment it comes from", img.PromotedFrom))
	}
	for _, d := range []struct{ name, value string }{{"checksum", img.Checksum}, {"attestation_digest", img.AttestationDigest}} {
		if d.value != "" && !digestPattern.MatchString(d.value) {
			errs = append(errs, fmt.Errorf("%s %q: want sha256:<64 hex digits>", d.name, d.value))
		}
	}
	return errors.Join(errs...)
}

// ValidateEnvironment checks an environment name (dev, staging, prod-eu, ...).
func ValidateEnvironment(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("environment %q: must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// key is the identity of an entry: a catalog holds one image per key.
func (img Image) key() [3]string { return [3]string{img.Cloud, img.Region, img.Environment} }

// String names the entry for messages.
func (img Image) String() string {
	region := img.Region
	if region == "" {
		region = "any region"
	}
	return fmt.Sprintf("%s/%s/%s (%s)", img.Cloud, region, img.Environment, img.ImageID)
}

// Load reads and validates a catalog file.
func Load(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image catalog %s does not exist: build an image with the ztna-catalog post-processor first, or fix the path: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("image catalog: %w", err)
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("image catalog %s: %w", path, err)
	}
	return c, nil
}

// Decode reads a catalog from r, rejecting unknown fields, newer format versions and invalid or
// duplicate entries.
func Decode(r io.Reader) (*Catalog, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, describeJSONError(data, err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the catalog object")
	}
	switch {
	case c.Version == 0:
		return nil, errors.New(`"version" missing: not an image catalog`)
	case c.Version > FormatVersion:
		return nil, fmt.Errorf("format version %d is newer than this build understands (%d): upgrade ztna", c.Version, FormatVersion)
	}
	seen := map[[3]string]bool{}
	for i, img := range c.Images {
		if err := img.Validate(); err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
		if seen[img.key()] {
			return nil, fmt.Errorf("images[%d]: a second entry for %s/%s/%s", i, img.Cloud, img.Region, img.Environment)
		}
		seen[img.key()] = true
	}
	return &c, nil
}

// describeJSONError adds the line number to a JSON syntax or type error.
func describeJSONError(data []byte, err error) error {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	if offset < 0 {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	line := 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
	return fmt.Errorf("invalid JSON at line %d: %w", line, err)
}

// Upsert records img, replacing the entry with the same cloud, region and environment. It returns
// the replaced entry, if any.
func (c *Catalog) Upsert(img Image) (replaced *Image, err error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("image %s: %w", img, err)
	}
	img.BuildTime = img.BuildTime.UTC()
	for i := range c.Images {
		if c.Images[i].key() == img.key() {
			old := c.Images[i]
			c.Images[i] = img
			return &old, nil
		}
	}
	c.Images = append(c.Images, img)
	c.sort()
	return nil, nil
}

func (c *Catalog) sort() {
	slices.SortFunc(c.Images, func(a, b Image) int {
		ka, kb := a.key(), b.key()
		return slices.Compare(ka[:], kb[:])
	})
}

// Lookup returns the image for cloud and environment in region. An entry recorded without a
// region (a global GCP image) matches every region; an exact region match wins over it.
func (c *Catalog) Lookup(cloud, region, environment string) (Image, error) {
	var global *Image
	for i, img := range c.Images {
		if img.Cloud != cloud || img.Environment != environment {
			continue
		}
		if img.Region == region {
			return img, nil
		}
		if img.Region == "" {
			global = &c.Images[i]
		}
	}
	if global != nil {
		return *global, nil
	}
	return Image{}, fmt.Errorf("%w: no %s image for environment %q in region %q; the catalog has: %s",
		ErrNotFound, cloud, environment, region, c.describe(cloud))
}

// describe lists the entries of one cloud, to tell a user what they could have asked for.
func (c *Catalog) describe(cloud string) string {
	var have []string
	for _, img := range c.Images {
		if img.Cloud == cloud {
			have = append(have, img.String())
		}
	}
	if len(have) == 0 {
		return "no " + cloud + " images at all"
	}
	return strings.Join(have, ", ")
}

// Encode writes the catalog as indented JSON, entries sorted by key so diffs stay small.
func (c *Catalog) Encode(w io.Writer) error {
	out := Catalog{Version: FormatVersion, Images: slices.Clone(c.Images)}
	if out.Images == nil {
		out.Images = []Image{}
	}
	out.sort()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// Save writes the catalog to path atomically: a temporary file in the same directory, synced,
// then renamed over path. Use Update when other writers may run at the same time.
func (c *Catalog) Save(path string) error {
	var buf bytes.Buffer
	if err := c.Encode(&buf); err != nil {
		return fmt.Errorf("image catalog %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("image catalog %s: %w", path, err)
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("image catalog: %w", err)
	}
	return nil
}
