package hosting

import (
	"context"
	"crypto/x509"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// LinksConfig configures the fabric links of one router.
type LinksConfig struct {
	Cert *pki.CertSlot     // the router's certificate; renewals replace it in place
	CA   *x509.Certificate // the network CA
	// Hubs are the fabric addresses (host:port) known at start (daemon.Router.Hubs: the
	// controller's last list, else the enrolled configuration's).
	Hubs []string
	// Dialer reaches the router's assigned targets and refuses everything else.
	Dialer TargetDialer
	// LinkTimeout is how long a link may stay silent before it is closed and its streams are
	// cut (--link-timeout). Zero means fabric's default.
	LinkTimeout time.Duration
	// MaxStreams bounds the streams a hub may have open on its link to this router (zero:
	// fabric.DefaultMaxStreamsDialed); beyond it the hub gets "limit reached" and tries
	// another router.
	MaxStreams int
	Logger     *slog.Logger
	Metrics    prometheus.Registerer // nil: no metrics
	// Records chooses what carries the links' TLS records (fabric.LinkConfig.Records).
	Records fabric.Records
	// AllowLegacyHubs lets the router link to hubs that speak only ztna-fabric/1 (from before
	// the per-link memory budget; ztna-router run --fabric-legacy-peers), at most
	// fabric.LegacyMaxStreams streams a link; without it such a hub's link fails, saying so.
	AllowLegacyHubs bool
}

// Links is the router daemon's component around Host: it keeps a fabric link to every hub —
// those the router starts with (the controller's last list, else the enrolled one) until the
// controller's control channel names the current ones. SetHubs may be called at any time,
// before or during Run.
type Links struct {
	host *Host
	log  *slog.Logger

	mu      sync.Mutex
	hubs    []string
	changed chan struct{} // capacity 1: "hubs changed"
}

// NewLinks builds the component; nothing is dialled before Run.
func NewLinks(cfg LinksConfig) *Links {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host := New(Config{
		Endpoint: e2e.NewEndpoint(cfg.Cert, cfg.CA),
		Dialer:   cfg.Dialer,
		Link: fabric.LinkConfig{Credentials: fabric.Credentials{Cert: cfg.Cert, CA: cfg.CA}, KeepaliveTimeout: cfg.LinkTimeout, Records: cfg.Records,
			LinkLimits: fabric.LinkLimits{MaxStreams: cfg.MaxStreams, AllowLegacy: cfg.AllowLegacyHubs}},
		Logger:  cfg.Logger,
		Metrics: cfg.Metrics,
	})
	return &Links{host: host, log: cfg.Logger, hubs: dedupe(cfg.Hubs), changed: make(chan struct{}, 1)}
}

// SetHubs replaces the hub list (the controller's current one, from each welcome) and makes
// the links that are down redial at once (Host.Relink). An empty list is ignored: a router with
// no hub could serve nobody, so it keeps the hubs it knows.
func (l *Links) SetHubs(addrs []string) {
	addrs = dedupe(addrs)
	if len(addrs) == 0 {
		return
	}
	l.mu.Lock()
	same := slices.Equal(addrs, l.hubs)
	l.hubs = addrs
	l.mu.Unlock()
	l.host.Relink()
	if same {
		return
	}
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Hubs returns the hub addresses the router links to.
func (l *Links) Hubs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hubs)
}

// Run keeps the links until ctx ends.
func (l *Links) Run(ctx context.Context) error {
	for {
		hubs := l.Hubs()
		if len(hubs) == 0 {
			l.log.Warn("no hub known: neither the enrolment configuration nor the saved hub list has a fabric address; waiting for the controller to name one")
		} else {
			l.log.Info("linking to hubs", "hubs", hubs)
		}
		l.host.SetHubs(ctx, hubs)
		select {
		case <-ctx.Done():
			return nil
		case <-l.changed:
		}
	}
}

// Drain refuses new streams and waits for the open ones to end, or for ctx (Host.Drain).
func (l *Links) Drain(ctx context.Context) int { return l.host.Drain(ctx) }

func dedupe(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
