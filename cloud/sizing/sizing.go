// Package sizing is the router VM sizing table: the tiers of the product brief ("low-med", "med",
// "high") mapped to vCPU, RAM, disk and a concrete instance type per cloud. The cloud drivers, the
// ztna_router_host resource and the ztna_router_sizing data source all read this one table.
package sizing

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Tier names a router size class. Throughput of the router grows with vCPUs (TLS and end-to-end
// AEAD are CPU bound), so the tiers double the vCPU count at each step.
type Tier string

// The tiers of the product brief.
const (
	LowMed Tier = "low-med"
	Med    Tier = "med"
	High   Tier = "high"
)

// Cloud names a platform that has instance types.
type Cloud string

// Clouds with an instance-type column in the table. The local platform runs the router as a
// process and has no instance types.
const (
	AWS   Cloud = "aws"
	GCP   Cloud = "gcp"
	Azure Cloud = "azure"
)

// InstanceType is a concrete machine type of one cloud with its real capacity (which can exceed
// the tier's minimum: GCP's e2-standard shapes carry 4 GiB per vCPU).
type InstanceType struct {
	Name      string `json:"name"`
	VCPU      int    `json:"vcpu"`
	MemoryMiB int    `json:"memory_mib"`
}

// Spec is one row of the sizing table.
type Spec struct {
	Tier Tier `json:"tier"`
	// VCPU and MemoryMiB are the minimum capacity the tier guarantees on every cloud.
	VCPU      int `json:"vcpu"`
	MemoryMiB int `json:"memory_mib"`
	// DiskGiB is the boot disk size. The router keeps only its certificates, config and a capped
	// journal, so disk does not grow with throughput; 20 GiB leaves room for OS updates and is
	// above every cloud's Debian 12 image minimum (GCP: 10 GB).
	DiskGiB       int                    `json:"disk_gib"`
	InstanceTypes map[Cloud]InstanceType `json:"instance_types"`
}

// The table. AWS uses the c6i (compute optimised, Intel Ice Lake) family: it matches Azure's
// Fsv2 shapes exactly (2 GiB per vCPU), is current generation with better price/performance than
// c5, and — unlike c7i — is offered in every commercial region, so one table works everywhere.
// GCP's E2 shapes come with 1 GiB (e2-highcpu, below the tier's RAM minimum) or 4 GiB
// (e2-standard) per vCPU, so e2-standard is used and carries more RAM than the other clouds.
var table = []Spec{
	{
		Tier: LowMed, VCPU: 2, MemoryMiB: 4096, DiskGiB: 20,
		InstanceTypes: map[Cloud]InstanceType{
			AWS:   {Name: "c6i.large", VCPU: 2, MemoryMiB: 4096},
			GCP:   {Name: "e2-standard-2", VCPU: 2, MemoryMiB: 8192},
			Azure: {Name: "Standard_F2s_v2", VCPU: 2, MemoryMiB: 4096},
		},
	},
	{
		Tier: Med, VCPU: 4, MemoryMiB: 8192, DiskGiB: 20,
		InstanceTypes: map[Cloud]InstanceType{
			AWS:   {Name: "c6i.xlarge", VCPU: 4, MemoryMiB: 8192},
			GCP:   {Name: "e2-standard-4", VCPU: 4, MemoryMiB: 16384},
			Azure: {Name: "Standard_F4s_v2", VCPU: 4, MemoryMiB: 8192},
		},
	},
	{
		Tier: High, VCPU: 8, MemoryMiB: 16384, DiskGiB: 20,
		InstanceTypes: map[Cloud]InstanceType{
			AWS:   {Name: "c6i.2xlarge", VCPU: 8, MemoryMiB: 16384},
			GCP:   {Name: "e2-standard-8", VCPU: 8, MemoryMiB: 32768},
			Azure: {Name: "Standard_F8s_v2", VCPU: 8, MemoryMiB: 16384},
		},
	},
}

// DefaultTier is the tier used when a router host declares neither a tier nor an instance type.
const DefaultTier = LowMed

// Tiers lists the valid tiers from smallest to largest.
func Tiers() []Tier {
	out := make([]Tier, len(table))
	for i, s := range table {
		out[i] = s.Tier
	}
	return out
}

// Clouds lists the clouds that have instance types, sorted.
func Clouds() []Cloud { return []Cloud{AWS, Azure, GCP} }

// Table returns a copy of every row, smallest tier first.
func Table() []Spec {
	out := make([]Spec, len(table))
	for i, s := range table {
		out[i] = s.clone()
	}
	return out
}

// Lookup returns the row of a tier. The error lists the valid tiers.
func Lookup(tier string) (Spec, error) {
	for _, s := range table {
		if string(s.Tier) == tier {
			return s.clone(), nil
		}
	}
	return Spec{}, fmt.Errorf("unknown router size tier %q: use one of %s", tier, quoteAll(Tiers()))
}

// ParseCloud validates a cloud name. The error lists the valid clouds.
func ParseCloud(cloud string) (Cloud, error) {
	if slices.Contains(Clouds(), Cloud(cloud)) {
		return Cloud(cloud), nil
	}
	return "", fmt.Errorf("unknown cloud %q: use one of %s", cloud, quoteAll(Clouds()))
}

// InstanceTypeFor returns the instance type of a tier on a cloud.
func InstanceTypeFor(cloud, tier string) (InstanceType, error) {
	c, err := ParseCloud(cloud)
	if err != nil {
		return InstanceType{}, err
	}
	s, err := Lookup(tier)
	if err != nil {
		return InstanceType{}, err
	}
	return s.InstanceTypes[c], nil
}

// Resolve picks the instance type for a host that declares a tier, an explicit instance type, or
// neither (DefaultTier). Declaring both is an error because it is ambiguous which one wins.
func Resolve(cloud, tier, explicitType string) (string, error) {
	if _, err := ParseCloud(cloud); err != nil {
		return "", err
	}
	switch {
	case tier != "" && explicitType != "":
		return "", fmt.Errorf("both size %q and instance type %q are set: set only one of them", tier, explicitType)
	case explicitType != "":
		return explicitType, nil
	case tier == "":
		tier = string(DefaultTier)
	}
	it, err := InstanceTypeFor(cloud, tier)
	return it.Name, err
}

func (s Spec) clone() Spec {
	s.InstanceTypes = maps.Clone(s.InstanceTypes)
	return s
}

func quoteAll[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
