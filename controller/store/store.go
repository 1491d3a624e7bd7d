// Package store declares what the controller persists — routers, registration keys and
// enrolment tokens, services, identities and service policies — behind one interface, so that
// the embedded SQLite store (store/sqlite) and a PostgreSQL store for replicated controllers
// can be swapped. It also carries the change feed every write publishes to.
package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/api"
)

// Errors every implementation returns (wrapped) so callers can map them to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	// ErrKeyUsed, ErrKeyExpired and ErrKeyRevoked explain why ConsumeKey refused a key.
	ErrKeyUsed    = errors.New("registration key already used")
	ErrKeyExpired = errors.New("registration key expired")
	ErrKeyRevoked = errors.New("registration key revoked")
	// ErrRouterEnrolled: ConsumeKey refused a valid key because its router is already
	// enrolled and neither the key nor an operator reset allows enrolling it again
	// (AdmitEnrolment).
	ErrRouterEnrolled = errors.New("router already enrolled")

	// ErrUnavailable says the database cannot be reached or refuses work for now (PostgreSQL
	// down, restarting or out of connections; SQLite locked past its busy timeout): the same
	// request may succeed later. Nothing was written.
	ErrUnavailable = errors.New("store unavailable")
	// ErrFull says the database has no room left (disk full): writes fail until an operator
	// frees space. Nothing was written.
	ErrFull = errors.New("store out of disk space")
)

