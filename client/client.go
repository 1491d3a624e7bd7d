// Package client is the Go SDK an integration runtime uses to reach services through the ztna
// overlay: Dial("prod-db.customerdomain.me:5432") returns a net.Conn that is end-to-end encrypted
// to the router hosting the service; Services lists what the identity may dial.
//
// The client keeps one fabric link per hub it uses (TLS 1.3, its identity certificate, the hub's
// verified against the network CA), opened on first use. A dial goes to the healthy hub with the
// lowest round-trip time; when a hub is down or has no route, the next one is tried.
//
//	c, err := client.New(client.Config{Cert: pki.NewCertSlot(cert), CA: caCert, Hubs: hubs})
//	conn, err := c.Dial(ctx, "prod-db.customerdomain.me:5432")
package client

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// Errors a dial can fail with; compare with errors.Is.
var (
	// ErrNotAuthorized: no service policy lets this identity dial the target (also returned for
	// targets that are no service at all, which stay invisible).
	ErrNotAuthorized = fabric.ErrNotAuthorized
	// ErrNoRoute: the service exists for this identity, but no healthy router hosts it.
	ErrNoRoute = fabric.ErrNoRoute
	// ErrTargetRefused: the router reached the target host, which refused the connection.
	ErrTargetRefused = fabric.ErrTargetRefused
	// ErrUnreachable: the routers could not resolve or reach the target.
	ErrUnreachable = fabric.ErrUnreachable
	// ErrLimitReached: a hub limit refused the stream or link (this identity has too many
	// streams, setups, watches or links open there); the error names the limit. Other hubs are
	// tried first.
	ErrLimitReached = fabric.ErrLimitReached
	// ErrNoHub: no hub could be reached.
	ErrNoHub = errors.New("no hub reachable")
)

// Service is a service the identity may dial.
type Service = fabric.ServiceInfo

// Config configures a Client.
type Config struct {
	Cert *pki.CertSlot     // the identity's certificate and key; renewals replace it in place
	CA   *x509.Certificate // the network CA
	Hubs []string          // fabric addresses (host:port) of the hubs, in order of preference
	// DialTimeout bounds a Dial or Services call whose context has no deadline. Zero means 15 s.
	DialTimeout       time.Duration
	KeepaliveInterval time.Duration // zero: fabric defaults
	KeepaliveTimeout  time.Duration
	// MaxSetups bounds the streams this client has in setup at once (dials, lists and watches
	// waiting for the hub's answer); more wait their turn. It stays below the hubs'
	// setups_per_link (128 by default), so that a burst of dials is never refused by it. Zero
	// means DefaultMaxSetups.
	MaxSetups int
	Logger    *slog.Logger
	// Records chooses what carries the links' TLS records (fabric.LinkConfig.Records; empty:
	// the ZTNA_FABRIC_RECORDS environment variable, else tlsrecord).
	Records fabric.Records
	// AllowLegacyHubs lets the client link to hubs that speak only ztna-fabric/1 (from before
	// the per-link memory budget), at most fabric.LegacyMaxStreams streams a link; without it
	// such a hub's link fails, saying so.
	AllowLegacyHubs bool
}

// DefaultMaxSetups is Config.MaxSetups by default: half the hubs' default setups_per_link.
const DefaultMaxSetups = 64

// Client dials services. It is safe for concurrent use.
type Client struct {
	cfg     Config
	linkCfg fabric.LinkConfig
	ep      *e2e.Endpoint
	setups  chan struct{} // a token per stream in setup (Config.MaxSetups)

	mu     sync.Mutex
	hubs   []*hub
	closed bool
}

type hub struct {
	addr   string
	linkMu sync.Mutex // held while linking, so concurrent dials share one new link

	mu       sync.Mutex // guards the fields below; never held across network I/O
	link     *fabric.Link
	failures int
	retryAt  time.Time
}

func (h *hub) current() *fabric.Link {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.link != nil && h.link.Err() == nil {
		return h.link
	}
	return nil
}

// New returns a client; links to hubs are opened on first use.
func New(cfg Config) (*Client, error) {
	if cfg.Cert == nil || cfg.Cert.Get() == nil {
		return nil, errors.New("client: no identity certificate configured")
	}
	if cfg.CA == nil {
		return nil, errors.New("client: no CA certificate configured")
	}
	if len(cfg.Hubs) == 0 {
		return nil, errors.New("client: no hub addresses configured")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSetups <= 0 {
		cfg.MaxSetups = DefaultMaxSetups
	}
	c := &Client{
		setups: make(chan struct{}, cfg.MaxSetups),
		cfg:    cfg,
		linkCfg: fabric.LinkConfig{
			Credentials:       fabric.Credentials{Cert: cfg.Cert, CA: cfg.CA},
			KeepaliveInterval: cfg.KeepaliveInterval, KeepaliveTimeout: cfg.KeepaliveTimeout,
			Logger: cfg.Logger, Records: cfg.Records,
			LinkLimits: fabric.LinkLimits{AllowLegacy: cfg.AllowLegacyHubs},
		},
		ep: e2e.NewEndpoint(cfg.Cert, cfg.CA),
	}
	c.SetHubs(cfg.Hubs)
	return c, nil
}

// SetHubs replaces the hub list (for example when the controller lists other hubs). Links to
// hubs still listed are kept.
func (c *Client) SetHubs(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next []*hub
	for _, a := range addrs {
		i := slices.IndexFunc(c.hubs, func(h *hub) bool { return h.addr == a })
		if i >= 0 {
			next = append(next, c.hubs[i])
			c.hubs = slices.Delete(c.hubs, i, i+1)
		} else {
			next = append(next, &hub{addr: a})
		}
	}
	for _, gone := range c.hubs {
		gone.close()
	}
	c.hubs = next
}

// Close closes every link; established connections end with an error.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, h := range c.hubs {
		h.close()
	}
	return nil
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.link != nil {
		h.link.Close()
		h.link = nil
	}
}

