// Package hubmode runs a router as a standalone hub (`ztna-router run --hub --listen ADDR`), the
// operator-side relay between client identities and customer routers. The router must hold the
// role "hub". Over its control channel it gets a hub certificate (ztna://hub/<router id>) for a
// key generated here, and the controller's policy snapshot, kept current on every change; it
// serves the fabric on the listen address with internal/hub (through internal/hubnode), and
// renews the certificate at two thirds of its life. Certificate and snapshot are saved in the
// state directory, so that a restarted hub admits dials for the services and policies it knows
// while the controller is unreachable.
package hubmode

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/backoff"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/hubnode"
	"github.com/ztna/ztna/internal/pki"
)

// Files the hub keeps in the router's state directory.
const (
	KeyFile      = "hub-key.pem"       // 0600: the hub certificate's private key
	CertFile     = "hub-cert.pem"      // the hub certificate chain
	SnapshotFile = "hub-snapshot.json" // 0600: the last policy snapshot (names every service and identity)
)

// Certifier gets certificates over the control channel (*controlclient.Client is one).
type Certifier interface {
	Certify(ctx context.Context, kind string, csrPEM []byte) ([]byte, error)
}

// Config configures a hub.
type Config struct {
	StateDir  string
	Listen    string            // fabric listen address (host:port)
	RouterID  string            // the router's id: the hub certificate must name it
	CA        *x509.Certificate // the network CA
	Certifier Certifier
	// LinkTimeout is how long a link may stay silent before it is closed and its streams are
	// cut (--link-timeout). Zero means fabric's default.
	LinkTimeout time.Duration
	Logger      *slog.Logger
	Metrics     prometheus.Registerer // nil: no metrics
	Records     fabric.Records        // what carries the links' TLS records (fabric.LinkConfig.Records)
	// Limits bound what one client identity can make the hub hold (zero fields: defaults).
	Limits hub.Limits
}

// Hub is the component.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	key    crypto.Signer
	slot   *pki.CertSlot
	node   *hubnode.Node
	expiry prometheus.Gauge
}

// New loads or creates the hub key and loads the saved certificate and snapshot, if any.
func New(cfg Config) (*Hub, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("hub listen address %q: %w (use host:port, e.g. :80)", cfg.Listen, err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.StateDir, KeyFile))
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, key: key, slot: &pki.CertSlot{},
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztna_hub_cert_expiry_timestamp_seconds",
			Help: "When the hub certificate of the fabric listener expires (unix seconds; 0: none yet)."})}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(h.expiry)
	}
	h.node = hubnode.New(hub.Config{Credentials: fabric.Credentials{Cert: h.slot, CA: cfg.CA}, KeepaliveTimeout: cfg.LinkTimeout,
		Logger: cfg.Logger, Metrics: cfg.Metrics, Records: cfg.Records, Limits: cfg.Limits})
	if raw, err := os.ReadFile(filepath.Join(cfg.StateDir, CertFile)); err == nil {
		if err := h.install(raw); err != nil {
			h.log.Warn("ignoring the saved hub certificate", "error", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if raw, err := os.ReadFile(filepath.Join(cfg.StateDir, SnapshotFile)); err == nil {
		var s control.HubSnapshot
		if err := json.Unmarshal(raw, &s); err != nil {
			h.log.Warn("ignoring the saved policy snapshot", "error", err)
		} else {
			h.log.Info("serving the saved policy snapshot until the controller sends a current one")
			h.node.Update(s)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return h, nil
}

// Node is the running hub (for status and tests).
func (h *Hub) Node() *hubnode.Node { return h.node }

// Update installs a snapshot from the controller and saves it (control client's OnHubSnapshot).
func (h *Hub) Update(s control.HubSnapshot) {
	h.node.Update(s)
	raw, err := json.Marshal(s)
	if err == nil {
		err = atomicfile.Write(filepath.Join(h.cfg.StateDir, SnapshotFile), raw, 0o600)
	}
	if err != nil {
		h.log.Warn("cannot save the policy snapshot; a restart without the controller would serve nobody", "error", err)
	}
}

// Run listens, gets a hub certificate if it has no valid one, serves the fabric and keeps the
// certificate renewed until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", h.cfg.Listen)
	if err != nil {
		return fmt.Errorf("hub: listen on %s: %w", h.cfg.Listen, err)
	}
	defer ln.Close()
	if !h.valid() {
		h.log.Info("asking the controller for a hub certificate")
		if err := h.certify(ctx); err != nil {
			return nil // ctx ended
		}
	}
	h.log.Info("hub serving the fabric", "listen", ln.Addr().String(), "cert_expires", h.slot.Get().Leaf.NotAfter.UTC())
	go h.renewals(ctx)
	return h.node.Serve(ctx, ln)
}

// valid reports whether the current certificate has life left.
func (h *Hub) valid() bool {
	c := h.slot.Get()
	return c != nil && time.Now().Before(c.Leaf.NotAfter)
}

// certify gets a new certificate, retrying with backoff until it succeeds or ctx ends.
func (h *Hub) certify(ctx context.Context) error {
	bo := backoff.New(200*time.Millisecond, 10*time.Second)
	for {
		err := h.certifyOnce(ctx)
		if err == nil {
			return nil
		}
		delay := bo.Next()
		h.log.Warn("no hub certificate yet; retrying", "error", err, "retry_in", delay.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (h *Hub) certifyOnce(ctx context.Context) error {
	csr, err := pki.NewCSR(h.key, api.KindHub+"/"+h.cfg.RouterID)
	if err != nil {
		return err
	}
	chain, err := h.cfg.Certifier.Certify(ctx, control.CertKindHub, csr)
	if err != nil {
		return err
	}
	if err := h.install(chain); err != nil {
		return fmt.Errorf("controller issued an unusable hub certificate: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(h.cfg.StateDir, CertFile), chain, 0o644); err != nil {
		h.log.Warn("cannot save the hub certificate", "error", err)
	}
	h.log.Info("hub certificate installed", "expires", h.slot.Get().Leaf.NotAfter.UTC())
	return nil
}

// install checks a chain (our key, the network CA, ztna://hub/<router id>) and switches new
// handshakes to it.
func (h *Hub) install(chainPEM []byte) error {
	cert, err := pki.TLSCertificate(chainPEM, h.key)
	if err != nil {
		return err
	}
	if err := verify(cert, h.cfg.CA, h.cfg.RouterID); err != nil {
		return err
	}
	h.slot.Set(cert)
	h.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	return nil
}

func verify(cert *tls.Certificate, ca *x509.Certificate, routerID string) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.Leaf.NotBefore,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("hub certificate is not from the network CA: %w", err)
	}
	kind, id, err := pki.Identity(cert.Leaf)
	if err != nil {
		return err
	}
	if kind != api.KindHub || id != routerID {
		return fmt.Errorf("certificate names %s/%s, not hub/%s", kind, id, routerID)
	}
	return nil
}

// renewals replaces the certificate at two thirds of its remaining life.
func (h *Hub) renewals(ctx context.Context) {
	for {
		leaf := h.slot.Get().Leaf
		wait := time.Until(leaf.NotAfter) * 2 / 3
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if h.certify(ctx) != nil {
			return
		}
	}
}

func loadOrCreateKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := pki.GenerateKey()
		if err != nil {
			return nil, err
		}
		pemKey, err := pki.EncodeKey(key)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(path, pemKey, 0o600); err != nil {
			return nil, fmt.Errorf("save hub key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %v: the hub's private key must be readable by its owner only (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	return pki.ParseKeyPEM(raw)
}
