// Package control is the controller's side of the control channel (port 6262): it authenticates
// routers by their certificates, records their status and health, pushes the services assigned to
// their roles on connect and on every change, renews their certificates on the open connection,
// and disconnects a router the moment it is deleted. Routers running as standalone hubs (hello.hub,
// role "hub") also get the hub policy snapshot on connect and on every change, and their hub
// certificate.
package controlserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// ErrRouterNotFound is what Backend.Router returns for a router that does not exist (any more).
var ErrRouterNotFound = errors.New("router not found")

// Router is what the control channel needs to know about a router.
type Router struct {
	ID    string
	Name  string
	Roles []string
	// EnrolledAt is when the router's latest enrolment consumed its registration key (zero:
	// never enrolled). Certificates issued before it are superseded (pki.Superseded): a router
	// re-enrolled with a new key leaves its old certificate without a session or renewal.
	EnrolledAt time.Time
}

// Backend is the controller state the control channel reads and writes.
type Backend interface {
	// Router returns the router, or an error wrapping ErrRouterNotFound once it is deleted.
	Router(ctx context.Context, id string) (Router, error)
	// ServicesForRoles returns the services whose router roles intersect roles, in a stable order.
	ServicesForRoles(ctx context.Context, roles []string) ([]control.Service, error)
	// RecordStatus records a batch of routers' session reports (the liveness writer's flush:
	// one call per FlushInterval at most, never on a session's path).
	RecordStatus(ctx context.Context, batch []Status) error
	// MarkStaleOffline records offline every router still recorded online whose last_seen is
	// before seenBefore: routers whose sessions died with a crashed controller (any replica).
	MarkStaleOffline(ctx context.Context, seenBefore time.Time) error
	// IssueRouterCertificate issues a new certificate for router id from a PEM CSR and returns
	// the PEM chain, leaf first.
	IssueRouterCertificate(ctx context.Context, id string, csrPEM []byte) ([]byte, error)
	// Subscribe returns a channel that receives a Change after every change to routers' names or
	// roles, deletions, enrolments (a session whose certificate one superseded is revoked), and
	// changes to services (not after status writes); it is closed when ctx ends.
	Subscribe(ctx context.Context) <-chan Change
}

// HubBackend serves standalone hubs: the policy snapshot they route by and their certificates.
type HubBackend interface {
	// HubSnapshot returns the current snapshot (services, routers, identities, policies).
	HubSnapshot(ctx context.Context) (control.HubSnapshot, error)
	// IssueHubCertificate issues ztna://hub/<routerID> for the PEM CSR's key, refusing a router
	// without the hub role, and returns the PEM chain, leaf first.
	IssueHubCertificate(ctx context.Context, routerID string, csrPEM []byte) ([]byte, error)
}

// Change says whose assignment may have changed: one router's (RouterID), or every router's.
// A router change also concerns hubs (their snapshot lists routers); HubsOnly concerns hubs
// alone (identities and policies changed).
type Change struct {
	RouterID string // "" means every router (but see ByRoles)
	HubsOnly bool
	// ByRoles narrows a change to the routers holding one of Roles (and hubs): a service
	// changed, and these are its router roles before and after.
	ByRoles bool
	Roles   []string
}

// concernsRouter reports whether c may have changed router id itself (not only its services).
func (c Change) concernsRouter(id string) bool {
	return !c.HubsOnly && !c.ByRoles && (c.RouterID == "" || c.RouterID == id)
}

// concerns reports whether c may change the assignment of a (non-hub) router id with roles.
func (c Change) concerns(id string, roles []string) bool {
	switch {
	case c.HubsOnly:
		return false
	case c.RouterID != "":
		return c.RouterID == id
	case c.ByRoles:
		return slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(c.Roles, r) })
	}
	return true
}

// Server is the control-channel listener's handler.
type Server struct {
	backend      Backend
	hubs         HubBackend
	fabric       []string
	control      []string
	tls          *tls.Config
	interval     time.Duration
	persistEvery time.Duration
	log          *slog.Logger
	live         *liveness
	admit        *admission
	routers      *routerCache
	handshakes   *failureLog

	mu       sync.Mutex
	sessions map[string]*session // by router id; a newer connection replaces an older one

	assignmentPushes atomic.Int64
	snapshotPushes   atomic.Int64
}

// Pushes counts the assignments and hub snapshots sent since the server started.
func (s *Server) Pushes() (assignments, snapshots int64) {
	return s.assignmentPushes.Load(), s.snapshotPushes.Load()
}

