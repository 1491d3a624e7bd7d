package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// PinMismatchError reports that the server did not present the pinned CA: either something
// intercepts TLS on the way, or the address points at another controller.
type PinMismatchError struct {
	Pinned string // the fingerprint the client expects
	Got    string // the fingerprint of the top of the chain the server presented
}

func (e *PinMismatchError) Error() string {
	return fmt.Sprintf("TLS interception or wrong controller: the server's certificate chain does not contain the pinned CA %s (it ends in %s); check the address, and make sure no proxy or firewall inspects this connection", e.Pinned, e.Got)
}

// PeerKindError reports a peer whose certificate is from the right CA but names the wrong
// kind of entity (for example a router certificate presented by a "controller").
type PeerKindError struct {
	Kind, ID string
	Want     []string
}

func (e *PeerKindError) Error() string {
	return fmt.Sprintf("peer certificate names %s/%s, but only %v may serve or connect here", e.Kind, e.ID, e.Want)
}

// CertSlot holds the current certificate of a listener or client and lets it be replaced
// (renewal) without restarting anything: new handshakes use the new certificate.
type CertSlot struct {
	p atomic.Pointer[tls.Certificate]
}

// NewCertSlot returns a slot holding cert.
func NewCertSlot(cert *tls.Certificate) *CertSlot {
	s := &CertSlot{}
	s.Set(cert)
	return s
}

// Set replaces the certificate.
func (s *CertSlot) Set(cert *tls.Certificate) { s.p.Store(cert) }

// Get returns the current certificate.
func (s *CertSlot) Get() *tls.Certificate { return s.p.Load() }

// GetCertificate is a tls.Config.GetCertificate.
func (s *CertSlot) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.p.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no certificate configured")
}

// GetClientCertificate is a tls.Config.GetClientCertificate.
func (s *CertSlot) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c := s.p.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no client certificate configured")
}

// TLSCertificate pairs an issued chain with its private key.
func TLSCertificate(chainPEM []byte, key crypto.Signer) (*tls.Certificate, error) {
	certs, err := ParseChainPEM(chainPEM)
	if err != nil {
		return nil, err
	}
	if !PublicKeysEqual(key.Public(), certs[0].PublicKey) {
		return nil, errors.New("private key does not match the certificate")
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, x := range certs {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

// ServerConfig is the TLS configuration of a listener that does not ask for client
// certificates (the edge API: the bearer token or registration key authenticates).
func ServerConfig(slot *CertSlot) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: slot.GetCertificate}
}

// Authorizer decides whether a peer whose certificate verified may still connect (for
// example: is the router still present, or was it deleted). Nil allows every peer.
type Authorizer func(kind, id string) error

// MutualServerConfig is the TLS configuration of a listener that requires a client
// certificate issued by ca whose URI SAN kind is one of kinds, and that authorize accepts.
func MutualServerConfig(slot *CertSlot, ca *x509.Certificate, authorize Authorizer, kinds ...string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: slot.GetCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("client certificate required")
			}
			kind, id, err := checkKind(cs.PeerCertificates[0], kinds)
			if err != nil {
				return err
			}
			if authorize != nil {
				return authorize(kind, id)
			}
			return nil
		},
	}
}

// MutualClientConfig is the TLS configuration of an enrolled router or identity dialing a
// controller or hub: it presents the slot's certificate and accepts only servers whose
// chain verifies against ca and whose URI SAN kind is one of serverKinds. Host names are not
// checked: peers are authorised by their URI SAN, and routers reach controllers by many names.
func MutualClientConfig(slot *CertSlot, ca *x509.Certificate, serverKinds ...string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: slot.GetClientCertificate,
		InsecureSkipVerify:   true, // replaced by VerifyConnection below, which verifies the chain
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, _, err := verifyServer(cs, pool, serverKinds)
			return err
		},
	}
}

// PinnedClientConfig is the TLS configuration of a client that knows only the CA
// fingerprint (enrolment, Terraform, the CLI): the server must present a chain that contains
// the pinned CA, the leaf must verify against it and name one of serverKinds. A chain
// without the pinned CA fails with *PinMismatchError.
func PinnedClientConfig(fingerprint string, serverKinds ...string) (*tls.Config, error) {
	if err := ValidFingerprint(fingerprint); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection below, which pins the CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			certs := cs.PeerCertificates
			if len(certs) == 0 {
				return errors.New("server presented no certificate")
			}
			i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return Fingerprint(c.Raw) == fingerprint })
			if i < 0 {
				return &PinMismatchError{Pinned: fingerprint, Got: Fingerprint(certs[len(certs)-1].Raw)}
			}
			pool := x509.NewCertPool()
			pool.AddCert(certs[i])
			_, _, err := verifyServer(cs, pool, serverKinds)
			return err
		},
	}, nil
}

func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, kinds []string) (string, string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", "", errors.New("server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return "", "", fmt.Errorf("server certificate: %w", err)
	}
	return checkKind(leaf, kinds)
}

func checkKind(leaf *x509.Certificate, kinds []string) (string, string, error) {
	kind, id, err := Identity(leaf)
	if err != nil {
		return "", "", err
	}
	if len(kinds) > 0 && !slices.Contains(kinds, kind) {
		return "", "", &PeerKindError{Kind: kind, ID: id, Want: kinds}
	}
	return kind, id, nil
}
