// Package controltest runs the controller's real control-channel server for tests, on loopback,
// over an in-memory Backend that issues certificates from a real CA. Tests of either side of the
// control channel use it; end-to-end tests use the real controller instead.
package controltest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// Service is a service with the router roles that select its hosts.
type Service struct {
	control.Service
	RouterRoles []string
}

// Status is what the server recorded about a router.
type Status struct {
	Online   bool
	Hello    control.Hello
	LastSeen time.Time
	Health   []control.ServiceHealth
}

// Backend is an in-memory controlserver.Backend.
type Backend struct {
	CA       *pki.CA
	Lifetime time.Duration // of issued router certificates

	mu       sync.Mutex
	routers  map[string]controlserver.Router
	services []Service
	status   map[string]Status
	issued   int
	subs     []chan controlserver.Change
}

// NewBackend returns an empty backend issuing certificates from ca.
func NewBackend(ca *pki.CA, lifetime time.Duration) *Backend {
	return &Backend{CA: ca, Lifetime: lifetime, routers: map[string]controlserver.Router{}, status: map[string]Status{}}
}

// PutRouter creates or updates a router.
func (b *Backend) PutRouter(r controlserver.Router) {
	b.mu.Lock()
	b.routers[r.ID] = r
	b.mu.Unlock()
	b.notify(r.ID)
}

// EnrolQuietly records router id as enrolled again at at without telling the sessions, as a
// change feed that has not delivered the enrolment yet.
func (b *Backend) EnrolQuietly(id string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.routers[id]
	r.EnrolledAt = at
	b.routers[id] = r
}

// DeleteRouter deletes a router.
func (b *Backend) DeleteRouter(id string) {
	b.mu.Lock()
	delete(b.routers, id)
	b.mu.Unlock()
	b.notify(id)
}

// PutService creates or replaces a service (by ID).
func (b *Backend) PutService(s Service) { b.PutServices(s) }

// PutServices creates or replaces services (by ID), telling the sessions once.
func (b *Backend) PutServices(ss ...Service) {
	b.mu.Lock()
	byID := make(map[string]int, len(b.services))
	for i, o := range b.services {
		byID[o.ID] = i
	}
	for _, s := range ss {
		if i, ok := byID[s.ID]; ok {
			b.services[i] = s
		} else {
			byID[s.ID] = len(b.services)
			b.services = append(b.services, s)
		}
	}
	b.mu.Unlock()
	b.notify("")
}

// Status returns what was recorded about router id.
func (b *Backend) Status(id string) Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status[id]
}

// Issued counts certificates issued by renewal.
func (b *Backend) Issued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.issued
}

func (b *Backend) notify(routerID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		ch <- controlserver.Change{RouterID: routerID} // buffered generously; tests make few changes
	}
}

// Router implements controlserver.Backend.
func (b *Backend) Router(_ context.Context, id string) (controlserver.Router, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.routers[id]
	if !ok {
		return controlserver.Router{}, fmt.Errorf("router %s: %w", id, controlserver.ErrRouterNotFound)
	}
	return r, nil
}

// ServicesForRoles implements controlserver.Backend.
func (b *Backend) ServicesForRoles(_ context.Context, roles []string) ([]control.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []control.Service
	for _, s := range b.services {
		if slices.ContainsFunc(s.RouterRoles, func(r string) bool { return slices.Contains(roles, r) }) {
			out = append(out, s.Service)
		}
	}
	return out, nil
}

// RecordStatus implements controlserver.Backend.
func (b *Backend) RecordStatus(_ context.Context, batch []controlserver.Status) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range batch {
		st := b.status[r.RouterID]
		st.Online, st.LastSeen = r.Online, r.At
		if r.Hello != nil {
			st.Hello = *r.Hello
		}
		if r.HealthSet {
			st.Health = r.Health
		}
		b.status[r.RouterID] = st
	}
	return nil
}