// Config configures a Server.
type Config struct {
	Backend Backend
	// Cert is the controller's server certificate (URI SAN ztna://controller/<name>).
	Cert *pki.CertSlot
	// CA is the network CA that router certificates must chain to.
	CA *x509.Certificate
	// HeartbeatInterval is what routers are told; a router silent for HeartbeatMisses intervals
	// is offline. Zero means 1 s.
	HeartbeatInterval time.Duration
	// LastSeenInterval is how often an unchanged heartbeat is written to the backend (a changed
	// one is written at once); routers recorded online but unseen for StaleAfter such intervals
	// are marked offline. Zero means 5 s.
	LastSeenInterval time.Duration
	// FlushInterval is how often the router status kept in memory is written to the backend
	// (one batch per interval; the API's view of status lags by at most about this much).
	// Zero means 250 ms.
	FlushInterval time.Duration
	// MaxAdmitting bounds the sessions being admitted at once (hello to first assignment);
	// a hello beyond it is answered error{retry_after_ms}. Zero means 256.
	MaxAdmitting int
	// Hubs, when set, lets routers with the hub role run as standalone hubs; nil refuses them.
	Hubs HubBackend
	// Fabric lists the fabric addresses of every hub; welcome hands it to routers.
	Fabric []string
	// Control lists the control-channel addresses routers should reconnect to (the advertised
	// ones: with replicas, every replica); welcome hands it to routers, which save it.
	Control []string
	Logger  *slog.Logger
}

// StaleAfter is how many LastSeenIntervals without a write make an "online" router stale.
const StaleAfter = 3

// New returns a Server. Its TLS configuration requires a router certificate from the CA and
// refuses, during the handshake, the certificate of a router that no longer exists.
func New(cfg Config) *Server {
	s := &Server{backend: cfg.Backend, hubs: cfg.Hubs, fabric: cfg.Fabric, control: cfg.Control, interval: cfg.HeartbeatInterval,
		persistEvery: cfg.LastSeenInterval, log: cfg.Logger, sessions: map[string]*session{}}
	if s.interval == 0 {
		s.interval = time.Second
	}
	if s.persistEvery == 0 {
		s.persistEvery = 5 * time.Second
	}
	flush := cfg.FlushInterval
	if flush == 0 {
		flush = defaultFlushInterval
	}
	s.live = newLiveness(cfg.Backend, flush, cfg.Logger)
	s.admit = newAdmission(cfg.MaxAdmitting)
	s.routers = newRouterCache(cfg.Backend)
	s.handshakes = &failureLog{log: cfg.Logger, every: failureLogInterval}
	s.tls = pki.MutualServerConfig(cfg.Cert, cfg.CA, s.authorize, api.KindRouter)
	s.tls.NextProtos = []string{control.ALPN}
	return s
}

// handshakeTimeout bounds the TLS handshake and the hello that follows.
const handshakeTimeout = 10 * time.Second

func (s *Server) authorize(kind, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if _, err := s.routers.get(ctx, id); err != nil {
		if errors.Is(err, ErrRouterNotFound) {
			return fmt.Errorf("router %s was deleted: its certificate is no longer accepted", id)
		}
		return fmt.Errorf("cannot check router %s: %w", id, err)
	}
	return nil
}

// Serve accepts control connections on ln until ctx ends; it closes ln and every session then.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	sessionsDone, liveDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(liveDone); s.live.run(ctx, sessionsDone) }()
	defer func() {
		cancel()
		wg.Wait()
		close(sessionsDone) // every session has reported offline: the writer flushes and stops
		<-liveDone
	}()
	changes := s.backend.Subscribe(ctx)
	// Subscribed first: a change after the list invalidates what the list said.
	if err := s.routers.load(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("cannot list routers; sessions look their routers up one by one", "error", err)
	}
	go s.fanOut(ctx, changes)
	go s.reapStale(ctx)
	context.AfterFunc(ctx, func() { ln.Close() })
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("control listener: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, nc)
		}()
	}
}

// fanOut wakes the sessions whose router or services changed.
func (s *Server) fanOut(ctx context.Context, changes <-chan Change) {
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			s.routers.invalidate(c) // before any session woken by c looks its router up
			s.mu.Lock()
			for id, ss := range s.sessions {
				switch {
				case c.concernsRouter(id):
					ss.poke()
				case ss.hub || c.concerns(id, ss.routerRoles()):
					ss.pokeAssignment()
				}
			}
			s.mu.Unlock()
		}
	}
}

// reapStale marks offline the routers left "online" by a controller that died without closing
// their sessions. Sessions alive anywhere report last_seen every persistEvery, and the
// liveness writer records it within a flush interval, so they are never stale.
func (s *Server) reapStale(ctx context.Context) {
	t := time.NewTicker(s.persistEvery)
	defer t.Stop()
	for {
		if err := s.backend.MarkStaleOffline(ctx, time.Now().Add(-StaleAfter*s.persistEvery)); err != nil && ctx.Err() == nil {
			s.log.Error("cannot mark stale routers offline", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PokeHubs asks every hub session to push the current snapshot if it changed (the embedded
// hub's Published calls it after each build).
func (s *Server) PokeHubs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		if ss.hub {
			ss.pokeAssignment()
		}
	}
}

// Connected lists the ids of routers with an open session.
func (s *Server) Connected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
