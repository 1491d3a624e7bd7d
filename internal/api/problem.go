package api

import (
	"fmt"
	"strings"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem types (the "type" member). Clients branch on these, not on the prose.
const (
	ProblemValidation   = "urn:ztna:problem:validation"
	ProblemMalformed    = "urn:ztna:problem:malformed-json"
	ProblemUnauthorized = "urn:ztna:problem:unauthorized"
	ProblemNotFound     = "urn:ztna:problem:not-found"
	ProblemConflict     = "urn:ztna:problem:conflict"
	ProblemInternal     = "urn:ztna:problem:internal"
	ProblemMethod       = "urn:ztna:problem:method-not-allowed"
	ProblemTooLarge     = "urn:ztna:problem:too-large"

	// Store failures: 503 with Retry-After (the database is unreachable or restarting; the
	// request was not applied and may be sent again) and 507 (its disk is full; retrying
	// will not help until an operator frees space).
	ProblemStoreUnavailable    = "urn:ztna:problem:store-unavailable"
	ProblemInsufficientStorage = "urn:ztna:problem:insufficient-storage"

	// Enrolment failures, one per reason, so the enrolling side can tell the operator what
	// to do (get a new key, fix the clock, ...).
	ProblemKeyMalformed = "urn:ztna:problem:key-malformed"
	ProblemKeyUnknown   = "urn:ztna:problem:key-unknown"
	ProblemKeyUsed      = "urn:ztna:problem:key-used"
	ProblemKeyExpired   = "urn:ztna:problem:key-expired"
	ProblemKeyRevoked   = "urn:ztna:problem:key-revoked"
	ProblemCSRInvalid   = "urn:ztna:problem:csr-invalid"
	// ProblemRouterEnrolled (409): the key is valid but its router is already enrolled, and
	// neither the key (allow_reenrollment) nor an operator reset allows enrolling it again.
	ProblemRouterEnrolled = "urn:ztna:problem:router-enrolled"

	// Renewal failures (POST /v1/renew): no client certificate, one this network did not issue
	// to an identity, one that expired (only a new enrolment helps), or a deleted identity.
	ProblemCertRequired    = "urn:ztna:problem:cert-required"
	ProblemCertInvalid     = "urn:ztna:problem:cert-invalid"
	ProblemCertExpired     = "urn:ztna:problem:cert-expired"
	ProblemIdentityDeleted = "urn:ztna:problem:identity-deleted"
)

// ReenrolHint says how an identity whose certificate expired gets a new one: a reissued
// enrolment token enrols it again under the same id.
const ReenrolHint = "enrol again with a new enrolment token (reissue one for the same identity: change token_keepers of its ztna_identity and terraform apply, or POST /v1/identities/ID/enrollment-token), then run ztna identity enroll --token-file TOKEN --out FILE --force"

// Problem is an RFC 9457 problem details object with the ztna extension Errors, which names
// every bad field of a request.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// Error makes a Problem usable as an error; the text names the bad fields.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Title)
	if p.Detail != "" {
		b.WriteString(": ")
		b.WriteString(p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "; %s: %s", e.Field, e.Detail)
	}
	return b.String()
}

// FieldError names one bad field of a request (a JSON path such as "roles[1]") and says
// what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// FieldErrors collects the validation errors of one request.
type FieldErrors []FieldError

// Add records a failed check; a nil err is ignored so checks can be chained.
func (fe *FieldErrors) Add(field string, err error) {
	if err != nil {
		*fe = append(*fe, FieldError{Field: field, Detail: err.Error()})
	}
}

// Err returns nil when no field failed, else the errors as one error.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Field + ": " + e.Detail
	}
	return strings.Join(parts, "; ")
}
