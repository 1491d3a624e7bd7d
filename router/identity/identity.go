// Package identity is an enrolled router's identity on disk and in memory: its private key,
// certificate chain, pinned CA and enrolled config (the state directory internal/enroll writes),
// the TLS configuration that presents it, and the installation of renewed certificates.
package identity

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
)

// Files of the state directory, as internal/enroll writes them.
const (
	KeyFile    = enroll.KeyFile
	CertFile   = enroll.CertFile
	CAFile     = enroll.CAFile
	ConfigFile = enroll.ConfigFile
)

// DefaultDir is the router's state directory unless --state-dir says otherwise.
const DefaultDir = "/var/lib/ztna-router"

// ErrNotEnrolled means the state directory holds no enrolled router.
var ErrNotEnrolled = errors.New("router is not enrolled")

// Identity is a loaded router identity. Its certificate can be replaced while it is in use.
type Identity struct {
	Dir    string
	Config api.EnrolledConfig
	CA     *x509.Certificate

	key  crypto.Signer
	slot *pki.CertSlot

	mu         sync.Mutex // serialises Install
	receivedAt time.Time  // when the current certificate was loaded or installed
}

// Load reads and cross-checks the state directory: the key must be private to its owner, the
// CA must match the pinned fingerprint, and the certificate must verify against the CA, belong
// to the key and name this router.
func Load(dir string) (*Identity, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; run `ztna-router enroll --key KEY --state-dir %s` first", ErrNotEnrolled, dir, ConfigFile, dir)
	}
	if err != nil {
		return nil, err
	}
	var cfg api.EnrolledConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if cfg.Kind != api.KindRouter || cfg.ID == "" {
		return nil, fmt.Errorf("%s does not describe an enrolled router (kind %q, id %q)", filepath.Join(dir, ConfigFile), cfg.Kind, cfg.ID)
	}
	if len(cfg.Control) == 0 {
		return nil, fmt.Errorf("%s lists no control endpoint; re-enrol with a new registration key", filepath.Join(dir, ConfigFile))
	}

	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAFile), err)
	}
	if fp := pki.Fingerprint(ca.Raw); fp != cfg.CAFingerprint {
		return nil, fmt.Errorf("%s has fingerprint %s but the router was enrolled with CA %s; the state directory was tampered with or mixed up, re-enrol", filepath.Join(dir, CAFile), fp, cfg.CAFingerprint)
	}

	keyPath := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %v: the router's private key must be readable by its owner only (chmod 600 %s)", keyPath, fi.Mode().Perm(), keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}

	id := &Identity{Dir: dir, Config: cfg, CA: ca, key: key}
	chainPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, err
	}
	cert, err := id.check(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CertFile), err)
	}
	id.slot = pki.NewCertSlot(cert)
	id.receivedAt = time.Now()
	return id, nil
}

// check verifies a chain for this router and pairs it with the key. Expiry is not checked here:
// an expired certificate is reported when it is used, with advice.
func (id *Identity) check(chainPEM []byte) (*tls.Certificate, error) {
	cert, err := pki.TLSCertificate(chainPEM, id.key)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(id.CA)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.Leaf.NotBefore,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("certificate is not from the router's CA: %w", err)
	}
	kind, rid, err := pki.Identity(cert.Leaf)
	if err != nil {
		return nil, err
	}
	if kind != api.KindRouter || rid != id.Config.ID {
		return nil, fmt.Errorf("certificate names %s/%s, not router/%s", kind, rid, id.Config.ID)
	}
	return cert, nil
}

// ID is the router's id.
func (id *Identity) ID() string { return id.Config.ID }

// Slot holds the current certificate; TLS configs built on it pick up renewals.
func (id *Identity) Slot() *pki.CertSlot { return id.slot }

// Leaf is the current certificate.
func (id *Identity) Leaf() *x509.Certificate { return id.slot.Get().Leaf }

// ControlTLS is the TLS configuration for the control channel: mutual, CA-pinned, and the
// server must be a controller.
func (id *Identity) ControlTLS() *tls.Config {
	cfg := pki.MutualClientConfig(id.slot, id.CA, api.KindController)
	cfg.NextProtos = []string{control.ALPN}
	return cfg
}

// RenewAt is when the current certificate should be renewed: once two thirds of the validity
// it had left when the router got it have passed. Measuring from receipt rather than NotBefore
// keeps renewal sane when the CA backdates NotBefore for clock skew.
func (id *Identity) RenewAt() time.Time {
	id.mu.Lock()
	received := id.receivedAt
	id.mu.Unlock()
	left := id.Leaf().NotAfter.Sub(received)
	return received.Add(left * 2 / 3)
}

// CSR returns a certificate signing request for the router's key (the key stays; only the
// certificate is renewed, so the state directory is always one consistent key/cert pair).
func (id *Identity) CSR() ([]byte, error) {
	return pki.NewCSR(id.key, api.KindRouter+"/"+id.Config.ID)
}

// Install checks a renewed chain, writes it atomically and switches new handshakes to it.
func (id *Identity) Install(chainPEM []byte) error {
	cert, err := id.check(chainPEM)
	if err != nil {
		return fmt.Errorf("renewed certificate refused: %w", err)
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if err := atomicfile.Write(filepath.Join(id.Dir, CertFile), chainPEM, 0o644); err != nil {
		return fmt.Errorf("save renewed certificate: %w", err)
	}
	cfg := id.Config // a copy: Config is read concurrently and only its expiry changes on disk
	cfg.CertExpiresAt = cert.Leaf.NotAfter.UTC()
	if raw, err := json.MarshalIndent(cfg, "", "  "); err == nil {
		if err := atomicfile.Write(filepath.Join(id.Dir, ConfigFile), append(raw, '\n'), 0o644); err != nil {
			return fmt.Errorf("save config: %w", err)
		}
	}
	id.slot.Set(cert)
	id.receivedAt = time.Now()
	return nil
}
