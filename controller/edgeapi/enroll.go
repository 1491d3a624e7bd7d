package edgeapi

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/regkey"
)

func enrollProblem(status int, typ, title, detail string) *api.Problem {
	return &api.Problem{Type: typ, Title: title, Status: status, Detail: detail}
}

// enroll exchanges a registration key (or enrolment token) and a CSR for a certificate.
// Everything that can be checked without writing — key format, secret, state, CSR — is
// checked first, so a refused request changes nothing; the key is then consumed in one
// transaction, of which exactly one concurrent request wins. The key is consumed before the
// certificate is issued and the reply sent, so a reply can be lost after the key is used: a
// retry with the same public key within store.EnrolmentRetryWindow is that same enrolment and
// gets a certificate again; any other public key is refused as key-used.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	rec := &problemRecorder{ResponseWriter: w}
	s.enrollInner(rec, r)
	s.metrics.enrolment(rec.problemType)
}

// problemRecorder remembers the problem type an enrolment failed with, for metrics.
type problemRecorder struct {
	http.ResponseWriter
	problemType string
}

func (s *Server) enrollInner(w *problemRecorder, r *http.Request) {
	ctx := r.Context()
	var req api.EnrollRequest
	if p := decode(w, r, &req); p != nil {
		writeProblem(w, p)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := regkey.Parse(req.Key)
	if err != nil {
		writeProblem(w, enrollProblem(http.StatusBadRequest, api.ProblemKeyMalformed, "Malformed registration key", err.Error()))
		return
	}
	unknown := enrollProblem(http.StatusUnauthorized, api.ProblemKeyUnknown, "Unknown registration key",
		"this controller does not know this key (wrong controller, or the key or its router was deleted); create a new key")
	stored, err := s.store.GetKey(ctx, key.ID)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, unknown)
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	// A wrong secret looks exactly like an unknown key, so ids cannot be probed.
	if !regkey.Matches(stored.SecretHash, key.Secret) || stored.Kind != key.Kind {
		s.log.WarnContext(ctx, "enrolment with a wrong secret", "key_id", key.ID, "remote", r.RemoteAddr)
		writeProblem(w, unknown)
		return
	}
	csr, err := issuer.ParseCSR([]byte(req.CSR))
	if err != nil {
		writeProblem(w, csrProblem(err))
		return
	}
	usedBy, err := publicKeyHash(csr.PublicKey)
	if err != nil {
		writeProblem(w, csrProblem(err))
		return
	}
	now := time.Now()
	retry := stored.RetryOf(usedBy, now)
	if p := keyStateProblem(stored.Kind, stored.State(now)); p != nil && !retry {
		s.log.InfoContext(ctx, "enrolment refused", "key_id", key.ID, "reason", p.Type)
		writeProblem(w, p)
		return
	}
	consumed, err := s.store.ConsumeKey(ctx, stored.ID, now, usedBy)
	if err != nil {
		if errors.Is(err, store.ErrRouterEnrolled) {
			p := s.routerEnrolledProblem(ctx, stored.SubjectID)
			s.log.WarnContext(ctx, "enrolment refused: the router is enrolled and the key may not re-enrol it", "key_id", key.ID, "router_id", stored.SubjectID, "remote", r.RemoteAddr)
			writeProblem(w, p)
			return
		}
		if p := keyErrorProblem(stored.Kind, err); p != nil {
			s.log.InfoContext(ctx, "enrolment refused", "key_id", key.ID, "reason", p.Type)
			writeProblem(w, p)
			return
		}
		if errors.Is(err, store.ErrNotFound) {
			writeProblem(w, unknown)
			return
		}
		s.fail(w, r, err)
		return
	}
	issued, err := s.issuer.IssueParsed(ctx, consumed.Kind, consumed.SubjectID, csr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cfg, err := s.enrolledConfig(ctx, consumed.Kind, consumed.SubjectID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cfg.CertExpiresAt = issued.Cert.NotAfter
	msg := "enrolled"
	if retry {
		msg = "enrolment retried: the reply to its first attempt was lost; certificate issued again for the same key"
	}
	s.log.InfoContext(ctx, msg, "kind", consumed.Kind, "id", consumed.SubjectID, "key_id", consumed.ID, "cert_expires_at", issued.Cert.NotAfter)
	writeJSON(w, http.StatusOK, api.EnrollResponse{Certificate: string(issued.ChainPEM), CA: string(s.issuer.CA.CertPEM), Config: *cfg})
}

// enrolledConfig is the configuration handed to an enrolled (or renewed) router or identity.
func (s *Server) enrolledConfig(ctx context.Context, kind, subjectID string) (*api.EnrolledConfig, error) {
	cfg := &api.EnrolledConfig{ID: subjectID, Kind: kind, Edge: s.endpoints.Edge, Control: nonEmpty(s.endpoints.Control),
		Fabric: nonEmpty(s.endpoints.Fabric), CAFingerprint: s.issuer.CA.Fingerprint()}
	switch kind {
	case api.KindRouter:
		rt, err := s.store.GetRouter(ctx, subjectID)
		if err != nil {
			return nil, err
		}
		cfg.Name, cfg.Roles = rt.Name, rt.Roles
	case api.KindIdentity:
		id, err := s.store.GetIdentity(ctx, subjectID)
		if err != nil {
			return nil, err
		}
		cfg.Name, cfg.Roles = id.Name, id.Roles
	}
	return cfg, nil
}

// routerEnrolledProblem explains a key refused because its router is enrolled
// (store.ErrRouterEnrolled), and the two ways to enrol it again.
func (s *Server) routerEnrolledProblem(ctx context.Context, routerID string) *api.Problem {
	name := routerID
	if rt, err := s.store.GetRouter(ctx, routerID); err == nil {
		name = fmt.Sprintf("%s (%s)", rt.Name, routerID)
	}
	return enrollProblem(http.StatusConflict, api.ProblemRouterEnrolled, "Router already enrolled",
		"router "+name+" is already enrolled and this registration key was not created to enrol it again: doing so would cut off the running router. "+
			"The key is still unused. To move the router to a new host, create its key with allow_reenrollment = true (ztna_registration_key, "+
			"or API \"allow_reenrollment\": true), or have an operator reset the router's enrolment (POST /v1/routers/"+routerID+"/reset-enrollment), then enrol again")
}

// publicKeyHash is the SHA-256 of a public key's PKIX DER: what store.Key.UsedBy records.
func publicKeyHash(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key of the CSR: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

func csrProblem(err error) *api.Problem {
	return &api.Problem{Type: api.ProblemCSRInvalid, Title: "Invalid certificate signing request", Status: http.StatusBadRequest,
		Detail: err.Error(), Errors: []api.FieldError{{Field: "csr", Detail: err.Error()}}}
}

// keyStateProblem explains a refused key in the terms of its kind: a router gets a new
// registration key, an identity a reissued enrolment token.
func keyStateProblem(kind, state string) *api.Problem {
	remedy := "create a new key for this router"
	if kind == api.KindIdentity {
		remedy = "reissue the identity's enrolment token (POST /v1/identities/{id}/enrollment-token, or change token_keepers of its ztna_identity)"
	}
	switch state {
	case api.KeyUsed:
		return enrollProblem(http.StatusConflict, api.ProblemKeyUsed, "Registration key already used",
			"this registration key was already used; keys work once: "+remedy)
	case api.KeyExpired:
		return enrollProblem(http.StatusGone, api.ProblemKeyExpired, "Registration key expired",
			"this registration key expired before it was used; "+remedy+" (a ttl sets how long it lives)")
	case api.KeyRevoked:
		return enrollProblem(http.StatusForbidden, api.ProblemKeyRevoked, "Registration key revoked",
			"this registration key was revoked (for an identity: a newer token was issued); "+remedy)
	}
	return nil
}

func keyErrorProblem(kind string, err error) *api.Problem {
	switch {
	case errors.Is(err, store.ErrKeyUsed):
		return keyStateProblem(kind, api.KeyUsed)
	case errors.Is(err, store.ErrKeyExpired):
		return keyStateProblem(kind, api.KeyExpired)
	case errors.Is(err, store.ErrKeyRevoked):
		return keyStateProblem(kind, api.KeyRevoked)
	}
	return nil
}

func nonEmpty(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
