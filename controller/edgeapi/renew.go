package edgeapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// TLSConfig is the edge listener's TLS configuration. It asks for a client certificate but does
// not require or verify one in the handshake: the management API and enrolment do not use
// it, and POST /v1/renew verifies it itself so that a refusal can say why (expired, deleted
// identity, ...) instead of failing the handshake with a bare alert. The handshake still
// proves that the client holds the certificate's private key.
func TLSConfig(slot *pki.CertSlot) *tls.Config {
	cfg := pki.ServerConfig(slot)
	cfg.ClientAuth = tls.RequestClientCert
	return cfg
}

// renew issues a fresh certificate to an identity that proves, with mutual TLS, that it holds
// a current certificate of this network, for the key of the CSR it sends (a new one: the
// identity rotates its key with every renewal). Routers renew over the control channel.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	rec := &problemRecorder{ResponseWriter: w}
	s.renewInner(rec, r)
	s.metrics.renewal(rec.problemType)
}

func (s *Server) renewInner(w *problemRecorder, r *http.Request) {
	ctx := r.Context()
	id, p := s.renewingIdentity(r, time.Now())
	if p != nil {
		s.log.InfoContext(ctx, "renewal refused", "reason", p.Type, "identity_id", id, "remote", r.RemoteAddr)
		writeProblem(w, p)
		return
	}
	if p, err := s.supersededBy(r, id); err != nil {
		s.fail(w, r, err)
		return
	} else if p != nil {
		s.log.InfoContext(ctx, "renewal refused", "reason", "superseded", "identity_id", id, "remote", r.RemoteAddr)
		writeProblem(w, p)
		return
	}
	var req api.RenewRequest
	if p := decode(w, r, &req); p != nil {
		writeProblem(w, p)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	csr, err := issuer.ParseCSR([]byte(req.CSR))
	if err != nil {
		writeProblem(w, csrProblem(err))
		return
	}
	issued, err := s.issuer.IssueParsed(ctx, api.KindIdentity, id, csr)
	if errors.Is(err, issuer.ErrSubjectGone) {
		s.log.InfoContext(ctx, "renewal refused", "reason", api.ProblemIdentityDeleted, "identity_id", id, "remote", r.RemoteAddr)
		writeProblem(w, identityDeleted(id))
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	cfg, err := s.enrolledConfig(ctx, api.KindIdentity, id)
	if err != nil { // deleted since the certificate was issued: it is useless anyway
		s.fail(w, r, err)
		return
	}
	cfg.CertExpiresAt = issued.Cert.NotAfter
	s.log.InfoContext(ctx, "identity certificate renewed", "identity_id", id, "serial", issued.Cert.SerialNumber.Text(16), "cert_expires_at", issued.Cert.NotAfter)
	writeJSON(w, http.StatusOK, api.EnrollResponse{Certificate: string(issued.ChainPEM), CA: string(s.issuer.CA.CertPEM), Config: *cfg})
}

// renewingIdentity returns the id of the identity whose certificate the client presented in
// the TLS handshake, or the problem that refuses it: none presented, not from this network's
// CA, not an identity's, expired or not yet valid. The identity's existence is checked when
// the certificate is issued.
func (s *Server) renewingIdentity(r *http.Request, now time.Time) (string, *api.Problem) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", &api.Problem{Type: api.ProblemCertRequired, Title: "Client certificate required", Status: http.StatusUnauthorized,
			Detail: "renewal needs the identity's current certificate, presented with mutual TLS (ztna identity renew --identity FILE does this)"}
	}
	leaf := r.TLS.PeerCertificates[0]
	invalid := func(detail string) *api.Problem {
		return &api.Problem{Type: api.ProblemCertInvalid, Title: "Certificate not accepted for renewal", Status: http.StatusUnauthorized, Detail: detail}
	}
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	// The chain is checked as of the certificate's last valid moment, so that an expired
	// certificate of this network is told apart from a foreign one and gets its own answer.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.issuer.CA.Pool(), Intermediates: inter,
		CurrentTime: leaf.NotAfter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", invalid("the certificate was not issued by this network's CA (" + err.Error() + "); check the identity file and the controller address")
	}
	kind, id, err := pki.Identity(leaf)
	if err != nil {
		return "", invalid(err.Error())
	}
	if kind != api.KindIdentity {
		return id, invalid(fmt.Sprintf("this endpoint renews identity certificates; the certificate names a %s (routers renew over the control channel)", kind))
	}
	if now.After(leaf.NotAfter) {
		return id, &api.Problem{Type: api.ProblemCertExpired, Title: "Certificate expired", Status: http.StatusUnauthorized,
			Detail: fmt.Sprintf("the certificate of identity %s expired at %s and cannot be renewed: %s", id, leaf.NotAfter.UTC().Format(time.RFC3339), api.ReenrolHint)}
	}
	if now.Before(leaf.NotBefore) {
		return id, invalid(fmt.Sprintf("the certificate is valid only from %s; check this host's and the controller's clocks", leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	return id, nil
}

// supersededBy refuses a certificate issued before the identity's latest enrolment: after an
// enrolment token is reissued and used (say, because a host or its key was lost), certificates
// from the earlier enrolment expire rather than renew (pki.Superseded).
func (s *Server) supersededBy(r *http.Request, id string) (*api.Problem, error) {
	enrolled, err := store.LatestEnrolments(r.Context(), s.store, api.KindIdentity)
	if err != nil {
		return nil, err
	}
	leaf, latest := r.TLS.PeerCertificates[0], enrolled[id]
	if !pki.Superseded(pki.IssuedAt(leaf), latest) {
		return nil, nil
	}
	return &api.Problem{Type: api.ProblemCertInvalid, Title: "Certificate superseded", Status: http.StatusUnauthorized,
		Detail: fmt.Sprintf("this certificate of identity %s was issued at %s, before the identity was enrolled again at %s; use the identity file of the newer enrolment",
			id, pki.IssuedAt(leaf).UTC().Format(time.RFC3339), latest.UTC().Format(time.RFC3339))}, nil
}

func identityDeleted(id string) *api.Problem {
	return &api.Problem{Type: api.ProblemIdentityDeleted, Title: "Identity deleted", Status: http.StatusForbidden,
		Detail: fmt.Sprintf("identity %s was deleted; its certificate is no longer renewed (create a new identity and enrol it)", id)}
}
