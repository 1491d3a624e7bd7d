package edgeapi_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
)

// identity creates and enrols an identity and returns its identity file as loaded.
func (e *env) identity(t *testing.T, name string) *enroll.IdentityFile {
	t.Helper()
	ctx := context.Background()
	id, err := e.client.CreateIdentity(ctx, api.IdentityCreate{Name: name, Roles: []string{"apps"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".identity")
	if _, err := enroll.Identity(ctx, id.EnrollmentToken, path, false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// certFor issues a certificate of kind/id from ca with the given lifetime and a fresh key.
func certFor(t *testing.T, ca *pki.CA, kind, id string, lifetime time.Duration) *tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := pki.NewCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueFromCSR(csr, kind, id, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// renewWith posts a renewal presenting cert (none when nil) with body csr.
func (e *env) renewWith(t *testing.T, cert *tls.Certificate, csr string) (*api.EnrollResponse, error) {
	t.Helper()
	opts := []apiclient.Option{apiclient.WithTimeout(5 * time.Second)}
	if cert != nil {
		opts = append(opts, apiclient.WithClientCertificate(pki.NewCertSlot(cert)))
	}
	c, err := apiclient.New(e.url, "", e.c.CA.Fingerprint(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	return c.Renew(context.Background(), api.RenewRequest{CSR: csr})
}

func newCSR(t *testing.T) string {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "anything: the CA decides")
	if err != nil {
		t.Fatal(err)
	}
	return string(csr)
}

func TestRenewIssuesForTheNewKey(t *testing.T) {
	e := start(t)
	f := e.identity(t, "runtime")
	cur, err := f.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateKey()
	csr, _ := pki.NewCSR(key, "whatever")
	resp, err := e.renewWith(t, cur, string(csr))
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := pki.TLSCertificate([]byte(resp.Certificate), key)
	if err != nil {
		t.Fatalf("the renewed certificate is not for the CSR's key: %v", err)
	}
	if err := renewed.Leaf.CheckSignatureFrom(e.c.CA.Cert); err != nil {
		t.Fatal(err)
	}
	if kind, id, _ := pki.Identity(renewed.Leaf); kind != api.KindIdentity || id != f.Config.ID {
		t.Fatalf("renewed certificate names %s/%s, want identity/%s", kind, id, f.Config.ID)
	}
	if renewed.Leaf.SerialNumber.Cmp(cur.Leaf.SerialNumber) == 0 || renewed.Leaf.NotAfter.Before(cur.Leaf.NotAfter) {
		t.Fatal("renewal returned the old certificate")
	}
	c := resp.Config
	if c.ID != f.Config.ID || c.Name != "runtime" || c.Kind != api.KindIdentity || strings.Join(c.Roles, ",") != "apps" ||
		c.CAFingerprint != e.c.CA.Fingerprint() || len(c.Fabric) != 1 || len(c.Edge) != 1 || !c.CertExpiresAt.Equal(renewed.Leaf.NotAfter) {
		t.Fatalf("config: %+v", c)
	}
	// The renewed certificate renews in turn.
	if _, err := e.renewWith(t, renewed, string(csr)); err != nil {
		t.Fatalf("renewing with the renewed certificate: %v", err)
	}
}

// TestRenewRefusals: every certificate that must not be renewed is refused with its own
// problem type and a detail saying what to do; none of them gets a certificate.
func TestRenewRefusals(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	live := e.identity(t, "live")
	liveCert, _ := live.TLSCertificate()
	deleted := e.identity(t, "deleted")
	deletedCert, _ := deleted.TLSCertificate()
	if err := e.client.DeleteIdentity(ctx, deleted.Config.ID); err != nil {
		t.Fatal(err)
	}
	expired := certFor(t, e.c.CA, api.KindIdentity, live.Config.ID, time.Nanosecond)
	otherCA, _ := pki.NewCA("someone else")
	r := e.router(t, "edge-1")

	for _, tc := range []struct {
		name    string
		cert    *tls.Certificate
		csr     string
		status  int
		problem string
		says    string
	}{
		{"no client certificate", nil, newCSR(t), http.StatusUnauthorized, api.ProblemCertRequired, "mutual TLS"},
		{"certificate of another CA", certFor(t, otherCA, api.KindIdentity, live.Config.ID, time.Hour), newCSR(t), http.StatusUnauthorized, api.ProblemCertInvalid, "not issued by this network's CA"},
		{"router certificate", certFor(t, e.c.CA, api.KindRouter, r.ID, time.Hour), newCSR(t), http.StatusUnauthorized, api.ProblemCertInvalid, "routers renew over the control channel"},
		{"expired certificate", expired, newCSR(t), http.StatusUnauthorized, api.ProblemCertExpired, "enrol again with a new enrolment token"},
		{"deleted identity", deletedCert, newCSR(t), http.StatusForbidden, api.ProblemIdentityDeleted, "was deleted"},
		{"bad CSR", liveCert, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", http.StatusBadRequest, api.ProblemCSRInvalid, "CSR"},
		{"no CSR", liveCert, "", http.StatusBadRequest, api.ProblemValidation, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.renewWith(t, tc.cert, tc.csr)
			var apiErr *apiclient.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Problem.Type != tc.problem {
				t.Fatalf("err = %v, want %d %s", err, tc.status, tc.problem)
			}
			if !strings.Contains(apiErr.Problem.Error(), tc.says) {
				t.Fatalf("problem %q does not say %q", apiErr.Problem.Error(), tc.says)
			}
		})
	}
	// The live identity still renews: refusals are about the certificate presented, not the
	// identity it names.
	if _, err := e.renewWith(t, liveCert, newCSR(t)); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP ztna_controller_identity_renewals_total Identity certificate renewals by outcome (ok, or the problem type such as cert-expired).
# TYPE ztna_controller_identity_renewals_total counter
ztna_controller_identity_renewals_total{outcome="cert-expired"} 1
ztna_controller_identity_renewals_total{outcome="cert-invalid"} 2
ztna_controller_identity_renewals_total{outcome="cert-required"} 1
ztna_controller_identity_renewals_total{outcome="csr-invalid"} 1
ztna_controller_identity_renewals_total{outcome="identity-deleted"} 1
ztna_controller_identity_renewals_total{outcome="ok"} 1
ztna_controller_identity_renewals_total{outcome="validation"} 1
`
	if err := testutil.GatherAndCompare(e.c.Registry, strings.NewReader(want), "ztna_controller_identity_renewals_total"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.logs.String(), "PRIVATE KEY") {
		t.Fatal("a private key was logged")
	}
}

// After an identity's enrolment token is reissued and used, certificates of the earlier
// enrolment (and their renewals) are refused, while the new enrolment's renew.
func TestRenewRefusesCertificatesOfAnEarlierEnrolment(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	old := e.identity(t, "runtime")
	oldCert, err := old.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.renewWith(t, oldCert, newCSR(t)); err != nil {
		t.Fatalf("renewal before the re-enrolment: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // certificate times are whole seconds
	re, err := e.client.ReissueIdentityToken(ctx, old.Config.ID, api.IdentityTokenReissue{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "again.identity")
	if _, err := enroll.Identity(ctx, re.EnrollmentToken, path, false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.renewWith(t, oldCert, newCSR(t))
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Problem.Type != api.ProblemCertInvalid ||
		!strings.Contains(apiErr.Problem.Error(), "enrolled again") {
		t.Fatalf("renewal with a certificate of the earlier enrolment: %v", err)
	}
	again, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	newCert, err := again.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.renewWith(t, newCert, newCSR(t)); err != nil {
		t.Fatalf("renewal with the new enrolment's certificate: %v", err)
	}
}
