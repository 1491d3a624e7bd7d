// Package enroll is the enrolling side of ztna enrolment, for routers and client identities:
// parse the registration key (or enrolment token), generate the private key locally, send a
// CSR over TLS pinned to the CA fingerprint the key carries, check what comes back, and
// write the resulting state to disk atomically. The private key never leaves the host.
package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/backoff"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/internal/regkey"
)

// Files of a router state directory (ARCHITECTURE.md, "Local state").
const (
	KeyFile    = "key.pem"
	CertFile   = "cert.pem"
	CAFile     = "ca.pem"
	ConfigFile = "config.json"
	// pendingKeyFile holds the private key of an enrolment not yet answered (Options.PendingKeyFile).
	pendingKeyFile = "enroll-key.pem"
)

// Result is a successful enrolment.
type Result struct {
	Config   api.EnrolledConfig
	Key      crypto.Signer
	KeyPEM   []byte
	ChainPEM []byte // leaf first
	CAPEM    []byte
}

// Options tune Enroll.
type Options struct {
	Logger  *slog.Logger  // nil discards
	Timeout time.Duration // per edge endpoint; 0 means 30 s
	// RetryFor is how long Enroll keeps retrying, with backoff, while no endpoint answered
	// (transport errors, 503): 0 means 1 minute, negative means one round only.
	RetryFor time.Duration
	// PendingKeyFile, when set, keeps the private key of an enrolment in progress (0600): an
	// enrolment whose reply was lost and that runs again after a restart (a reboot, a unit
	// that gave up) then sends the same public key, which the controller answers as the
	// same enrolment within its retry window, instead of a new key the used registration
	// key refuses. Router and Identity set it and remove the file once enrolled.
	PendingKeyFile string
}

