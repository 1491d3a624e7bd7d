package controlserver

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// session is one router's open control channel.
type session struct {
	s    *Server
	id   string
	conn *control.Conn
	log  *slog.Logger
	kick chan struct{}
	// recheck: the router itself may have changed (roles, deletion, enrolment), so the next
	// push looks it up again.
	recheck atomic.Bool
	cancel  context.CancelFunc
	hub     bool // runs as a standalone hub: gets snapshots and a hub certificate

	key crypto.PublicKey // the key of the certificate the session authenticated with: renewals keep it

	mu      sync.Mutex
	roles   []string  // the router's roles as last read: which service changes concern it
	expires time.Time // NotAfter of the router's newest certificate
	issued  time.Time // and when it was issued: once superseded by an enrolment, the session ends

	// What the liveness writer last got from a heartbeat (used by the reader goroutine only).
	persistedAt     time.Time
	persistedHealth []control.ServiceHealth

	// admitted ends the session's admission once its first assignment is pushed.
	admitted func()
}

// routerRoles returns the router's roles as the session last read them.
func (ss *session) routerRoles() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.roles
}

// poke asks the session to re-check its router and assignment; pokes coalesce.
func (ss *session) poke() {
	ss.recheck.Store(true)
	ss.pokeAssignment()
}

