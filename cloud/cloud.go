// Package cloud is the model shared by the router host platform drivers (cloud/local,
// cloud/aws, cloud/gcp, cloud/azure): what a router host is asked to be (HostSpec), what a
// driver reports back (Host), how a registration key reaches the host, and the errors drivers
// return. The Terraform provider's ztna_router_host resource and the Packer plugin call the
// drivers through small interfaces they declare themselves.
package cloud

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/sizing"
)

// ErrNotFound is returned (wrapped) by a driver's Read when the host no longer exists, so the
// caller can report drift, and by image lookups that match nothing.
var ErrNotFound = errors.New("not found")

// ErrNameInUse is returned (wrapped) by a driver's Create when a live host already has the
// name: with create_before_destroy the replacement runs beside the host it replaces, so it
// needs a name of its own.
var ErrNameInUse = errors.New("the name is in use")

// RegistrationKeyMetadataKey is the instance metadata item that carries the registration key
// where a platform has named metadata items (GCP). On AWS (user data) and Azure (custom data)
// the whole payload is the key followed by a newline; locally it is the file
// <state dir>/registration-key. The router's first-boot unit reads it from there.
const RegistrationKeyMetadataKey = "ztna-registration-key"

// Tags every driver puts on every object it creates, so objects can be found (and deleted) by
// host name and told apart from objects ztna does not manage.
const (
	TagManagedBy  = "ztna-managed-by"
	TagRouterHost = "ztna-router-host"
	ManagedBy     = "ztna"
)

// UserData is the user data / custom data payload that carries a registration key.
func UserData(registrationKey string) []byte { return []byte(registrationKey + "\n") }

// HostSpec is what a router host should be.
type HostSpec struct {
	// Name identifies the host on its platform; every object a driver creates is named after it.
	Name string
	// RegistrationKey is the router's one-time key. It is sensitive: drivers deliver it only
	// through instance metadata, user data or custom data, never in tags, names or logs.
	RegistrationKey string
	// Tier (a sizing tier) or InstanceType (explicit) chooses the machine; neither = the
	// default tier.
	Tier         string
	InstanceType string
	// Image is the platform's image id (AMI id, GCP image URL, Azure image or gallery version id).
	Image string
	// Egress is the normalised allowlist (egress.Compute); the only traffic a host may start.
	Egress []egress.Rule
	// Tags are added to every object created; the driver adds TagManagedBy and TagRouterHost.
	Tags map[string]string
	// RouterID is the router the key enrols, when known. A local host restarted in place keeps
	// its saved enrolment only for the same router: a router re-created under a new id (the
	// old one deleted, its certificate revoked) enrols afresh with the new key.
	RouterID string
	// DNSServers are the host's DNS servers as configured (IP[:port]). The local driver
	// records them, with RouterID, so that an imported host reads them back; clouds take
	// theirs from the network.
	DNSServers []string
}

// LogValue keeps the registration key out of logs even when a whole spec is logged.
func (s HostSpec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", s.Name),
		slog.String("registration_key", redacted(s.RegistrationKey)),
		slog.String("tier", s.Tier),
		slog.String("instance_type", s.InstanceType),
		slog.String("image", s.Image),
		slog.Int("egress_rules", len(s.Egress)),
	)
}

// String is the same redacted view, for %v and %s.
func (s HostSpec) String() string {
	return fmt.Sprintf("HostSpec{Name:%q RegistrationKey:%s Tier:%q InstanceType:%q Image:%q Egress:%d rules}",
		s.Name, redacted(s.RegistrationKey), s.Tier, s.InstanceType, s.Image, len(s.Egress))
}

// GoString keeps the key out of %#v too.
func (s HostSpec) GoString() string { return s.String() }

func redacted(secret string) string {
	if secret == "" {
		return "(empty)"
	}
	return "(sensitive)"
}

