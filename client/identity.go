package client

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
)

// Identity is an enrolled client identity loaded from the file `ztna identity enroll` wrote:
// its certificate, in the slot a Client presents, the network CA, the hubs, and what renewing
// the certificate needs. Run KeepRenewed next to the Client so that the certificate never
// expires:
//
//	id, err := client.LoadIdentity("/etc/ztna/app.identity", client.IdentityOptions{Logger: log})
//	go id.KeepRenewed(ctx)
//	c, err := client.New(id.Config())
type Identity struct {
	path string // the identity file, rewritten by renewals
	opts IdentityOptions
	log  *slog.Logger
	slot *pki.CertSlot
	ca   *x509.Certificate

	renewing sync.Mutex // one renewal at a time

	mu      sync.Mutex // guards the fields below
	file    *enroll.IdentityFile
	renewAt time.Time
}

// IdentityOptions tune LoadIdentity.
type IdentityOptions struct {
	Logger *slog.Logger // nil discards
	// RenewTimeout bounds one renewal request per controller endpoint; zero means 30 s.
	RenewTimeout time.Duration
}

// LoadIdentity reads an identity file (it must be mode 0600) and checks that it can be used:
// complete, from its CA, naming hubs, with a certificate that has not expired. Renewals
// rewrite the file atomically (temporary file and rename, 0600; the directory must be
// writable); when that fails the renewed certificate is still used, and a warning logged.
func LoadIdentity(path string, opts IdentityOptions) (*Identity, error) {
	f, err := enroll.LoadIdentity(path)
	if err != nil {
		return nil, err
	}
	cert, err := f.TLSCertificate()
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	ca, err := pki.ParseCertPEM([]byte(f.CA))
	if err != nil {
		return nil, fmt.Errorf("identity file %s: CA: %w", path, err)
	}
	if fp := pki.Fingerprint(ca.Raw); f.Config.CAFingerprint != "" && fp != f.Config.CAFingerprint {
		return nil, fmt.Errorf("identity file %s: its CA (%s) is not the one it was enrolled with (%s); enrol again", path, fp, f.Config.CAFingerprint)
	}
	if len(f.Config.Fabric) == 0 {
		return nil, fmt.Errorf("identity file %s names no fabric (hub) address; enrol again", path)
	}
	if leaf := cert.Leaf; time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate of identity %s expired at %s: %s", f.Config.Name, leaf.NotAfter.UTC().Format(time.RFC3339), api.ReenrolHint)
	}
	id := &Identity{path: path, opts: opts, log: opts.Logger, slot: pki.NewCertSlot(cert), ca: ca, file: f}
	if id.log == nil {
		id.log = slog.New(slog.DiscardHandler)
	}
	// Nothing says when this certificate arrived: measure its life from NotBefore, so that a
	// program started late in that life renews at once.
	id.renewAt = renewalTime(cert.Leaf.NotBefore, cert.Leaf.NotAfter, rand.Float64())
	return id, nil
}

// Config returns a client configuration presenting this identity's certificate; renewals
// replace it in place. Logger, timeouts and keepalives may be set on the result.
func (id *Identity) Config() Config {
	return Config{Cert: id.slot, CA: id.ca, Hubs: id.File().Config.Fabric, Logger: id.opts.Logger}
}

// Certificate returns the identity's current certificate.
func (id *Identity) Certificate() *x509.Certificate { return id.slot.Get().Leaf }

// File returns the identity as it stands (after the last renewal).
func (id *Identity) File() *enroll.IdentityFile {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.file
}

// RenewAt is when KeepRenewed renews the certificate next.
func (id *Identity) RenewAt() time.Time {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.renewAt
}
