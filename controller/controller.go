// Package controller assembles the ztna network controller: it loads or creates the network
// CA, wires the store, the certificate issuer and the edge API, issues the controller's own
// server certificates (and renews them), and serves each plane — edge API, control channel,
// fabric (embedded hub) — on its listener once a component is attached to it.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// Plane names a listener of the controller.
type Plane string

// The controller's planes (ARCHITECTURE.md, "Ports").
const (
	PlaneEdge    Plane = "edge"    // HTTPS: management API + enrolment
	PlaneControl Plane = "control" // mTLS: router control channel
	PlaneFabric  Plane = "fabric"  // mTLS: embedded hub
	PlaneMetrics Plane = "metrics" // plain HTTP /metrics (Prometheus), loopback by default
)

// Component serves one plane on a listener until ctx ends. It does its own TLS (it knows
// which peers it accepts), using the Controller's certificates and CA.
type Component interface {
	Serve(ctx context.Context, ln net.Listener) error
}

// NetworkCAName is the common name of the network CA a controller creates.
const NetworkCAName = "ztna network CA"

// serverCertLifetime is the lifetime of the controller's own server certificates; they are
// renewed in-process at two thirds of it.
const serverCertLifetime = 30 * 24 * time.Hour

// Config configures a Controller.
type Config struct {
	// CADir holds ca.pem and ca-key.pem (created on first start) unless CA is set.
	CADir string
	// CA, when set, is the network CA to sign with — replicas on PostgreSQL share one kept
	// in their database — and CADir is not used.
	CA *pki.CA
	// Name names the controller in its certificates (ztna://controller/<Name>).
	Name  string
	Store store.Store
	// Token is the admin bearer token of the management API.
	Token string
	// Listen is the listen address of each plane.
	Listen map[Plane]string
	// Advertise is what registration keys and enrolment responses tell routers and clients.
	Advertise edgeapi.Endpoints
	// Hosts are the DNS names and IPs the server certificates carry.
	Hosts []string
	// CertLifetime is the lifetime of router and identity certificates.
	CertLifetime time.Duration
	// AttestationKeys are the trusted build keys: a router whose image attestation one of them
	// signed is reported attestation_verified.
	AttestationKeys control.TrustedKeys
	Logger          *slog.Logger
}

// Controller is an assembled controller.
type Controller struct {
	cfg    Config
	CA     *pki.CA
	Store  store.Store
	Issuer *issuer.Issuer
	// ControllerCert is the certificate of the edge and control listeners
	// (ztna://controller/<name>); HubCert that of the embedded hub (ztna://hub/<name>).
	ControllerCert *pki.CertSlot
	HubCert        *pki.CertSlot
	Edge           *edgeapi.Server
	// Registry holds the controller's Prometheus metrics; attached components add theirs.
	Registry *prometheus.Registry
	// attestations counts routers' hellos by the verdict on their attestation.
	attestations *prometheus.CounterVec
	counts       *objectCounts
	log          *slog.Logger

	mu         sync.Mutex
	components map[Plane]Component
	addrs      map[Plane]net.Addr
	ready      chan struct{}
}

// New loads (or creates) the CA and assembles the controller; nothing listens yet.
func New(cfg Config) (*Controller, error) {
	if cfg.Logger == nil {
		return nil, errors.New("controller: a logger is required")
	}
	if cfg.CertLifetime <= 0 {
		cfg.CertLifetime = pki.DefaultCertLifetime
	}
	if cfg.Name == "" {
		cfg.Name = "controller"
	}
	ca := cfg.CA
	var err error
	if ca == nil {
		var created bool
		if ca, created, err = pki.LoadOrCreateCA(cfg.CADir, NetworkCAName); err != nil {
			return nil, err
		}
		if created {
			cfg.Logger.Info("created network CA", "dir", cfg.CADir, "fingerprint", ca.Fingerprint())
		}
	}
	c := &Controller{
		cfg:        cfg,
		CA:         ca,
		Store:      cfg.Store,
		Issuer:     &issuer.Issuer{CA: ca, Lifetime: cfg.CertLifetime, Store: cfg.Store},
		log:        cfg.Logger,
		components: map[Plane]Component{},
		addrs:      map[Plane]net.Addr{},
		ready:      make(chan struct{}),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_controller_router_attestations_total",
			Help: "Router hellos by the verdict on the image attestation: verified, unsigned, untrusted_key, bad_signature, missing.",
		}, []string{"result"}),
	}
	if c.ControllerCert, err = c.serverCert(api.KindController); err != nil {
		return nil, err
	}
	if c.HubCert, err = c.serverCert(api.KindHub); err != nil {
		return nil, err
	}
	c.Edge, err = edgeapi.New(edgeapi.Config{Store: cfg.Store, Issuer: c.Issuer, Token: cfg.Token, Endpoints: cfg.Advertise,
		AttestationKeys: cfg.AttestationKeys, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.components[PlaneEdge] = &httpsComponent{handler: c.Edge, cert: c.ControllerCert, log: cfg.Logger}
	c.counts = newObjectCounts(cfg.Store, cfg.Logger)
	c.Registry = newRegistry(c.counts, append(c.Edge.Collectors(), c.attestations)...)
	if cfg.Listen[PlaneMetrics] != "" {
		c.components[PlaneMetrics] = newMetricsComponent(c.Registry)
	}
	return c, nil
}

// Attach serves comp on plane from Run on. The edge plane is attached by New.
func (c *Controller) Attach(plane Plane, comp Component) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.components[plane] = comp
}

