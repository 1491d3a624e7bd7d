// Package api holds the JSON wire types of the ztna management API (/v1) and the validation
// rules they share, so that the controller, the Go client, the Terraform provider and the CLI
// agree on field names and on what input is valid.
package api

import (
	"encoding/json"
	"time"
)

// Router states reported in Router.Status.
const (
	RouterUnenrolled = "unenrolled"
	RouterOnline     = "online"
	RouterOffline    = "offline"
)

// Registration key states reported in RegistrationKey.State.
const (
	KeyUnused  = "unused"
	KeyUsed    = "used"
	KeyExpired = "expired"
	KeyRevoked = "revoked"
)

// Protocols a service can use.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// Kinds of enrolled entities (the first path element of a certificate's URI SAN).
const (
	KindRouter     = "router"
	KindIdentity   = "identity"
	KindController = "controller"
	KindHub        = "hub"
)

// RoleHub is the router role that lets a router run as a standalone hub (`ztna-router run
// --hub`): only routers holding it receive the policy snapshot and a hub certificate.
const RoleHub = "hub"

// DefaultKeyTTL is how long a registration key or enrolment token stays valid when the
// request does not say.
const DefaultKeyTTL = 3 * time.Hour

// MaxKeyTTLSeconds bounds ttl_seconds (30 days): a forgotten key must not stay usable forever.
const MaxKeyTTLSeconds = 30 * 24 * 3600

// List is the envelope of every collection listing: one page of items in id order.
// NextCursor, when set, is the opaque cursor of the next page (?cursor=); it is absent on
// the last page.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Page sizes of every list: ?limit= defaults to DefaultListLimit and may not exceed
// MaxListLimit (a 400 naming limit).
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Router is an edge router as the controller knows it. Status, LastSeen, Version,
// FailureDomain, Services and Attestation are reported by the router over the control
// channel and are read-only here.
type Router struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Roles         []string        `json:"roles"`
	Cost          int             `json:"cost"`
	Status        string          `json:"status"`
	LastSeen      *time.Time      `json:"last_seen,omitempty"`
	Version       string          `json:"version"`
	FailureDomain string          `json:"failure_domain"`
	Services      []ServiceHealth `json:"services"`
	Attestation   json.RawMessage `json:"attestation,omitempty"`
	// AttestationVerified: Attestation is signed by one of the controller's trusted build
	// keys (--attestation-key). AttestationReason says why not: unsigned, untrusted_key,
	// bad_signature or missing (no attestation reported); "verified" when it is.
	AttestationVerified bool   `json:"attestation_verified"`
	AttestationReason   string `json:"attestation_reason"`
	// ReenrollmentAllowed: an operator reset the router's enrolment (POST
	// /v1/routers/{id}/reset-enrollment), so its next enrolment is admitted with any valid
	// key, not only one created with AllowReenrollment; that enrolment clears it.
	ReenrollmentAllowed bool      `json:"reenrollment_allowed"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// ServiceHealth is what one router last reported about one service assigned to it.
type ServiceHealth struct {
	Name       string    `json:"name"`
	Resolvable bool      `json:"resolvable"`
	Reachable  bool      `json:"reachable"`
	Error      string    `json:"error,omitempty"`
	CheckedAt  time.Time `json:"checked_at"`
}

// RouterCreate is the body of POST /v1/routers.
type RouterCreate struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"`
	Cost  int      `json:"cost,omitempty"`
}

// RouterUpdate is the body of PATCH /v1/routers/{id}; absent fields stay as they are.
type RouterUpdate struct {
	Name  *string   `json:"name,omitempty"`
	Roles *[]string `json:"roles,omitempty"`
	Cost  *int      `json:"cost,omitempty"`
}