// open opens a stream on link once fewer than MaxSetups of the client's are in setup.
func (c *Client) open(ctx context.Context, link *fabric.Link, req *fabric.Request) (net.Conn, *fabric.Response, error) {
	select {
	case c.setups <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-c.setups }()
	return link.Open(ctx, req)
}

// Dial connects to target ("host:port", as the service is named) through the overlay.
func (c *Client) Dial(ctx context.Context, target string) (net.Conn, error) {
	if _, port, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("ztna: dial %q: target must be host:port", target)
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("ztna: dial %q: port must be 1-65535", target)
	}
	var conn net.Conn
	err := c.withHub(ctx, func(ctx context.Context, link *fabric.Link) error {
		in, hello, err := c.ep.Initiate(target)
		if err != nil {
			return err
		}
		s, resp, err := c.open(ctx, link, &fabric.Request{Op: fabric.OpDial, Target: target, Payload: hello})
		if err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			s.SetDeadline(dl)
		}
		ec, err := in.Finish(s, resp.Payload)
		if err != nil {
			s.Close()
			return err
		}
		s.SetDeadline(time.Time{})
		conn = ec
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ztna: dial %s: %w", target, err)
	}
	return conn, nil
}

// Services lists the services this identity may dial.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var out []Service
	err := c.withHub(ctx, func(ctx context.Context, link *fabric.Link) error {
		s, resp, err := c.open(ctx, link, &fabric.Request{Op: fabric.OpList})
		if err != nil {
			return err
		}
		s.Close()
		return json.Unmarshal(resp.Payload, &out)
	})
	if err != nil {
		return nil, fmt.Errorf("ztna: list services: %w", err)
	}
	return out, nil
}

// withHub runs op on the best hub's link, moving on to the next hub when a hub cannot be
// reached, its link fails, or it has no route (another hub may have routers this one lacks).
// Authoritative answers — not authorized, target refused or unreachable from the routers —
// end the search.
func (c *Client) withHub(ctx context.Context, op func(context.Context, *fabric.Link) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.DialTimeout)
		defer cancel()
	}
	hubs, err := c.ordered()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hubs {
		link, err := c.linkTo(ctx, h)
		if err == nil {
			err = op(ctx, link)
			if err == nil {
				return nil
			}
			var fe *fabric.Error
			if errors.As(err, &fe) && fe.Code != fabric.NoRoute && fe.Code != fabric.Unavailable && fe.Code != fabric.LimitReached {
				return err
			}
			if errors.Is(err, e2e.ErrHandshake) {
				return err
			}
		}
		errs = append(errs, fmt.Errorf("hub %s: %w", h.addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("%w: %w", ErrNoHub, errors.Join(errs...))
}

// ordered returns the hubs to try: linked and healthy ones by round-trip time, then unlinked ones
// in configuration order, then those still backing off after a failure or gone silent.
func (c *Client) ordered() ([]*hub, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("client closed")
	}
	type ranked struct {
		h    *hub
		tier int
		rtt  time.Duration
	}
	now := time.Now()
	var rs []ranked
	for _, h := range c.hubs {
		h.mu.Lock()
		r := ranked{h: h, tier: 1}
		switch {
		case h.link != nil && h.link.Healthy():
			r.tier, r.rtt = 0, h.link.RTT()
		case h.link != nil && h.link.Err() == nil: // linked but silent: a last resort
			r.tier = 2
		case now.Before(h.retryAt):
			r.tier = 2
		}
		h.mu.Unlock()
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a.tier != b.tier {
			return cmp.Compare(a.tier, b.tier)
		}
		return cmp.Compare(a.rtt, b.rtt)
	})
	out := make([]*hub, len(rs))
	for i, r := range rs {
		out[i] = r.h
	}
	return out, nil
}

// linkTo returns a live link to h, dialing one if needed.
func (c *Client) linkTo(ctx context.Context, h *hub) (*fabric.Link, error) {
	if l := h.current(); l != nil {
		return l, nil
	}
	h.linkMu.Lock()
	defer h.linkMu.Unlock()
	if l := h.current(); l != nil { // another dial linked while we waited
		return l, nil
	}
	link, err := fabric.Dial(ctx, h.addr, c.linkCfg)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.failures++
		h.retryAt = time.Now().Add(min(100*time.Millisecond<<min(h.failures, 6), 5*time.Second))
		return nil, err
	}
	h.link, h.failures, h.retryAt = link, 0, time.Time{}
	c.cfg.Logger.Debug("linked to hub", "hub", h.addr, "peer", link.Peer().String())
	return link, nil
}
