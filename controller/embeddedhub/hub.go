// Package hub is the controller's side of the hubs. Embedded is the controller's own hub on the
// fabric plane: it builds the policy snapshot from the store on start and again after every
// change the store's feed announces, so that a service policy added or deleted takes effect
// within a second while no dial asks the controller anything. Backend gives the control
// channel the same snapshot for standalone hubs (`ztna-router run --hub`) and issues their hub
// certificates.
package embeddedhub

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/hubnode"
	"github.com/ztna/ztna/internal/pki"
)

// Snapshot reads what a hub needs from the store: every service (with its router roles),
// router (roles, cost, latest enrolment), identity (roles) and service policy.
func Snapshot(ctx context.Context, st store.Store) (control.HubSnapshot, error) {
	snap := control.HubSnapshot{Services: []control.HubService{}, Routers: []control.HubRouter{},
		Identities: []control.HubIdentity{}, Policies: []control.HubPolicy{}}
	services, err := st.ListServices(ctx)
	if err != nil {
		return snap, err
	}
	for i := range services {
		ws, err := control.ServiceFromAPI(&services[i])
		if err != nil {
			return snap, err
		}
		snap.Services = append(snap.Services, control.HubService{Service: ws, RouterRoles: services[i].RouterRoles})
	}
	routers, err := st.ListRouters(ctx)
	if err != nil {
		return snap, err
	}
	enrolled, err := store.LatestEnrolments(ctx, st, api.KindRouter)
	if err != nil {
		return snap, err
	}
	for _, r := range routers {
		snap.Routers = append(snap.Routers, control.HubRouter{ID: r.ID, Roles: r.Roles, Cost: r.Cost, EnrolledAt: enrolled[r.ID]})
	}
	identities, err := st.ListIdentities(ctx)
	if err != nil {
		return snap, err
	}
	for _, i := range identities {
		snap.Identities = append(snap.Identities, control.HubIdentity{ID: i.ID, Roles: i.Roles})
	}
	policies, err := st.ListServicePolicies(ctx)
	if err != nil {
		return snap, err
	}
	for _, p := range policies {
		snap.Policies = append(snap.Policies, control.HubPolicy{IdentityRoles: p.IdentityRoles, ServiceNames: p.ServiceNames})
	}
	return snap, nil
}

// Affects reports whether a store change can change a hub snapshot: anything but the status
// reports routers send and keys created or deleted (a key used is a router's enrolment, a
// key revoked is cheaper to rebuild for than to tell apart).
func Affects(c store.Change) bool {
	switch c.Collection {
	case store.Services, store.Identities, store.ServicePolicies, store.All:
		return true
	case store.Routers:
		return c.Op != store.OpState
	case store.Keys:
		return c.Op == store.OpUpdate
	}
	return false
}

// Config configures the embedded hub.
type Config struct {
	Store store.Store
	Cert  *pki.CertSlot     // the controller's hub certificate (ztna://hub/<name>)
	CA    *x509.Certificate // the network CA
	// LinkTimeout is how long a router's or identity's link may stay silent before it is
	// closed and its streams are cut (fabric.link_timeout). Zero means fabric's default.
	LinkTimeout time.Duration
	// Metrics receives the hub's metrics (links, dials, per-router health and cost).
	Metrics prometheus.Registerer
	Logger  *slog.Logger
	// Records chooses what carries the links' TLS records (fabric.LinkConfig.Records).
	Records fabric.Records
	// Limits bound what one client identity can make the hub hold (zero fields: defaults).
	Limits hub.Limits
	// Publish, when set, receives every snapshot built (for Backend.Published).
	Publish *Published
}

// Embedded is the controller's hub: a controller.Component for the fabric plane.
type Embedded struct {
	store  store.Store
	node   *hubnode.Node
	log    *slog.Logger
	builds prometheus.Counter
	pub    *Published
}

// FoldInterval is how long the embedded hub collects changes after the first one before it
// rebuilds its snapshot: a burst of changes (a terraform apply of 200 services; the feed
// hands them over one at a time) costs one rebuild per interval instead of one per change
// (196 rebuilds for 200 creates before). 100 ms is a tenth of the second a policy change may
// take to reach the hub.
const FoldInterval = 100 * time.Millisecond

