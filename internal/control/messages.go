package control

import (
	"encoding/json"
	"fmt"
	"time"
)

// ProtocolVersion is the version of the conversation described in the package doc. The controller
// refuses a hello with a different version, with an error message saying which one it speaks.
const ProtocolVersion = 1

// ALPN is the TLS application protocol both sides require, so that a control-port connection can
// never be mistaken for (or by) any other TLS service.
const ALPN = "ztna-control/1"

// DefaultPort is the controller's control-channel port (the product brief's 6262/TCP).
const DefaultPort = 6262

// Type names a message.
type Type string

// Message types; see the package doc for who sends which.
const (
	TypeHello        Type = "hello"
	TypeWelcome      Type = "welcome"
	TypeAssignment   Type = "assignment"
	TypeHeartbeat    Type = "heartbeat"
	TypeHeartbeatAck Type = "heartbeat_ack"
	TypeRenew        Type = "renew"
	TypeRenewed      Type = "renewed"
	TypeRevoked      Type = "revoked"
	TypeError        Type = "error"
	TypeHubSnapshot  Type = "hub_snapshot"
	// TypeUndeliverable tells the peer that a message for it was not sent because it is larger
	// than the peer accepts (either side may send it; a peer that predates it ignores it).
	TypeUndeliverable Type = "undeliverable"
)

// Envelope is one frame. ID correlates a renew with its renewed answer; other messages leave it 0.
type Envelope struct {
	Type Type            `json:"type"`
	ID   uint64          `json:"id,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Decode unmarshals the body into v, naming the message type when the body is malformed.
func (e Envelope) Decode(v any) error {
	if len(e.Body) == 0 {
		return fmt.Errorf("control: %s message has no body", e.Type)
	}
	if err := json.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("control: malformed %s message: %w", e.Type, err)
	}
	return nil
}

// Hello is the router's first message.
type Hello struct {
	Protocol      int    `json:"protocol"`
	Version       string `json:"version"`
	FailureDomain string `json:"failure_domain,omitempty"`
	Hostname      string `json:"hostname,omitempty"`
	// Image is the attestation file baked into the router's image (/etc/ztna/image.json), absent
	// when the router was installed by hand.
	Image *Attestation `json:"image,omitempty"`
	// Hub says the router runs as a standalone hub (`ztna-router run --hub`): the controller
	// then pushes HubSnapshots and issues it a hub certificate — only if the router holds the
	// role api.RoleHub, because a snapshot reveals every service and identity.
	Hub bool `json:"hub,omitempty"`
	// MaxMessage is the largest message (bytes) the router reassembles from chunk frames, so
	// the controller may send it assignments and snapshots above MaxFrameSize. Absent: a router
	// that predates chunking, which gets single frames only.
	MaxMessage int64 `json:"max_message,omitempty"`
}

// Attestation describes the image a router booted from. The Packer provisioner writes it to
// AttestationPath; the router reports it in its hello.
type Attestation struct {
	RouterVersion    string    `json:"router_version"`
	HardeningProfile string    `json:"hardening_profile"`
	BuildTime        time.Time `json:"build_time"`
	BaseImage        string    `json:"base_image"`
	Cloud            string    `json:"cloud,omitempty"`
	ProvisionerRunID string    `json:"provisioner_run_id,omitempty"`
	// Packages is the image's Debian package set at build time; absent in images built before
	// it was recorded.
	Packages *PackageSet `json:"packages,omitempty"`
	// Signature is the build's signature of the rest (SignedBytes); absent when the build
	// had no signing key.
	Signature *AttestationSignature `json:"signature,omitempty"`
}

// PackageSet summarises the Debian packages installed in an image.
type PackageSet struct {
	// Count is the number of installed packages.
	Count int `json:"count"`
	// Digest is "sha256:" and the hex SHA-256 of the sorted "name:arch version" lines of the
	// installed packages: equal digests mean equal package versions.
	Digest string `json:"digest"`
	// SecurityIndexDate is the Date of the -security suite index the build compared the image
	// with: every security update published before it is included. Zero when the build
	// had no security suite (upgrade_packages = false on a base without one).
	SecurityIndexDate time.Time `json:"security_index_date,omitzero"`
	// SecurityUpdates counts the installed packages at their security suite version.
	SecurityUpdates int `json:"security_updates"`
	// NewestSecurityUpdate is the most recently published of those, by its changelog.
	NewestSecurityUpdate *SecurityUpdate `json:"newest_security_update,omitempty"`
}

// SecurityUpdate is one installed package version from the security suite.
type SecurityUpdate struct {
	Package   string    `json:"package"`
	Version   string    `json:"version"`
	Published time.Time `json:"published"`
}

// AttestationPath is where images carry their attestation file.
const AttestationPath = "/etc/ztna/image.json"

// Welcome accepts a hello and tells the router who the controller thinks it is.
type Welcome struct {
	RouterID string   `json:"router_id"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	// HeartbeatIntervalMS is how often the router must send a heartbeat; either side drops the
	// connection after HeartbeatMisses intervals without a frame from the other.
	HeartbeatIntervalMS int64     `json:"heartbeat_interval_ms"`
	ServerTime          time.Time `json:"server_time"`
	// Fabric lists the fabric addresses (host:port) of every hub the router links to; it
	// replaces the list from enrolment, so hubs can be added without re-enrolling. Empty keeps
	// the enrolled list.
	Fabric []string `json:"fabric,omitempty"`
	// Control lists the controller's control-channel addresses (host:port) as it advertises
	// them now — with replicas, every replica. The router saves the list and dials it in turn
	// when it reconnects, so replicas can be added without re-enrolling; it replaces the
	// enrolled list (which the router keeps at the end as a last resort). Empty keeps the list
	// the router has.
	Control []string `json:"control,omitempty"`
	// MaxMessage is the largest message (bytes) the controller reassembles from chunk frames
	// (a heartbeat with the health of thousands of services). Absent: a controller that
	// predates chunking, which accepts single frames only.
	MaxMessage int64 `json:"max_message,omitempty"`
	// ReconnectSpreadMS is the window over which the router spreads its reconnect attempts
	// after losing this session (uniformly at random), so that a fleet reconnecting to a
	// restarted controller arrives at a bounded rate; the controller sizes it from its
	// session count. Zero (older controllers): no spreading beyond the usual jitter.
	ReconnectSpreadMS int64 `json:"reconnect_spread_ms,omitempty"`
}