// pokeAssignment asks the session to re-check its assignment (and a hub its snapshot) only:
// the router itself did not change, so it is not looked up again (a lookup reads the router
// and its enrolments; a service change used to make every woken session do one).
func (ss *session) pokeAssignment() {
	select {
	case ss.kick <- struct{}{}:
	default:
	}
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	tc := tls.Server(nc, s.tls)
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		s.handshakes.note("control handshake failed", "remote", nc.RemoteAddr().String(), "error", err)
		return
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	_, id, err := pki.Identity(leaf)
	if err != nil { // MutualServerConfig already checked it; this cannot fail
		return
	}
	conn := control.NewConn(tc)
	log := s.log.With("router_id", id, "remote", nc.RemoteAddr().String())

	env, err := conn.Receive()
	if err != nil {
		log.Warn("no hello from router", "error", err)
		return
	}
	var hello control.Hello
	if env.Type != control.TypeHello {
		err = fmt.Errorf("first message must be hello, got %s", env.Type)
	} else if err = env.Decode(&hello); err == nil && hello.Protocol != control.ProtocolVersion {
		err = fmt.Errorf("router speaks control protocol %d, this controller speaks %d: upgrade the router", hello.Protocol, control.ProtocolVersion)
	}
	if err != nil {
		log.Warn("refusing router", "error", err)
		conn.Send(control.TypeError, 0, control.Error{Message: err.Error()})
		return
	}
	conn.SetPeerMaxMessage(hello.MaxMessage)
	conn.SetMaxMessage(control.RouterMaxMessage)
	release, retryAfter := s.admit.enter()
	if retryAfter > 0 {
		log.Debug("admission backlog: asking the router to come back later", "retry_after", retryAfter.String())
		conn.Send(control.TypeError, 0, control.Error{Message: "controller busy admitting other routers; retry later", RetryAfterMS: retryAfter.Milliseconds()})
		return
	}
	admitted := false
	defer func() {
		if !admitted {
			release()
		}
	}()

	router, err := s.routers.get(ctx, id)
	if err != nil {
		s.refuse(conn, log, err)
		return
	}
	// Refused before it can replace a session: an old certificate must not kick the
	// re-enrolled router off.
	if pki.Superseded(pki.IssuedAt(leaf), router.EnrolledAt) {
		s.revokeSuperseded(conn, log, pki.IssuedAt(leaf), router.EnrolledAt)
		return
	}
	if hello.Hub {
		if err := s.hubAllowed(router); err != nil {
			log.Warn("refusing hub", "error", err)
			conn.Send(control.TypeError, 0, control.Error{Message: err.Error()})
			return
		}
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	now := time.Now()
	ss := &session{s: s, id: id, conn: conn, log: log, kick: make(chan struct{}, 1), cancel: cancel, hub: hello.Hub,
		key: leaf.PublicKey, roles: router.Roles, expires: leaf.NotAfter, issued: pki.IssuedAt(leaf), persistedAt: now}
	s.mu.Lock()
	old := s.sessions[id]
	s.sessions[id] = ss
	s.mu.Unlock()
	if old != nil { // logged outside s.mu: a slow log writer must not stall every session
		log.Info("router reconnected; closing its previous session")
		old.cancel()
	}
	defer s.drop(ss)

	// Recorded in memory: the liveness writer stores it with the next batch, and the welcome
	// does not wait for the store.
	s.live.report(Status{RouterID: id, Online: true, At: now, Hello: &hello})
	log.Info("router online", "name", router.Name, "version", hello.Version, "failure_domain", hello.FailureDomain, "hub", hello.Hub)
	nc.SetDeadline(time.Time{})
	if err := conn.Send(control.TypeWelcome, 0, control.Welcome{RouterID: id, Name: router.Name, Roles: router.Roles,
		HeartbeatIntervalMS: s.interval.Milliseconds(), ServerTime: now.UTC(), Fabric: s.fabric, Control: s.control,
		MaxMessage: conn.MaxMessage(), ReconnectSpreadMS: s.reconnectSpread().Milliseconds()}); err != nil {
		return
	}
	admitted = true
	ss.admitted = release
	ss.run(sctx)
}

// hubAllowed says why router may not run as a standalone hub, if it may not: a snapshot
// reveals every service and identity, so only routers the operator gave the hub role get one.
func (s *Server) hubAllowed(r Router) error {
	if s.hubs == nil {
		return errors.New("this controller does not serve standalone hubs")
	}
	if !slices.Contains(r.Roles, api.RoleHub) {
		return fmt.Errorf("router %s runs as a hub but lacks the role %q: add the role to router %s (or run it without --hub)", r.Name, api.RoleHub, r.ID)
	}
	return nil
}

// refuse ends a session whose router is gone (revoked) or cannot be looked up.
func (s *Server) refuse(conn *control.Conn, log *slog.Logger, err error) {
	if errors.Is(err, ErrRouterNotFound) {
		log.Info("router deleted: revoking its session")
		conn.Send(control.TypeRevoked, 0, control.Revoked{Reason: "the router was deleted from the controller"})
		return
	}
	log.Error("cannot look up router", "error", err)
	conn.Send(control.TypeError, 0, control.Error{Message: "controller cannot look up this router; retry later"})
}

// revokeSuperseded ends the session of a certificate issued (at issued) before the router's
// latest enrolment: that certificate will never be accepted again, so the router is told it
// is revoked (ztna-router run exits 3) instead of retrying.
func (s *Server) revokeSuperseded(conn *control.Conn, log *slog.Logger, issued, enrolled time.Time) {
	log.Warn("refusing a superseded router certificate", "issued_at", issued.UTC(), "enrolled_at", enrolled.UTC())
	conn.Send(control.TypeRevoked, 0, control.Revoked{Reason: fmt.Sprintf(
		"this certificate was issued at %s, before the router was enrolled again at %s: only the newer enrolment's certificate is accepted",
		issued.UTC().Format(time.RFC3339), enrolled.UTC().Format(time.RFC3339))})
}

// superseded reports whether the session's newest certificate predates the router's latest
// enrolment, ending the session if so.
func (ss *session) superseded(r Router) bool {
	ss.mu.Lock()
	issued := ss.issued
	ss.mu.Unlock()
	if !pki.Superseded(issued, r.EnrolledAt) {
		return false
	}
	ss.s.revokeSuperseded(ss.conn, ss.log, issued, r.EnrolledAt)
	return true
}

// drop unregisters a finished session and records the router offline unless a newer session
// already took over.
func (s *Server) drop(ss *session) {
	s.mu.Lock()
	current := s.sessions[ss.id] == ss
	if current {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
	if !current {
		return
	}
	s.live.report(Status{RouterID: ss.id, Online: false, At: time.Now()})
	ss.log.Info("router offline")
}

func (ss *session) run(ctx context.Context) {
	defer ss.conn.Close()
	context.AfterFunc(ctx, func() { ss.conn.Close() })
	readErr := make(chan error, 1)
	go func() { readErr <- ss.read(ctx) }()

	// push sends the router its assignment (and a hub its snapshot) when it changed; false
	// ends the session.
	var sent []control.Service
	var sentSnap *control.HubSnapshot
	var r Router // as last looked up: a service or snapshot change leaves the router as it was
	looked := false
	push := func() bool {
		if !looked || ss.recheck.Swap(false) {
			got, err := ss.s.routers.get(ctx, ss.id)
			if errors.Is(err, ErrRouterNotFound) {
				ss.s.refuse(ss.conn, ss.log, err)
				return false
			}
			if err != nil {
				ss.log.Error("cannot look up router", "error", err)
				ss.recheck.Store(true)
				return ctx.Err() == nil // keep the session; the next change retries
			}
			if ss.superseded(got) {
				return false
			}
			if ss.hub {
				if err := ss.s.hubAllowed(got); err != nil {
					ss.log.Warn("closing hub session", "error", err)
					ss.conn.Send(control.TypeError, 0, control.Error{Message: err.Error()})
					return false
				}
			}
			r, looked = got, true
			ss.mu.Lock()
			ss.roles = r.Roles
			ss.mu.Unlock()
		}
		if ss.hub {
			if !ss.pushSnapshot(ctx, &sentSnap) {
				return false
			}
		}
		services, err := ss.s.backend.ServicesForRoles(ctx, r.Roles)
		if err != nil {
			ss.log.Error("cannot compute service assignment", "error", err)
			return true // keep the session; the next change or reconnect retries
		}
		if services == nil {
			services = []control.Service{}
		}
		if sent != nil && reflect.DeepEqual(services, sent) {
			return true
		}
		ss.s.assignmentPushes.Add(1) // before it is sent: whoever receives it sees it counted
		if err := ss.conn.Send(control.TypeAssignment, 0, control.Assignment{Services: services}); err != nil {
			ss.log.Error("cannot send the service assignment; closing the session", "services", len(services), "error", err)
			return false
		}
		sent = services
		ss.log.Info("service assignment pushed", "services", len(services))
		return true
	}
	ok := push()
	ss.admitted()
	if !ok {
		return
	}
	for {
		ss.mu.Lock()
		expiry := time.Until(ss.expires)
		ss.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case err := <-readErr:
			if err != nil && ctx.Err() == nil {
				ss.log.Info("control channel closed", "error", err)
			}
			return
		case <-ss.kick:
			if !push() {
				return
			}
		case <-time.After(expiry):
			ss.mu.Lock()
			renewed := time.Now().Before(ss.expires)
			ss.mu.Unlock()
			if renewed {
				continue
			}
			ss.log.Warn("router certificate expired without renewal: closing its session")
			ss.conn.Send(control.TypeError, 0, control.Error{Message: "your certificate expired; the controller closes sessions of expired certificates"})
			return
		}
	}
}

// pushSnapshot sends the hub snapshot unless it equals *sent; false ends the session.
func (ss *session) pushSnapshot(ctx context.Context, sent **control.HubSnapshot) bool {
	snap, err := ss.s.hubs.HubSnapshot(ctx)
	if err != nil {
		ss.log.Error("cannot read the hub snapshot", "error", err)
		return ctx.Err() == nil // keep the session; the next change retries
	}
	if *sent != nil && (snap.Version != 0 && snap.Version == (*sent).Version || snap.Version == 0 && reflect.DeepEqual(snap, **sent)) {
		return true
	}
	ss.s.snapshotPushes.Add(1)
	if err := ss.conn.Send(control.TypeHubSnapshot, 0, snap); err != nil {
		ss.log.Error("cannot send the hub snapshot", "error", err)
		return false
	}
	*sent = &snap
	ss.log.Info("hub snapshot pushed", "version", snap.Version, "services", len(snap.Services), "routers", len(snap.Routers),
		"identities", len(snap.Identities), "policies", len(snap.Policies))
	return true
}

// read handles the router's messages until the connection ends or goes silent.
func (ss *session) read(ctx context.Context) error {
	silence := ss.s.interval * control.HeartbeatMisses
	for {
		ss.conn.SetReadDeadline(time.Now().Add(silence))
		env, err := ss.conn.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("router silent for %v", silence)
			}
			return err
		}
		switch env.Type {
		case control.TypeHeartbeat:
			var hb control.Heartbeat
			if err := env.Decode(&hb); err != nil {
				return err
			}
			ss.heartbeat(hb)
			if err := ss.conn.Send(control.TypeHeartbeatAck, 0, control.HeartbeatAck{ServerTime: time.Now().UTC()}); err != nil {
				return err
			}
		case control.TypeRenew:
			var r control.Renew
			if err := env.Decode(&r); err != nil {
				return err
			}
			if err := ss.conn.Send(control.TypeRenewed, env.ID, ss.renew(ctx, r)); err != nil {
				return err
			}
		case control.TypeUndeliverable:
			logUndeliverable(ss.log, env)
		default:
			ss.log.Debug("ignoring unknown control message", "type", env.Type)
		}
	}
}