// CertLifetime is the lifetime of router and identity certificates.
func (c *Controller) CertLifetime() time.Duration { return c.cfg.CertLifetime }

func (c *Controller) serverCert(kind string) (*pki.CertSlot, error) {
	cert, err := c.issueServerCert(kind)
	if err != nil {
		return nil, err
	}
	return pki.NewCertSlot(cert), nil
}

func (c *Controller) issueServerCert(kind string) (*tls.Certificate, error) {
	iss, key, err := c.CA.IssueServer(kind, c.cfg.Name, c.cfg.Hosts, serverCertLifetime)
	if err != nil {
		return nil, err
	}
	return pki.TLSCertificate(iss.ChainPEM, key)
}

// Addr returns the bound address of a plane once Run listens (nil before or when the plane
// has no component).
func (c *Controller) Addr(plane Plane) net.Addr {
	<-c.ready
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[plane]
}

// Run listens on every plane that has a component and serves until ctx ends. Planes without
// a component are not opened: a port that accepts and does nothing would only mislead.
func (c *Controller) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	comps := make(map[Plane]Component, len(c.components))
	for p, comp := range c.components {
		comps[p] = comp
	}
	listeners := map[Plane]net.Listener{}
	var lerr error
	for p := range comps {
		ln, err := net.Listen("tcp", c.cfg.Listen[p])
		if err != nil {
			lerr = fmt.Errorf("%s plane: listen on %s: %w", p, c.cfg.Listen[p], err)
			break
		}
		listeners[p] = ln
		c.addrs[p] = ln.Addr()
	}
	if lerr != nil {
		for _, ln := range listeners {
			ln.Close()
		}
		clear(c.addrs) // nothing listens: Addr must not suggest otherwise
	}
	c.mu.Unlock()
	close(c.ready)
	if lerr != nil {
		return lerr
	}
	for _, p := range []Plane{PlaneEdge, PlaneControl, PlaneFabric, PlaneMetrics} {
		if _, ok := comps[p]; ok {
			c.log.Info("serving", "plane", p, "addr", c.addrs[p].String())
		} else if c.cfg.Listen[p] != "" {
			c.log.Info("plane reserved, no component attached", "plane", p, "addr", c.cfg.Listen[p])
		}
	}

	go c.renewServerCerts(ctx)
	go c.counts.run(ctx)
	errs := make(chan error, len(comps))
	for p, comp := range comps {
		go func() {
			err := comp.Serve(ctx, listeners[p])
			if err != nil {
				err = fmt.Errorf("%s plane: %w", p, err)
			}
			errs <- err
		}()
	}
	var first error
	for range comps {
		err := <-errs
		if err != nil && first == nil {
			first = err
			cancel() // one plane failing stops the controller: half a controller misleads routers
		}
	}
	return first
}

// renewServerCerts reissues the controller's own certificates at two thirds of their life.
func (c *Controller) renewServerCerts(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for kind, slot := range map[string]*pki.CertSlot{api.KindController: c.ControllerCert, api.KindHub: c.HubCert} {
			leaf := slot.Get().Leaf
			if time.Until(leaf.NotAfter) > serverCertLifetime/3 {
				continue
			}
			cert, err := c.issueServerCert(kind)
			if err != nil {
				c.log.Error("renew server certificate", "kind", kind, "err", err)
				continue
			}
			slot.Set(cert)
			c.log.Info("renewed server certificate", "kind", kind, "expires_at", cert.Leaf.NotAfter)
		}
	}
}

// httpsComponent serves an http.Handler over TLS with the controller certificate.
type httpsComponent struct {
	handler http.Handler
	cert    *pki.CertSlot
	log     *slog.Logger
}

func (h *httpsComponent) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           h.handler,
		TLSConfig:         edgeapi.TLSConfig(h.cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}