var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$`)

// ValidateName checks a host name. The rule is the intersection of what every platform accepts
// for the objects named after it (GCP resource names, Azure VM names, network interface names,
// Linux interface names), leaving room for suffixes.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("router host name %q is invalid: use 1-40 lower-case letters, digits and '-', starting with a letter and not ending with '-'", name)
	}
	return nil
}

// Validate checks the parts of a spec every driver needs.
func (s HostSpec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if strings.TrimSpace(s.RegistrationKey) == "" {
		return errors.New("registration key is empty: pass the key of a ztna_registration_key")
	}
	if strings.ContainsAny(s.RegistrationKey, "\r\n") {
		return errors.New("registration key contains a line break: pass the key as one line")
	}
	if len(s.Egress) == 0 {
		return errors.New("egress allowlist is empty: a router must at least reach its controller")
	}
	for k, v := range s.Tags {
		if strings.Contains(k, s.RegistrationKey) || strings.Contains(v, s.RegistrationKey) {
			return fmt.Errorf("tag %q contains the registration key: keys are secret, remove it from the tags", k)
		}
	}
	return nil
}

// Size returns the instance type and boot disk size of the spec on a cloud.
func (s HostSpec) Size(c sizing.Cloud) (instanceType string, diskGiB int, err error) {
	instanceType, err = sizing.Resolve(string(c), s.Tier, s.InstanceType)
	if err != nil {
		return "", 0, err
	}
	tier := s.Tier
	if tier == "" {
		tier = string(sizing.DefaultTier)
	}
	spec, err := sizing.Lookup(tier)
	if err != nil {
		return "", 0, err
	}
	return instanceType, spec.DiskGiB, nil
}

// AllTags returns the spec's tags plus the ownership tags drivers add.
func (s HostSpec) AllTags() map[string]string {
	out := make(map[string]string, len(s.Tags)+2)
	for k, v := range s.Tags {
		out[k] = v
	}
	maps.Copy(out, OwnershipTags(s.Name))
	return out
}

// OwnershipTags are the tags a driver adds to every object it creates (AllTags), which are not
// the user's tags: Read leaves them out of Host.Tags, and tag updates always keep them.
func OwnershipTags(host string) map[string]string {
	return map[string]string{TagManagedBy: ManagedBy, TagRouterHost: host}
}

// UserTags returns the tags of an object without the ownership tags and without the keys
// skip also names (platform tags such as EC2's Name): the tags a HostSpec asked for.
func UserTags(all map[string]string, skip ...string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if k == TagManagedBy || k == TagRouterHost || slices.Contains(skip, k) {
			continue
		}
		out[k] = v
	}
	return out
}

// FailureDomain is where a host runs, for redundancy checks: two routers of a service should
// differ in at least one part. Its String form is the one format of failure domains everywhere
// (ztna_router_host, what routers report from instance metadata, ztna_router, ztna_service), so
// that equal places compare equal.
type FailureDomain struct {
	Cloud  string `json:"cloud"`
	Region string `json:"region"`
	// Zone is the zone's full name on AWS and GCP ("eu-west-1b", "europe-west1-b"), the zone
	// number on Azure ("2", empty for a VM without a zone), the host name for local hosts.
	Zone string `json:"zone"`
}

// String renders "cloud/region/zone", always three parts (the zone may be empty):
// "aws/eu-west-1/eu-west-1b", "gcp/europe-west1/europe-west1-b", "azure/westeurope/2",
// "azure/westeurope/", "local/<machine>/<host name>". The region stays in because Azure zone
// numbers mean nothing without it.
func (d FailureDomain) String() string { return d.Cloud + "/" + d.Region + "/" + d.Zone }

// GCPZoneRegion returns the region of a GCP zone: the zone name minus its last dash-separated
// part ("europe-west1-b" → "europe-west1").
func GCPZoneRegion(zone string) string {
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return zone
}

// Host is what a driver reports about a router host.
type Host struct {
	// ID is the driver's handle for Read and Delete (AWS instance id, GCP instance URL path,
	// Azure VM resource id, local state directory).
	ID             string
	Name           string
	InstanceType   string
	PrivateAddress string
	Image          string
	FailureDomain  FailureDomain
	// State is the platform's instance state ("running", "pending", ...).
	State string
	// Drift lists objects the driver created that are gone or changed in a way that breaks the
	// egress-only model (a deleted firewall rule, an ingress rule someone added). Empty when
	// the host is as created.
	Drift []string
	// Tags are the user tags (labels on GCP) the platform reports on the host's instance,
	// without the ownership tags (UserTags); nil where a platform has none (local hosts).
	Tags map[string]string
	// SecurityGroups are the AWS security groups attached to the instance beside the one the
	// driver owns; nil on other platforms.
	SecurityGroups []string
	// Isolation is how the local platform confines the router process ("none", "netns"),
	// read from its record so an imported host keeps it; empty on clouds.
	Isolation string
	// RouterID and DNSServers are what the local driver recorded from HostSpec (empty on
	// clouds and for local hosts created before they were recorded).
	RouterID   string
	DNSServers []string
}

// APIError is a cloud API failure with advice on what to change.
type APIError struct {
	Cloud     string
	Operation string
	Code      string
	Message   string
	// Advice says what the user can change to fix it; empty when there is nothing specific.
	Advice string
	Err    error
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s failed: %s", e.Cloud, e.Operation, e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Advice != "" {
		msg += " — " + e.Advice
	}
	return msg
}

func (e *APIError) Unwrap() error { return e.Err }

// Image is a machine image on a cloud, as the Packer plugin's data source and post-processor
// see it.
type Image struct {
	Cloud string
	// Region is the AWS region, GCP project, or Azure location the image lives in.
	Region string
	ID     string
	Name   string
	// Created is the platform's creation timestamp (RFC 3339), empty when unknown.
	Created string
}

// EgressDiff describes how a firewall's egress allows (have) differ from the ones it should
// have (want), both in a platform's canonical rule form: an allow it lacks, and any allow
// beyond the allowlist — the latter is what widens a host's egress, so it is never ignored.
func EgressDiff(firewall string, want, have []string) []string {
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	var extra []string
	for _, h := range have {
		if left[h] > 0 {
			left[h]--
		} else {
			extra = append(extra, h)
		}
	}
	var drift []string
	for _, w := range want {
		if left[w] > 0 {
			left[w]--
			drift = append(drift, fmt.Sprintf("%s lacks the egress allow %s", firewall, w))
		}
	}
	for _, e := range extra {
		drift = append(drift, fmt.Sprintf("%s allows egress %s, which is not in the allowlist", firewall, e))
	}
	return drift
}