// heartbeat reports a heartbeat to the liveness writer when the health changed or the last
// report is persistEvery old: rewriting every heartbeat of every router would turn liveness
// into a database load problem. It never waits on the store.
func (ss *session) heartbeat(hb control.Heartbeat) {
	now := time.Now()
	if reflect.DeepEqual(hb.Services, ss.persistedHealth) && now.Sub(ss.persistedAt) < ss.s.persistEvery {
		return
	}
	ss.s.live.report(Status{RouterID: ss.id, Online: true, At: now, Health: hb.Services, HealthSet: true})
	ss.persistedAt, ss.persistedHealth = now, hb.Services
}

func (ss *session) renew(ctx context.Context, r control.Renew) control.Renewed {
	switch r.Kind {
	case "", api.KindRouter:
	case control.CertKindHub:
		return ss.hubCertificate(ctx, r)
	default:
		return control.Renewed{Error: fmt.Sprintf("unknown certificate kind %q", r.Kind)}
	}
	if err := ss.renewable(ctx, []byte(r.CSR)); err != nil {
		ss.log.Warn("certificate renewal refused", "error", err)
		return control.Renewed{Error: err.Error()}
	}
	chain, err := ss.s.backend.IssueRouterCertificate(ctx, ss.id, []byte(r.CSR))
	if err != nil {
		ss.log.Warn("certificate renewal refused", "error", err)
		return control.Renewed{Error: err.Error()}
	}
	leaf, err := pki.ParseCertPEM(chain)
	if err != nil {
		ss.log.Error("issued certificate does not parse", "error", err)
		return control.Renewed{Error: "controller issued an unreadable certificate"}
	}
	ss.mu.Lock()
	ss.expires, ss.issued = leaf.NotAfter, pki.IssuedAt(leaf)
	ss.mu.Unlock()
	ss.log.Info("router certificate renewed", "expires", leaf.NotAfter.UTC())
	return control.Renewed{Certificate: string(chain)}
}

