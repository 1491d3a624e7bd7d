package store

import (
	"slices"
	"time"

	"github.com/ztna/ztna/internal/api"
)

// What every backend does to an object before it stores it, in one place so that SQLite and
// PostgreSQL hand back the same values (storetest holds them to it).

// PrepareRouter sets what a new router starts with.
func PrepareRouter(r *api.Router) {
	r.Status = api.RouterUnenrolled
	r.Roles = NonNil(r.Roles)
	r.Services = NonNil(r.Services)
}

// Apply writes the reported fields of st into r; nil fields leave r as it is.
func (st RouterState) Apply(r *api.Router) {
	if st.Status != nil {
		r.Status = *st.Status
	}
	if st.LastSeen != nil {
		t := st.LastSeen.UTC().Truncate(time.Microsecond) // what every backend round-trips
		r.LastSeen = &t
	}
	if st.Version != nil {
		r.Version = *st.Version
	}
	if st.FailureDomain != nil {
		r.FailureDomain = *st.FailureDomain
	}
	if st.Health != nil {
		r.Services = NonNil(*st.Health)
	}
	if st.Attestation != nil {
		r.Attestation = st.Attestation
	}
}

// PrepareService drops what the API computes (per-router status) and normalises lists.
func PrepareService(v *api.Service) {
	v.PortRanges = NonNil(v.PortRanges)
	v.RouterRoles = NonNil(v.RouterRoles)
	v.RouterSummary = api.RouterSummary{} // computed by the API, never stored
}

// PrepareIdentity readies a new identity and its enrolment token; the token's secret and the
// identity's token string are never stored.
func PrepareIdentity(v *api.Identity, token *Key) {
	v.Roles = NonNil(v.Roles)
	v.Enrolled = false
	v.EnrollmentToken = ""
	token.Kind = api.KindIdentity
	PrepareKey(token)
	v.TokenExpiresAt, v.TokenTTLSeconds = token.ExpiresAt, token.TTLSeconds
}

// PrepareReissue readies an identity's replacement enrolment token and records its expiry on
// the identity.
func PrepareReissue(v *api.Identity, token *Key) {
	token.Kind = api.KindIdentity
	token.SubjectID = v.ID
	PrepareKey(token)
	v.TokenExpiresAt, v.TokenTTLSeconds = token.ExpiresAt, token.TTLSeconds
	v.UpdatedAt = Now()
}

// PreparePolicy normalises a service policy's lists.
func PreparePolicy(v *api.ServicePolicy) {
	v.IdentityRoles = NonNil(v.IdentityRoles)
	v.ServiceNames = NonNil(v.ServiceNames)
}

// PrepareKey assigns a new key's id and creation time.
func PrepareKey(k *Key) {
	k.ID = NewID()
	k.CreatedAt = Now()
	k.ExpiresAt = k.ExpiresAt.UTC().Truncate(time.Microsecond)
}

// NonNil makes empty lists encode as [] rather than null.
func NonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// SortedIDs returns the keys of a batch in order: backends write (and lock) rows in one order.
func SortedIDs[V any](batch map[string]V) []string {
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
