// Package issuer issues the certificates of enrolled routers and identities — at enrolment
// and on renewal over the control channel — and answers whether a certificate's subject
// still exists, so that deleting a router or identity cuts it off.
package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// ErrBadCSR wraps every reason a CSR is refused.
var ErrBadCSR = errors.New("bad certificate signing request")

// ErrSubjectGone is returned for a router or identity that no longer exists.
var ErrSubjectGone = errors.New("no longer exists")

// Issuer signs certificates for routers and identities with the network CA.
type Issuer struct {
	CA       *pki.CA
	Lifetime time.Duration // of router and identity certificates
	Store    store.Store
}

// ParseCSR checks a PEM CSR; errors wrap ErrBadCSR.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// Issue issues a certificate for kind/id from a PEM CSR after checking that the subject
// still exists.
func (i *Issuer) Issue(ctx context.Context, kind, id string, csrPEM []byte) (*pki.Issued, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	return i.IssueParsed(ctx, kind, id, csr)
}

// IssueParsed is Issue for an already checked CSR.
func (i *Issuer) IssueParsed(ctx context.Context, kind, id string, csr *x509.CertificateRequest) (*pki.Issued, error) {
	if err := i.exists(ctx, kind, id); err != nil {
		return nil, err
	}
	return i.CA.IssueFromCSR(csr, kind, id, i.Lifetime)
}

// Authorize is a pki.Authorizer: it accepts a router or identity certificate only while its
// subject exists (a deleted router's certificate stops working at once).
func (i *Issuer) Authorize(kind, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return i.exists(ctx, kind, id)
}

func (i *Issuer) exists(ctx context.Context, kind, id string) error {
	var err error
	switch kind {
	case api.KindRouter:
		_, err = i.Store.GetRouter(ctx, id)
	case api.KindIdentity:
		_, err = i.Store.GetIdentity(ctx, id)
	default:
		return fmt.Errorf("certificates of kind %q are not issued from CSRs", kind)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s %s %w: its certificate is no longer accepted", kind, id, ErrSubjectGone)
	}
	return err
}
