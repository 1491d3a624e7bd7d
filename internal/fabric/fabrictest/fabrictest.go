// Package fabrictest issues certificates from a throw-away network CA for data-plane tests, the
// same way the controller does (internal/pki), so tests exercise real mutual TLS.
package fabrictest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// PKI is a test network CA.
type PKI struct {
	CA *pki.CA
	t  testing.TB
}

// New creates a CA for one test.
func New(t testing.TB) *PKI {
	t.Helper()
	ca, err := pki.NewCA("ztna test CA")
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{CA: ca, t: t}
}

// Cert issues a certificate naming ztna://kind/id, valid for an hour.
func (p *PKI) Cert(kind, id string) *tls.Certificate {
	return p.CertFor(kind, id, time.Hour)
}

// CertFor issues a certificate naming ztna://kind/id with the given lifetime.
func (p *PKI) CertFor(kind, id string, lifetime time.Duration) *tls.Certificate {
	p.t.Helper()
	iss, key, err := p.CA.IssueServer(kind, id, []string{"127.0.0.1"}, lifetime)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// Credentials returns fabric credentials for kind/id.
func (p *PKI) Credentials(kind, id string) fabric.Credentials {
	return fabric.Credentials{Cert: pki.NewCertSlot(p.Cert(kind, id)), CA: p.CA.Cert}
}

// Roots is a pool holding only the CA.
func (p *PKI) Roots() *x509.CertPool { return p.CA.Pool() }