// IssueRouterCertificate implements controlserver.Backend.
func (b *Backend) IssueRouterCertificate(_ context.Context, id string, csrPEM []byte) ([]byte, error) {
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	iss, err := b.CA.IssueFromCSR(csr, api.KindRouter, id, b.Lifetime)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.issued++
	b.mu.Unlock()
	return iss.ChainPEM, nil
}

// Subscribe implements controlserver.Backend.
func (b *Backend) Subscribe(ctx context.Context) <-chan controlserver.Change {
	ch := make(chan controlserver.Change, 1024)
	b.mu.Lock()
	b.subs = append(b.subs, ch)
	b.mu.Unlock()
	out := make(chan controlserver.Change)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-ch:
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// MarkStaleOffline implements controlserver.Backend.
func (b *Backend) MarkStaleOffline(_ context.Context, seenBefore time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, st := range b.status {
		if st.Online && st.LastSeen.Before(seenBefore) {
			st.Online = false
			b.status[id] = st
		}
	}
	return nil
}

// SetStatus overwrites what is recorded about a router (to simulate a crashed controller's
// leftovers).
func (b *Backend) SetStatus(id string, st Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status[id] = st
}

// Controller is a running control-channel server.
type Controller struct {
	Addr   string
	Server *controlserver.Server
	stop   context.CancelFunc
	done   chan struct{}
}

// Stop shuts the server down and waits for it.
func (c *Controller) Stop() {
	c.stop()
	<-c.done
}

// Start serves the control channel for b on a loopback port (addr "" picks a free one) until the
// test ends or Stop is called. cfg's Backend, Cert and CA are filled in.
func Start(t testing.TB, b *Backend, addr string, cfg controlserver.Config) *Controller {
	t.Helper()
	return StartWith(t, b.CA, b, addr, cfg)
}

// StartWith is Start for any backend whose routers hold certificates from ca.
func StartWith(t testing.TB, ca *pki.CA, b controlserver.Backend, addr string, cfg controlserver.Config) *Controller {
	t.Helper()
	iss, key, err := ca.IssueServer(api.KindController, "test", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backend, cfg.Cert, cfg.CA = b, pki.NewCertSlot(cert), ca.Cert
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := controlserver.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Controller{Addr: ln.Addr().String(), Server: srv, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("control server: %v", err)
		}
	}()
	t.Cleanup(c.Stop)
	return c
}

// RouterCertificate issues a certificate for router id from ca, with its key.
func RouterCertificate(t testing.TB, ca *pki.CA, id string, lifetime time.Duration) *tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueFromCSR(csr, api.KindRouter, id, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Dial opens a raw control connection presenting cert (from ca), for tests that play a router
// by hand.
func (c *Controller) Dial(t testing.TB, ca *pki.CA, cert *tls.Certificate) (*control.Conn, error) {
	t.Helper()
	cfg := pki.MutualClientConfig(pki.NewCertSlot(cert), ca.Cert, api.KindController)
	cfg.NextProtos = []string{control.ALPN}
	nc, err := tls.Dial("tcp", c.Addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	return control.NewConn(nc), nil
}

// RouterCertificateIssuedAt is RouterCertificate as if issued at issued (NotBefore backdated by
// the same skew the CA uses), for tests of what an enrolment since then supersedes: the CA
// issues as of now only.
func RouterCertificateIssuedAt(t testing.TB, ca *pki.CA, id string, issued time.Time, lifetime time.Duration) *tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	caKeyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := pki.ParseKeyPEM(caKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(issued.UnixNano()),
		NotBefore:    issued.Add(-time.Minute), NotAfter: issued.Add(lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{pki.URI(api.KindRouter, id)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(append(pki.EncodeCert(der), ca.CertPEM...), key)
	if err != nil {
		t.Fatal(err)
	}
	if got := pki.IssuedAt(cert.Leaf); !got.Equal(issued.Truncate(time.Second)) {
		t.Fatalf("certificate issued at %v, want %v (the CA's skew changed?)", got, issued)
	}
	return cert
}
