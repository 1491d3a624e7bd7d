// Package pki is the ztna public key infrastructure: the network CA (ECDSA P-256), issuing
// short-lived certificates from CSRs with one URI SAN ztna://<kind>/<id>, CA fingerprints,
// and the TLS configurations every plane uses (server, mutual TLS that authorises the peer's
// kind, and a client pinned to the CA fingerprint).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/atomicfile"
)

// URIScheme is the scheme of the URI SAN that names a certificate's kind and id.
const URIScheme = "ztna"

// DefaultCertLifetime is the lifetime of router and identity certificates unless configured.
const DefaultCertLifetime = 24 * time.Hour

// caLifetime is long because rotating the network CA means re-enrolling every router.
const caLifetime = 10 * 365 * 24 * time.Hour

// clockSkew backdates NotBefore so a peer whose clock is slightly behind accepts new certs.
const clockSkew = time.Minute

// IssuedAt is when a certificate of this package was issued (to the second: NotBefore is
// backdated by a fixed skew).
func IssuedAt(c *x509.Certificate) time.Time { return c.NotBefore.Add(clockSkew) }

// Superseded reports whether a certificate issued at issued (IssuedAt) came before its subject's latest enrolment at
// enrolledAt (zero: no enrolment recorded): such a certificate belongs to an earlier
// enrolment (a lost host, a leaked key) and is refused wherever the subject authenticates.
// An enrolment is recorded before its certificate is issued, so the enrolment's own
// certificate and its renewals pass; the second of slack covers certificate times being
// whole seconds.
func Superseded(issued, enrolledAt time.Time) bool {
	return !enrolledAt.IsZero() && issued.Add(time.Second).Before(enrolledAt)
}

// CA is the network certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// Fingerprint returns "sha256:<hex>" of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ValidFingerprint checks the "sha256:<64 hex>" form, so typos fail before any dial.
func ValidFingerprint(fp string) error {
	h, ok := strings.CutPrefix(fp, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return fmt.Errorf("CA fingerprint %q must look like sha256:<64 lower-case hex digits>", fp)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("CA fingerprint %q must look like sha256:<64 lower-case hex digits>", fp)
	}
	return nil
}

// Fingerprint returns the CA certificate's fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert.Raw) }

// NewCA creates a CA with a fresh ECDSA P-256 key.
func NewCA(commonName string) (*CA, error) {
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"ztna"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: EncodeCert(der), key: key}, nil
}

// CA file names inside a CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// LoadOrCreateCA loads the CA from dir (ca.pem, ca-key.pem) or creates and saves a new one.
// created reports which happened. The key file is written 0600 and refused when it is
// readable by group or others.
func LoadOrCreateCA(dir, commonName string) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		ca, err := LoadCA(certPath, keyPath)
		return ca, false, err
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	ca, err = NewCA(commonName)
	if err != nil {
		return nil, false, err
	}
	keyPEM, err := EncodeKey(ca.key)
	if err != nil {
		return nil, false, err
	}
	// Key first: a crash in between leaves no certificate, so the next start recreates both.
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := atomicfile.Write(certPath, ca.CertPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// LoadCA reads a CA certificate and its key from PEM files.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s has mode %v: it must be readable by its owner only (chmod 600)", keyPath, fi.Mode().Perm())
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s, %s: %w", certPath, keyPath, err)
	}
	return ca, nil
}

// ParseCA builds a CA from its PEM certificate and private key (replicated controllers keep
// them in their shared database), checking that the key belongs to the certificate.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("the CA certificate is not a CA")
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !PublicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("the CA key does not belong to the CA certificate")
	}
	return &CA{Cert: cert, CertPEM: EncodeCert(cert.Raw), key: key}, nil
}

// KeyPEM returns the CA's private key as PKCS#8 PEM, for storing it sealed.
func (ca *CA) KeyPEM() ([]byte, error) { return EncodeKey(ca.key) }

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// URI returns the URI SAN naming kind and id: ztna://<kind>/<id>.
func URI(kind, id string) *url.URL {
	return &url.URL{Scheme: URIScheme, Host: kind, Path: "/" + id}
}

// Identity returns the kind and id named by a certificate's single ztna URI SAN.
func Identity(cert *x509.Certificate) (kind, id string, err error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == URIScheme {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return "", "", fmt.Errorf("certificate must carry exactly one %s:// URI SAN, has %d", URIScheme, len(found))
	}
	u := found[0]
	id = strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || id == "" || strings.Contains(id, "/") {
		return "", "", fmt.Errorf("malformed identity URI %q", u)
	}
	return u.Host, id, nil
}

// ParseCSR decodes and checks a PEM certificate signing request: its self-signature must
// verify and its key must be ECDSA (P-256/P-384), Ed25519 or RSA of at least 2048 bits.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("not a PEM \"CERTIFICATE REQUEST\" block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature does not verify: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, errors.New("CSR key must be ECDSA P-256 or P-384")
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("CSR RSA key has %d bits, needs at least 2048", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("CSR key type %T is not accepted", csr.PublicKey)
	}
	return csr, nil
}

// Issued is a certificate issued by the CA.
type Issued struct {
	Cert     *x509.Certificate
	ChainPEM []byte // leaf then CA
}

// IssueFromCSR signs the CSR's public key into a client+server certificate for kind/id.
// Only the key is taken from the CSR; subject and SANs are the CA's decision.
func (ca *CA) IssueFromCSR(csr *x509.CertificateRequest, kind, id string, lifetime time.Duration) (*Issued, error) {
	return ca.issue(csr.PublicKey, kind, id, nil, lifetime)
}

// IssueServer generates a key pair and issues a certificate for one of the controller's
// own listeners (kind controller or hub) with DNS/IP SANs for hosts.
func (ca *CA) IssueServer(kind, name string, hosts []string, lifetime time.Duration) (*Issued, crypto.Signer, error) {
	key, err := GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	iss, err := ca.issue(key.Public(), kind, name, hosts, lifetime)
	return iss, key, err
}

func (ca *CA) issue(pub crypto.PublicKey, kind, id string, hosts []string, lifetime time.Duration) (*Issued, error) {
	if lifetime <= 0 {
		return nil, fmt.Errorf("certificate lifetime must be positive, got %v", lifetime)
	}
	now := time.Now()
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: kind + "/" + id, Organization: []string{"ztna"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		URIs:         []*url.URL{URI(kind, id)},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s/%s: %w", kind, id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	chain := append(EncodeCert(der), ca.CertPEM...)
	return &Issued{Cert: cert, ChainPEM: chain}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

// PublicKeysEqual reports whether a and b are the same public key.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}