// Enroll runs the enrolment exchange for a key of kind wantKind ("router" or "identity")
// and returns the verified result without writing anything. It tries the key's edge
// endpoints in order until one answers; a refusal (used, expired, revoked key ...) or a
// pinning failure from an endpoint is final for that endpoint and reported. While no endpoint
// answers it retries, with the same private key and CSR: a reply lost after the controller
// consumed the key is then answered as the same enrolment (the controller recognises the
// public key), instead of the one-time key being used up for nothing.
func Enroll(ctx context.Context, key, wantKind string, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, err := regkey.Parse(key)
	if err != nil {
		return nil, err
	}
	if k.Kind != wantKind {
		return nil, fmt.Errorf("this is a %s key, but a %s key is needed here", k.Kind, wantKind)
	}
	priv, err := enrolmentKey(opts.PendingKeyFile)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(priv, k.Kind+"/"+k.ID)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	retryFor := opts.RetryFor
	if retryFor == 0 {
		retryFor = time.Minute
	}
	deadline := time.Now().Add(retryFor)
	bo := backoff.New(500*time.Millisecond, 10*time.Second)
	for {
		res, unanswered, err := enrollOnce(ctx, log, k, priv, csr, wantKind, timeout)
		if !unanswered {
			return res, err
		}
		delay := bo.Next()
		if time.Now().Add(delay).After(deadline) {
			return nil, err
		}
		log.Warn("no controller endpoint answered the enrolment; retrying with the same key and CSR", "error", err, "retry_in", delay.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
	}
}

// enrolmentKey is the private key to enrol: the pending one, when a file holds it, else a new
// one, saved there first when a file is named.
func enrolmentKey(pending string) (crypto.Signer, error) {
	if pending != "" {
		if b, err := os.ReadFile(pending); err == nil {
			if priv, err := pki.ParseKeyPEM(b); err == nil {
				return priv, nil
			}
		}
	}
	priv, err := pki.GenerateKey()
	if err != nil || pending == "" {
		return priv, err
	}
	pemKey, err := pki.EncodeKey(priv)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(pending, pemKey, 0o600); err != nil {
		return nil, fmt.Errorf("save the enrolment key: %w", err)
	}
	return priv, nil
}

// enrollOnce tries each edge endpoint once; unanswered reports that none answered (each
// failed with an apiclient.Temporary error), so that trying again may succeed.
func enrollOnce(ctx context.Context, log *slog.Logger, k *regkey.Key, priv crypto.Signer, csr []byte, wantKind string, timeout time.Duration) (res *Result, unanswered bool, err error) {
	var errs []error
	for _, edge := range k.Edge {
		client, err := apiclient.New(edge, "", k.CA, apiclient.WithTimeout(timeout))
		if err != nil {
			return nil, false, err
		}
		log.Info("enrolling", "edge", edge, "key", k)
		resp, err := client.Enroll(ctx, api.EnrollRequest{Key: k.Encode(), CSR: string(csr)})
		client.CloseIdleConnections() // one request per endpoint: keep nothing open
		if err != nil {
			var apiErr *apiclient.Error
			if errors.As(err, &apiErr) && !apiclient.Temporary(err) {
				// The controller decided; another endpoint of the same controller would agree.
				return nil, false, fmt.Errorf("enrolment refused by %s: %s", edge, apiErr.Problem.Detail)
			}
			if apiclient.IsPinMismatch(err) { // TLS interception or the wrong controller: asking again changes nothing
				return nil, false, fmt.Errorf("%s: %w", edge, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", edge, err))
			log.Warn("edge endpoint failed", "edge", edge, "err", err)
			continue
		}
		res, err := verify(resp, priv, k.CA, wantKind)
		if err != nil {
			return nil, false, fmt.Errorf("%s answered with an unusable enrolment: %w", edge, err)
		}
		log.Info("enrolled", "kind", res.Config.Kind, "id", res.Config.ID, "name", res.Config.Name, "cert_expires_at", res.Config.CertExpiresAt)
		return res, false, nil
	}
	return nil, true, fmt.Errorf("enrolment failed on every controller endpoint: %w", errors.Join(errs...))
}

// verify checks that the response is for our key, from the pinned CA, and names an entity of
// the expected kind.
func verify(resp *api.EnrollResponse, priv crypto.Signer, pinnedCA, kind string) (*Result, error) {
	ca, err := pki.ParseCertPEM([]byte(resp.CA))
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	if fp := pki.Fingerprint(ca.Raw); fp != pinnedCA {
		return nil, fmt.Errorf("TLS interception or wrong controller: the returned CA is %s, the pinned one is %s", fp, pinnedCA)
	}
	tlsCert, err := pki.TLSCertificate([]byte(resp.Certificate), priv)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if err := tlsCert.Leaf.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("certificate is not signed by the pinned CA: %w", err)
	}
	gotKind, id, err := pki.Identity(tlsCert.Leaf)
	if err != nil {
		return nil, err
	}
	if gotKind != kind || id != resp.Config.ID || resp.Config.Kind != kind {
		return nil, fmt.Errorf("certificate names %s/%s, config names %s/%s, expected a %s", gotKind, id, resp.Config.Kind, resp.Config.ID, kind)
	}
	keyPEM, err := pki.EncodeKey(priv)
	if err != nil {
		return nil, err
	}
	return &Result{Config: resp.Config, Key: priv, KeyPEM: keyPEM, ChainPEM: []byte(resp.Certificate), CAPEM: []byte(resp.CA)}, nil
}

// Router enrols a router and writes its state directory: key.pem (0600), cert.pem, ca.pem
// and config.json. Each file is replaced atomically, config.json last, so a crash leaves
// either the previous enrolment or the new one readable. It refuses to overwrite an existing
// enrolment unless force is set, because that would orphan a working router.
func Router(ctx context.Context, key, stateDir string, force bool, opts Options) (*api.EnrolledConfig, error) {
	if !force {
		if _, err := os.Stat(filepath.Join(stateDir, ConfigFile)); err == nil {
			return nil, fmt.Errorf("%s already holds an enrolled router; pass --force to replace it", stateDir)
		}
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	opts.PendingKeyFile = filepath.Join(stateDir, pendingKeyFile)
	res, err := Enroll(ctx, key, api.KindRouter, opts)
	if err != nil {
		return nil, err
	}
	cfg, err := json.MarshalIndent(res.Config, "", "  ")
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{KeyFile, res.KeyPEM, 0o600},
		{CertFile, res.ChainPEM, 0o644},
		{CAFile, res.CAPEM, 0o644},
		{ConfigFile, append(cfg, '\n'), 0o644},
	} {
		if err := atomicfile.Write(filepath.Join(stateDir, f.name), f.data, f.perm); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	os.Remove(opts.PendingKeyFile) // key.pem holds it now
	return &res.Config, nil
}

// IdentityFile is the single file an enrolled client identity keeps (mode 0600).
type IdentityFile struct {
	Config api.EnrolledConfig `json:"config"`
	Key    string             `json:"key"`  // PEM private key
	Cert   string             `json:"cert"` // PEM chain, leaf first
	CA     string             `json:"ca"`   // PEM CA certificate
}

// Identity enrols a client identity with its enrolment token and writes one file (0600).
func Identity(ctx context.Context, token, path string, force bool, opts Options) (*api.EnrolledConfig, error) {
	if !force {
		if _, err := os.Stat(path); err == nil {
			return nil, fmt.Errorf("%s already exists; pass --force to replace it", path)
		}
	}
	opts.PendingKeyFile = path + "." + pendingKeyFile
	res, err := Enroll(ctx, token, api.KindIdentity, opts)
	if err != nil {
		return nil, err
	}
	if err := res.identityFile().Write(path); err != nil {
		return nil, err
	}
	os.Remove(opts.PendingKeyFile) // the identity file holds it now
	return &res.Config, nil
}

func (r *Result) identityFile() *IdentityFile {
	return &IdentityFile{Config: r.Config, Key: string(r.KeyPEM), Cert: string(r.ChainPEM), CA: string(r.CAPEM)}
}

// Write replaces the identity file at path atomically (temporary file, then rename), mode
// 0600: a reader sees the old or the new identity, never a torn file.
func (f *IdentityFile) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// LogValue keeps the private key out of logs: only the identity's id, name and expiry.
func (f IdentityFile) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", f.Config.ID), slog.String("name", f.Config.Name), slog.Time("cert_expires_at", f.Config.CertExpiresAt))
}

// String keeps the private key out of formatted output.
func (f IdentityFile) String() string {
	return fmt.Sprintf("identity %s (%s), certificate valid until %s", f.Config.Name, f.Config.ID, f.Config.CertExpiresAt.UTC().Format(time.RFC3339))
}

// LoadIdentity reads an identity file, refusing one readable by others. A missing file is an
// error that wraps fs.ErrNotExist and says how to enrol.
func LoadIdentity(path string) (*IdentityFile, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("identity file %s does not exist: enrol first with 'ztna identity enroll --token-file TOKEN --out %s' (%w)", path, path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity file %s has mode %v: it holds a private key, chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f IdentityFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	if f.Config.Kind != api.KindIdentity || f.Config.ID == "" || f.Key == "" || f.Cert == "" || f.CA == "" {
		return nil, fmt.Errorf("identity file %s is incomplete; enrol again", path)
	}
	return &f, nil
}

// TLSCertificate returns the identity's key and chain as a TLS certificate.
func (f *IdentityFile) TLSCertificate() (*tls.Certificate, error) {
	key, err := pki.ParseKeyPEM([]byte(f.Key))
	if err != nil {
		return nil, err
	}
	return pki.TLSCertificate([]byte(f.Cert), key)
}