// RegistrationKey is a one-time key that enrols one router. Key is only set in the
// response of create: the controller keeps nothing but a hash of the secret.
type RegistrationKey struct {
	ID         string `json:"id"`
	RouterID   string `json:"router_id"`
	TTLSeconds int    `json:"ttl_seconds"`
	// AllowReenrollment: the key may enrol its router even when the router is already
	// enrolled (a replacement host), superseding the running router's certificate. Without
	// it the key only enrols a router that was never enrolled or that an operator reset.
	AllowReenrollment bool       `json:"allow_reenrollment"`
	ExpiresAt         time.Time  `json:"expires_at"`
	State             string     `json:"state"`
	UsedAt            *time.Time `json:"used_at,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	Key               string     `json:"key,omitempty"`
}

// RegistrationKeyCreate is the body of POST /v1/registration-keys. TTLSeconds 0 means
// DefaultKeyTTL.
type RegistrationKeyCreate struct {
	RouterID          string `json:"router_id"`
	TTLSeconds        int    `json:"ttl_seconds,omitempty"`
	AllowReenrollment bool   `json:"allow_reenrollment,omitempty"`
}

// Service is a private resource (address:port) hosted by the routers whose roles match
// RouterRoles. PortRanges ("from-to") are exposed in addition to Port. RouterSummary is
// the read-only count of the routers that host it by status; GET
// /v1/services/{id}/routers lists them, a page at a time.
type Service struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Address       string        `json:"address"`
	Port          int           `json:"port"`
	PortRanges    []string      `json:"port_ranges"`
	Protocol      string        `json:"protocol"`
	RouterRoles   []string      `json:"router_roles"`
	RouterSummary RouterSummary `json:"router_summary"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

// RouterSummary counts the routers selected (by role) to host a service by stored status.
// Unhealthy counts online routers whose last report says the service's address does not
// resolve or its target is unreachable. FailureDomains are the distinct failure domains of
// the hosting routers, sorted: fewer than two means no redundancy.
type RouterSummary struct {
	Total          int      `json:"total"`
	Online         int      `json:"online"`
	Offline        int      `json:"offline"`
	Unenrolled     int      `json:"unenrolled"`
	Unhealthy      int      `json:"unhealthy"`
	FailureDomains []string `json:"failure_domains"`
}

// ServiceRoute is one router selected (by role) to host a service, with its last report.
type ServiceRoute struct {
	RouterID      string     `json:"router_id"`
	RouterName    string     `json:"router_name"`
	Status        string     `json:"status"`
	FailureDomain string     `json:"failure_domain"`
	Resolvable    bool       `json:"resolvable"`
	Reachable     bool       `json:"reachable"`
	CheckedAt     *time.Time `json:"checked_at,omitempty"`
}

// ServiceCreate is the body of POST /v1/services. Protocol "" means tcp.
type ServiceCreate struct {
	Name        string   `json:"name"`
	Address     string   `json:"address"`
	Port        int      `json:"port"`
	PortRanges  []string `json:"port_ranges,omitempty"`
	Protocol    string   `json:"protocol,omitempty"`
	RouterRoles []string `json:"router_roles,omitempty"`
}

// ServiceUpdate is the body of PATCH /v1/services/{id}; absent fields stay as they are.
type ServiceUpdate struct {
	Name        *string   `json:"name,omitempty"`
	Address     *string   `json:"address,omitempty"`
	Port        *int      `json:"port,omitempty"`
	PortRanges  *[]string `json:"port_ranges,omitempty"`
	Protocol    *string   `json:"protocol,omitempty"`
	RouterRoles *[]string `json:"router_roles,omitempty"`
}

// Identity is a client (an integration runtime) that dials services. EnrollmentToken is
// only set in the responses of create and of POST /v1/identities/{id}/enrollment-token; it
// works like a registration key of kind identity. TokenTTLSeconds is the lifetime its latest
// token was minted with (0 for identities stored before it was recorded), so that a
// configuration's token_ttl can be read back.
type Identity struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Roles           []string  `json:"roles"`
	Enrolled        bool      `json:"enrolled"`
	EnrollmentToken string    `json:"enrollment_token,omitempty"`
	TokenExpiresAt  time.Time `json:"token_expires_at"`
	TokenTTLSeconds int       `json:"token_ttl_seconds"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// IdentityCreate is the body of POST /v1/identities. TokenTTLSeconds 0 means DefaultKeyTTL.
type IdentityCreate struct {
	Name            string   `json:"name"`
	Roles           []string `json:"roles,omitempty"`
	TokenTTLSeconds int      `json:"token_ttl_seconds,omitempty"`
}

// IdentityTokenReissue is the body of POST /v1/identities/{id}/enrollment-token ({} for the
// defaults). TokenTTLSeconds 0 means DefaultKeyTTL.
type IdentityTokenReissue struct {
	TokenTTLSeconds int `json:"token_ttl_seconds,omitempty"`
}

// IdentityUpdate is the body of PATCH /v1/identities/{id}; absent fields stay as they are.
type IdentityUpdate struct {
	Name  *string   `json:"name,omitempty"`
	Roles *[]string `json:"roles,omitempty"`
}

// ServicePolicy lets identities holding any of IdentityRoles dial the named services.
type ServicePolicy struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	IdentityRoles []string  `json:"identity_roles"`
	ServiceNames  []string  `json:"service_names"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// ServicePolicyCreate is the body of POST /v1/service-policies.
type ServicePolicyCreate struct {
	Name          string   `json:"name"`
	IdentityRoles []string `json:"identity_roles,omitempty"`
	ServiceNames  []string `json:"service_names,omitempty"`
}

// ServicePolicyUpdate is the body of PATCH /v1/service-policies/{id}.
type ServicePolicyUpdate struct {
	Name          *string   `json:"name,omitempty"`
	IdentityRoles *[]string `json:"identity_roles,omitempty"`
	ServiceNames  *[]string `json:"service_names,omitempty"`
}

// EnrollRequest is the body of POST /v1/enroll: a registration key or enrolment token and a
// PEM certificate signing request for the key pair generated on the enrolling host.
type EnrollRequest struct {
	Key string `json:"key"`
	CSR string `json:"csr"`
}

// RenewRequest is the body of POST /v1/renew: a PEM certificate signing request for a key pair
// the identity generated for the renewed certificate. The identity authenticates with its
// current certificate over mutual TLS; the response is an EnrollResponse.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// EnrollResponse carries the issued certificate chain (PEM, leaf first), the CA certificate
// (PEM) and the configuration of the enrolled entity.
type EnrollResponse struct {
	Certificate string         `json:"certificate"`
	CA          string         `json:"ca"`
	Config      EnrolledConfig `json:"config"`
}

// EnrolledConfig is what an enrolled router or identity needs to reach the network; it is
// also the config.json of its local state.
type EnrolledConfig struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	Name          string    `json:"name"`
	Roles         []string  `json:"roles"`
	Edge          []string  `json:"edge"`
	Control       []string  `json:"control"`
	Fabric        []string  `json:"fabric"`
	CAFingerprint string    `json:"ca_fingerprint"`
	CertExpiresAt time.Time `json:"cert_expires_at"`
}