// HeartbeatMisses is how many heartbeat intervals of silence end a connection.
const HeartbeatMisses = 3

// HeartbeatInterval returns the interval as a duration.
func (w Welcome) HeartbeatInterval() time.Duration {
	return time.Duration(w.HeartbeatIntervalMS) * time.Millisecond
}

// Service is one service the router must host: it may dial Address (an FQDN or IP) on Port and
// on every port of PortRanges, and nothing else.
type Service struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Address    string      `json:"address"`
	Port       int         `json:"port"`
	PortRanges []PortRange `json:"port_ranges,omitempty"`
	Protocol   string      `json:"protocol"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// HasPort reports whether the service exposes port.
func (s Service) HasPort(port int) bool {
	if port == s.Port {
		return true
	}
	for _, r := range s.PortRanges {
		if port >= r.From && port <= r.To {
			return true
		}
	}
	return false
}

// Assignment is the complete set of services assigned to the router; each one replaces the last.
type Assignment struct {
	Services []Service `json:"services"`
}

// Heartbeat is the router's periodic liveness and health report.
type Heartbeat struct {
	SentAt   time.Time       `json:"sent_at"`
	Services []ServiceHealth `json:"services"`
}

// ServiceHealth is what the router observed for one assigned service, on its Port.
type ServiceHealth struct {
	ServiceID   string    `json:"service_id"`
	ServiceName string    `json:"service_name"`
	Address     string    `json:"address"`
	Port        int       `json:"port"`
	Resolvable  bool      `json:"resolvable"`
	Reachable   bool      `json:"reachable"`
	Error       string    `json:"error,omitempty"`
	CheckedAt   time.Time `json:"checked_at"`
}

// HeartbeatAck answers a heartbeat.
type HeartbeatAck struct {
	ServerTime time.Time `json:"server_time"`
}

// Renew asks for a new certificate for the router's key; the controller answers with Renewed
// under the same envelope ID.
type Renew struct {
	CSR string `json:"csr"` // PEM "CERTIFICATE REQUEST"
	// Kind is the certificate wanted: "" (or "router") renews the router's own; CertKindHub
	// asks a hub-mode router for the hub certificate (ztna://hub/<router id>) its fabric
	// listener presents, for the CSR's key.
	Kind string `json:"kind,omitempty"`
}

// CertKindHub is Renew.Kind for a standalone hub's certificate.
const CertKindHub = "hub"

// Renewed carries the new certificate chain (PEM, leaf first) or the reason there is none.
type Renewed struct {
	Certificate string `json:"certificate,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Revoked tells the router it was deleted or its certificate revoked; the controller closes the
// connection right after and refuses the certificate from then on.
type Revoked struct {
	Reason string `json:"reason"`
}

// Error is a fatal protocol error; the sender closes the connection after it.
type Error struct {
	Message string `json:"message"`
	// RetryAfterMS, when set, says the controller is shedding a backlog of admissions: the
	// router waits at least this long (plus jitter) before it reconnects, instead of its
	// own backoff.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// Undeliverable says which message the sender did not send, and why: Size bytes encoded,
// more than the Limit the receiver announced (MaxFrameSize when it announced none).
type Undeliverable struct {
	Type  Type  `json:"type"`
	Size  int   `json:"size"`
	Limit int64 `json:"limit"`
}

// HubSnapshot is everything a hub needs to authorise and route dials without asking the
// controller: every service with the router roles that host it, every router with its roles
// and static cost, every identity with its roles, and every service policy. The controller
// sends the whole snapshot to hub-mode routers after welcome and again after every change;
// each one replaces the last.
type HubSnapshot struct {
	// Version numbers the snapshots one controller process built (each build one more; a
	// replica or a restarted controller counts on its own); 0 when it was read for this push
	// alone. Hubs log and export it (ztna_hub_snapshot_version).
	Version    uint64        `json:"version,omitempty"`
	Services   []HubService  `json:"services"`
	Routers    []HubRouter   `json:"routers"`
	Identities []HubIdentity `json:"identities"`
	Policies   []HubPolicy   `json:"policies"`
}

// HubService is a service and the router roles that select its hosts.
type HubService struct {
	Service
	RouterRoles []string `json:"router_roles"`
}

// HubRouter is a router with its roles, operator-set static cost (milliseconds) and the time
// of its latest enrolment: hubs refuse links with certificates issued before it
// (pki.Superseded). Zero (absent: never enrolled, or an earlier controller) refuses none.
type HubRouter struct {
	ID         string    `json:"id"`
	Roles      []string  `json:"roles"`
	Cost       int       `json:"cost,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
}

// HubIdentity is a client identity with its roles.
type HubIdentity struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}

// HubPolicy lets identities holding any of IdentityRoles dial the named services.
type HubPolicy struct {
	IdentityRoles []string `json:"identity_roles"`
	ServiceNames  []string `json:"service_names"`
}