// Classify returns err wrapped with kind (ErrUnavailable or ErrFull), keeping the cause in
// the chain, unless err already carries one of them; backends call it on driver errors.
func Classify(kind, err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrFull) {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// ConflictError reports a unique field (a name) that is already taken.
type ConflictError struct {
	Collection, Field, Value string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("a %s with %s %q already exists", e.Collection, e.Field, e.Value)
}

// ReferenceError reports a write that names an object that does not exist (a key for an
// unknown router).
type ReferenceError struct {
	Field, Value string
}

func (e *ReferenceError) Error() string {
	return fmt.Sprintf("%s %q does not exist", e.Field, e.Value)
}

// Key is a registration key (kind router) or enrolment token (kind identity) as stored: the
// secret itself is never stored, only its SHA-256.
type Key struct {
	ID         string
	Kind       string // api.KindRouter or api.KindIdentity
	SubjectID  string // router or identity id
	SecretHash []byte
	TTLSeconds int
	// AllowReenrollment (router keys): the key may enrol a router that is already enrolled.
	AllowReenrollment bool
	ExpiresAt         time.Time
	Revoked           bool
	UsedAt            *time.Time
	// UsedBy is the SHA-256 of the public key (PKIX DER) the key enrolled: a retry with the
	// same public key soon after is the same enrolment, whose reply was lost (RetryOf).
	UsedBy    []byte
	CreatedAt time.Time
}

// EnrolmentRetryWindow is how long after its use a key still answers a retry of the same
// enrolment (same public key). A reply lost to a timeout, a proxy or a controller crash used
// to cost the one-time key; the retry now gets a certificate for the key it already enrolled.
// The window bounds how long a stolen key plus the victim's CSR could mint certificates for
// the victim's own public key, which are useless without its private key.
const EnrolmentRetryWindow = 10 * time.Minute

// RetryOf reports whether an enrolment with the public key hashed as usedBy, at now, repeats
// the enrolment that used k. A later enrolment of the same subject clears UsedBy of its
// earlier keys (ConsumeKey), so a superseded enrolment is never repeated.
func (k *Key) RetryOf(usedBy []byte, now time.Time) bool {
	return k.UsedAt != nil && len(k.UsedBy) > 0 && subtle.ConstantTimeCompare(k.UsedBy, usedBy) == 1 &&
		now.Before(k.UsedAt.Add(EnrolmentRetryWindow)) && !k.Revoked
}

// State derives the key's api state at now.
func (k *Key) State(now time.Time) string {
	switch {
	case k.UsedAt != nil:
		return api.KeyUsed
	case k.Revoked:
		return api.KeyRevoked
	case !now.Before(k.ExpiresAt):
		return api.KeyExpired
	}
	return api.KeyUnused
}

// RouterState is a partial update of what a router reports over the control channel; nil
// fields stay as they are.
type RouterState struct {
	Status        *string
	LastSeen      *time.Time
	Version       *string
	FailureDomain *string
	Health        *[]api.ServiceHealth
	Attestation   json.RawMessage // nil keeps the stored attestation
}

// Store is the controller's persistent state. Every method that writes publishes a Change
// to Subscribe's subscribers after the write committed.
type Store interface {
	// Routers. Create assigns ID, timestamps and status "unenrolled". Update loads the router,
	// lets fn change it (name, roles, cost), and saves it in one transaction; an error from fn
	// aborts and is returned as is.
	CreateRouter(ctx context.Context, r *api.Router) error
	GetRouter(ctx context.Context, id string) (*api.Router, error)
	ListRouters(ctx context.Context) ([]api.Router, error)
	UpdateRouter(ctx context.Context, id string, fn func(*api.Router) error) (*api.Router, error)
	// DeleteRouter deletes the router and its registration keys.
	DeleteRouter(ctx context.Context, id string) error
	// SetRouterState records what the router reported (control channel).
	SetRouterState(ctx context.Context, id string, st RouterState) error
	// MarkStaleOffline sets status "offline" on every router recorded "online" whose
	// last_seen is before seenBefore (its session died with a crashed controller) and
	// returns their ids.
	MarkStaleOffline(ctx context.Context, seenBefore time.Time) ([]string, error)
	// SetRouterStates records many routers' reports in one transaction: the control
	// channel's liveness writer flushes its batches here, so that thousands of sessions cost
	// a few transactions a second instead of one each. Routers that no longer exist are
	// skipped. It publishes no Change: status reports concern no subscriber, and a Change
	// per router and flush would flood every replica's change feed.
	SetRouterStates(ctx context.Context, states map[string]RouterState) error
	// LatestEnrolment returns when the latest enrolment of the router or identity (kind)
	// subjectID consumed its key; zero when it was never enrolled. See LatestEnrolments.
	LatestEnrolment(ctx context.Context, kind, subjectID string) (time.Time, error)

	// Keys. CreateKey assigns ID and CreatedAt; k.SubjectID must exist (*ReferenceError).
	CreateKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, id string) (*Key, error)
	// ListKeys lists keys of one kind, oldest first.
	ListKeys(ctx context.Context, kind string) ([]Key, error)
	// RevokeKey marks an unused key revoked; a used key cannot be revoked (ErrKeyUsed).
	RevokeKey(ctx context.Context, id string) (*Key, error)
	DeleteKey(ctx context.Context, id string) error
	// ConsumeKey atomically marks an unused, unrevoked, unexpired key used at now by the
	// public key hashed as usedBy (Key.UsedBy) and its subject enrolled (a router's status
	// leaves "unenrolled"; an identity becomes enrolled). Exactly one of any number of
	// concurrent calls for one key consumes it; the others get ErrKeyUsed, except a retry of
	// that same enrolment (Key.RetryOf), which gets the used key back and changes nothing.
	// A router key that AdmitEnrolment refuses for the router as it is in that transaction
	// gets ErrRouterEnrolled. ErrKeyRevoked, ErrKeyExpired or ErrNotFound otherwise.
	ConsumeKey(ctx context.Context, id string, now time.Time, usedBy []byte) (*Key, error)

	// Services. Update works like UpdateRouter.
	CreateService(ctx context.Context, s *api.Service) error
	GetService(ctx context.Context, id string) (*api.Service, error)
	ListServices(ctx context.Context) ([]api.Service, error)
	UpdateService(ctx context.Context, id string, fn func(*api.Service) error) (*api.Service, error)
	DeleteService(ctx context.Context, id string) error

	// Identities. Create stores the identity and its enrolment token (a Key of kind identity
	// whose ID, SubjectID and CreatedAt it assigns) in one transaction, and sets
	// i.TokenExpiresAt. Delete also deletes its tokens.
	CreateIdentity(ctx context.Context, i *api.Identity, token *Key) error
	GetIdentity(ctx context.Context, id string) (*api.Identity, error)
	ListIdentities(ctx context.Context) ([]api.Identity, error)
	UpdateIdentity(ctx context.Context, id string, fn func(*api.Identity) error) (*api.Identity, error)
	DeleteIdentity(ctx context.Context, id string) error
	// ReissueIdentityToken stores token as the identity's new enrolment token (ID, Kind,
	// SubjectID and CreatedAt assigned), revokes every earlier unused token of that identity
	// and sets the identity's TokenExpiresAt, in one transaction; ErrNotFound for an unknown
	// identity. Certificates issued earlier are not touched.
	ReissueIdentityToken(ctx context.Context, id string, token *Key) (*api.Identity, error)

	// Service policies.
	CreateServicePolicy(ctx context.Context, p *api.ServicePolicy) error
	GetServicePolicy(ctx context.Context, id string) (*api.ServicePolicy, error)
	ListServicePolicies(ctx context.Context) ([]api.ServicePolicy, error)
	UpdateServicePolicy(ctx context.Context, id string, fn func(*api.ServicePolicy) error) (*api.ServicePolicy, error)
	DeleteServicePolicy(ctx context.Context, id string) error

	// Subscribe delivers a Change after every committed write until ctx ends, then closes
	// the channel. It never blocks writers: a subscriber that falls behind receives a
	// Change with Collection == All and must re-read what it caches.
	Subscribe(ctx context.Context) <-chan Change

	Pager

	Close() error
}

// NewID returns a random 128-bit identifier in lower-case base32 (26 characters), usable in
// URLs, DNS labels and certificate URIs.
func NewID() string { return strings.ToLower(rand.Text()) }

// Now is the store's clock: UTC with microsecond precision, which every backend round-trips.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