// renewable refuses a router renewal for another key than the session's certificate's (a
// router renews for the key it enrolled with; a new key takes a new enrolment) and one whose
// session's certificate an enrolment superseded since the session began.
func (ss *session) renewable(ctx context.Context, csrPEM []byte) error {
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return err
	}
	if !pki.PublicKeysEqual(ss.key, csr.PublicKey) {
		return errors.New("router renewal keeps the router's key: the CSR must be for the key of the certificate this session authenticated with (a new key takes a new enrolment)")
	}
	r, err := ss.s.backend.Router(ctx, ss.id)
	if err != nil {
		return fmt.Errorf("cannot check the router: %w", err)
	}
	ss.mu.Lock()
	issued := ss.issued
	ss.mu.Unlock()
	if pki.Superseded(issued, r.EnrolledAt) {
		// The feed has not said so yet (it lags): the cached router is stale.
		ss.s.routers.invalidate(Change{RouterID: ss.id})
		ss.poke() // the session loop revokes the session
		return errors.New("certificate superseded: the router was enrolled again since this certificate was issued")
	}
	return nil
}

// hubCertificate issues a hub session its fabric certificate. It does not move the session's
// expiry, which follows the router certificate the session authenticated with.
func (ss *session) hubCertificate(ctx context.Context, r control.Renew) control.Renewed {
	if !ss.hub {
		return control.Renewed{Error: "hub certificates are issued only to routers running as hubs (hello with hub set)"}
	}
	chain, err := ss.s.hubs.IssueHubCertificate(ctx, ss.id, []byte(r.CSR))
	if err != nil {
		ss.log.Warn("hub certificate refused", "error", err)
		return control.Renewed{Error: err.Error()}
	}
	ss.log.Info("hub certificate issued")
	return control.Renewed{Certificate: string(chain)}
}

// logUndeliverable logs the router's notice that it could not send a message this controller
// would have refused for its size.
func logUndeliverable(log *slog.Logger, env control.Envelope) {
	var u control.Undeliverable
	if err := env.Decode(&u); err != nil {
		log.Warn("ignoring a malformed undeliverable notice", "error", err)
		return
	}
	log.Error("the router could not send a message: larger than this controller accepts", "message", u.Type, "bytes", u.Size, "limit", u.Limit)
}