// New assembles the embedded hub; it serves from Serve on.
func New(cfg Config) *Embedded {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	node := hubnode.New(hub.Config{Credentials: fabric.Credentials{Cert: cfg.Cert, CA: cfg.CA},
		KeepaliveTimeout: cfg.LinkTimeout, Logger: cfg.Logger, Metrics: cfg.Metrics, Records: cfg.Records, Limits: cfg.Limits})
	e := &Embedded{store: cfg.Store, node: node, log: cfg.Logger, pub: cfg.Publish, builds: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ztna_hub_snapshot_builds_total", Help: "Policy snapshots the embedded hub built from the store (changes within FoldInterval share one)."})}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(e.builds)
	}
	return e
}

// Node is the running hub (for status and tests).
func (e *Embedded) Node() *hubnode.Node { return e.node }

// retryBuild spaces attempts to read the snapshot while the store fails.
const retryBuild = time.Second

// Serve keeps the snapshot current and relays fabric links accepted on ln until ctx ends.
func (e *Embedded) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before the first read, so that no change between the two is lost.
	changes := e.store.Subscribe(ctx)
	go e.follow(ctx, changes)
	return e.node.Serve(ctx, ln)
}

// follow builds the snapshot now and after relevant changes: the first change opens a window
// of FoldInterval, and every change until it closes is folded into one rebuild.
func (e *Embedded) follow(ctx context.Context, changes <-chan store.Change) {
	retry := time.NewTimer(0) // the first build
	defer retry.Stop()
	var fold <-chan time.Time // open window: a rebuild is due when it fires
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			if Affects(c) && fold == nil {
				fold = time.After(FoldInterval)
			}
			continue
		case <-fold:
			fold = nil
		case <-retry.C:
		}
		snap, err := Snapshot(ctx, e.store)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("cannot read the policy snapshot; the hub keeps the previous one", "error", err, "retry_in", retryBuild.String())
			retry.Reset(retryBuild)
			continue
		}
		e.builds.Inc()
		e.node.Update(snap)
		if e.pub != nil {
			e.pub.publish(snap)
		}
	}
}

// Backend serves standalone hubs over the control channel: their snapshot and their hub
// certificates.
type Backend struct {
	Store    store.Store
	CA       *pki.CA
	Lifetime time.Duration // of hub certificates: that of router certificates
	// Published, when set, is the embedded hub's last snapshot, served instead of reading
	// the store (once it has one).
	Published *Published
}

// HubSnapshot returns the current snapshot: the embedded hub's last one (versioned), or one
// read from the store now (version 0).
func (b *Backend) HubSnapshot(ctx context.Context) (control.HubSnapshot, error) {
	if b.Published != nil {
		if snap, ok := b.Published.Latest(); ok {
			return snap, nil
		}
	}
	return Snapshot(ctx, b.Store)
}

// ErrNotHub refuses a hub certificate to a router without the hub role.
var ErrNotHub = errors.New("router does not hold the role " + api.RoleHub)

// IssueHubCertificate issues ztna://hub/<routerID> for the CSR's key, only to a router that
// exists and holds the hub role, and returns the PEM chain.
func (b *Backend) IssueHubCertificate(ctx context.Context, routerID string, csrPEM []byte) ([]byte, error) {
	r, err := b.Store.GetRouter(ctx, routerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("router %s %w", routerID, issuer.ErrSubjectGone)
	}
	if err != nil {
		return nil, err
	}
	if !slices.Contains(r.Roles, api.RoleHub) {
		return nil, fmt.Errorf("router %s (%s): %w; add it to run this router as a hub", r.Name, routerID, ErrNotHub)
	}
	csr, err := issuer.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	iss, err := b.CA.IssueFromCSR(csr, api.KindHub, routerID, b.Lifetime)
	if err != nil {
		return nil, err
	}
	return iss.ChainPEM, nil
}
