// Package controlclient keeps a router's control channel to the controller: it dials out over
// mutual TLS, says hello, sends heartbeats with service health, installs service assignments into
// the router's targets set, renews the router's certificate on the open connection, and
// reconnects forever — except after a revocation: within about a second while the controller is
// merely restarting, with exponential backoff when it stays away or refuses, always with jitter.
package controlclient

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

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/metrics"
	"github.com/ztna/ztna/router/targets"
)

// ErrRevoked ends Run: the controller deleted this router or revoked its certificate, so no
// reconnect can succeed; only enrolling again with a new registration key helps.
var ErrRevoked = errors.New("this router was revoked by the controller; enrol it again with a new registration key")

// Credentials are the router's identity as the control channel needs it.
type Credentials interface {
	ControlTLS() *tls.Config
	RenewAt() time.Time
	CSR() ([]byte, error)
	Install(chainPEM []byte) error
	Leaf() *x509.Certificate
}

// HealthSource supplies the latest per-service health for heartbeats.
type HealthSource interface {
	Results() []control.ServiceHealth
}

// Client runs the control channel. Fields must be set before Run.
type Client struct {
	// Endpoints are the controller's control addresses (host:port), dialled in turn. A welcome
	// that lists the controller's current ones replaces them for the following reconnects.
	Endpoints []string
	// Fallback lists endpoints dialled after Endpoints whatever the controller lists (the
	// daemon passes the enrolled ones), so that a mistaken list cannot strand the router.
	Fallback    []string
	Credentials Credentials
	Hello       control.Hello
	Targets     *targets.Set
	Health      HealthSource
	Metrics     *metrics.Router
	Logger      *slog.Logger
	// OnAssignment, when set, is called with every assignment after it is installed (the daemon
	// persists it so that a restarted router can host while the controller is unreachable).
	OnAssignment func([]control.Service)
	// OnHubs, when set, receives the fabric addresses (host:port) of the hubs the controller's
	// welcome lists (the router's fabric links follow them).
	OnHubs func([]string)
	// OnHubSnapshot, when set, receives every hub snapshot (Hello.Hub routers only).
	OnHubSnapshot func(control.HubSnapshot)
	// OnEndpoints, when set, receives the controller's control endpoints whenever a welcome
	// changes them (the daemon saves them, so that a restarted router dials them too).
	OnEndpoints func([]string)
	// OnSession, when set, receives the control endpoint of every session once it is up.
	OnSession func(endpoint string)
	// OnHeartbeatAck, when set, receives the time from each heartbeat to its ack.
	OnHeartbeatAck func(time.Duration)

	connected atomic.Bool
	current   atomic.Pointer[session] // the open session, for Certify
}

// ErrNotConnected is returned by Certify while the control channel is down.
var ErrNotConnected = errors.New("control channel is not connected")

// Certify asks the controller over the open control channel for a certificate of kind (for
// example control.CertKindHub) for the key of the PEM CSR, and returns the PEM chain.
func (c *Client) Certify(ctx context.Context, kind string, csrPEM []byte) ([]byte, error) {
	s := c.current.Load()
	if s == nil {
		return nil, ErrNotConnected
	}
	r, err := s.request(ctx, control.Renew{CSR: string(csrPEM), Kind: kind})
	if err != nil {
		return nil, err
	}
	return []byte(r.Certificate), nil
}

// Connected reports whether the control channel is up (welcome received, not yet lost).
func (c *Client) Connected() bool { return c.connected.Load() }

// Run keeps the control channel up until ctx ends (nil) or the router is revoked (ErrRevoked).
// Between attempts it waits as retryPolicy says: briefly while the controller is unreachable (a
// restart), longer when the controller refuses or keeps dropping the session.
func (c *Client) Run(ctx context.Context) error {
	if len(c.Endpoints) == 0 {
		return errors.New("no controller control endpoint configured; re-enrol the router")
	}
	retry := newRetryPolicy()
	endpoints := newRotation(c.routerID(), c.Endpoints, c.Fallback)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.Metrics.Reconnect()
		}
		endpoint := endpoints.pick()
		o, lasted, err := c.session(ctx, endpoints, retry, endpoint)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrRevoked) {
			c.Logger.Error("control channel closed for good", "endpoint", endpoint, "error", err)
			return err
		}
		var delay time.Duration
		if busy := (*BusyError)(nil); errors.As(err, &busy) {
			delay = retry.busy(busy.RetryAfter)
		} else {
			delay = retry.next(o, lasted, time.Now())
		}
		c.Logger.Warn("control channel down; reconnecting", "endpoint", endpoint, "error", c.explain(err), "retry_in", delay.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// explain adds advice to errors an operator can fix.
func (c *Client) explain(err error) string {
	if leaf := c.Credentials.Leaf(); leaf != nil && time.Now().After(leaf.NotAfter) {
		return fmt.Sprintf("%v (the router's certificate expired at %s without being renewed; enrol it again with a new registration key)", err, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return err.Error()
}

// helloTimeout bounds the TLS handshake and the wait for the controller's welcome.
const helloTimeout = 10 * time.Second

// maxClockSkew is the clock difference to the controller worth a warning (preflight's default).
const maxClockSkew = 30 * time.Second

// dialTimeout bounds the TCP connection to one endpoint, so that an unreachable one does not
// hold up trying the next.
const dialTimeout = 5 * time.Second

// session runs one control session on endpoint until it ends; it says how the attempt ended and,
// for a session that was up, for how long. The welcome's endpoint list goes into endpoints.
func (c *Client) session(ctx context.Context, endpoints *rotation, retry *retryPolicy, endpoint string) (outcome, time.Duration, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		return unreachable, 0, err
	}
	tc := tls.Client(nc, c.Credentials.ControlTLS())
	conn := control.NewConn(tc)
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { conn.Close() })

	w, err := c.hello(conn, tc)
	if err != nil {
		return refused, 0, err
	}
	up := time.Now()
	interval := w.HeartbeatInterval()
	c.Logger.Info("control channel up", "endpoint", endpoint, "router_id", w.RouterID, "name", w.Name, "roles", w.Roles,
		"heartbeat_interval", interval.String())
	if skew := time.Since(w.ServerTime); !w.ServerTime.IsZero() && (skew > maxClockSkew || skew < -maxClockSkew) {
		c.Logger.Warn("this host's clock disagrees with the controller's; certificates are short-lived, synchronise it with NTP",
			"skew", skew.Round(time.Second).String())
	}
	if len(w.Fabric) > 0 && c.OnHubs != nil {
		c.OnHubs(w.Fabric)
	}
	if len(w.Control) > 0 {
		c.learnEndpoints(endpoints, w.Control, endpoint)
	}
	retry.spreadOver(time.Duration(w.ReconnectSpreadMS) * time.Millisecond)
	s := &session{Client: c, conn: conn, interval: interval, pending: map[uint64]chan control.Renewed{}}
	if c.OnSession != nil {
		c.OnSession(endpoint)
	}
	c.connected.Store(true)
	c.current.Store(s)
	c.Metrics.SetConnected(true)
	defer func() {
		c.connected.Store(false)
		c.current.CompareAndSwap(s, nil)
		c.Metrics.SetConnected(false)
	}()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.heartbeats(ctx) }()
	go func() { defer wg.Done(); s.renewals(ctx) }()
	err = s.read()
	cancel()
	wg.Wait()
	return dropped, time.Since(up), err
}

// learnEndpoints installs the controller's control endpoints from a welcome on endpoint.
func (c *Client) learnEndpoints(endpoints *rotation, pushed []string, endpoint string) {
	list, err := ValidEndpoints(pushed)
	if err != nil {
		c.Logger.Warn("ignoring the controller's list of control endpoints; keeping the current one", "error", err)
		return
	}
	if !endpoints.replace(list, endpoint) {
		return
	}
	c.Logger.Info("controller control endpoints updated", "control", list)
	if c.OnEndpoints != nil {
		c.OnEndpoints(slices.Clone(list))
	}
}

// hello completes the TLS handshake, says hello and waits for the welcome, all within
// helloTimeout.
func (c *Client) hello(conn *control.Conn, tc *tls.Conn) (control.Welcome, error) {
	var w control.Welcome
	tc.SetDeadline(time.Now().Add(helloTimeout))
	defer tc.SetDeadline(time.Time{})
	if err := tc.Handshake(); err != nil {
		return w, err
	}
	hello := c.Hello
	hello.Protocol = control.ProtocolVersion
	hello.MaxMessage = conn.MaxMessage()
	if err := conn.Send(control.TypeHello, 0, hello); err != nil {
		return w, err
	}
	env, err := conn.Receive()
	if err != nil {
		return w, fmt.Errorf("waiting for welcome: %w", err)
	}
	if err := terminal(env); err != nil {
		return w, err
	}
	if env.Type != control.TypeWelcome {
		return w, fmt.Errorf("controller sent %s before welcome", env.Type)
	}
	if err := env.Decode(&w); err != nil {
		return w, err
	}
	if w.HeartbeatInterval() <= 0 {
		return w, fmt.Errorf("controller sent heartbeat interval %v", w.HeartbeatInterval())
	}
	conn.SetPeerMaxMessage(w.MaxMessage)
	return w, nil
}

// terminal turns the controller's closing messages into errors.
func terminal(env control.Envelope) error {
	switch env.Type {
	case control.TypeRevoked:
		var r control.Revoked
		env.Decode(&r)
		return fmt.Errorf("%w (%s)", ErrRevoked, r.Reason)
	case control.TypeError:
		var e control.Error
		env.Decode(&e)
		if e.RetryAfterMS > 0 {
			return &BusyError{Message: e.Message, RetryAfter: time.Duration(e.RetryAfterMS) * time.Millisecond}
		}
		return fmt.Errorf("controller refused the session: %s", e.Message)
	}
	return nil
}

// BusyError is the controller shedding a backlog of admissions: the router waits RetryAfter
// (and up to as much again) before it tries again.
type BusyError struct {
	Message    string
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("controller busy, asked to retry after %v: %s", e.RetryAfter, e.Message)
}

// routerID is the id in the router's certificate: it seeds the router's endpoint order.
func (c *Client) routerID() string {
	leaf := c.Credentials.Leaf()
	if leaf == nil {
		return ""
	}
	_, id, err := pki.Identity(leaf)
	if err != nil {
		return ""
	}
	return id
}

type session struct {
	*Client
	conn     *control.Conn
	interval time.Duration
	sentAt   atomic.Int64 // unix nanoseconds of the last heartbeat

	mu      sync.Mutex
	pending map[uint64]chan control.Renewed
}

func (s *session) read() error {
	for {
		s.conn.SetReadDeadline(time.Now().Add(s.interval * control.HeartbeatMisses))
		env, err := s.conn.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("controller silent for %v: %w", s.interval*control.HeartbeatMisses, err)
			}
			return err
		}
		if err := terminal(env); err != nil {
			return err
		}
		switch env.Type {
		case control.TypeAssignment:
			var a control.Assignment
			if err := env.Decode(&a); err != nil {
				return err
			}
			s.Targets.Replace(a.Services)
			s.Metrics.SetAssigned(len(a.Services))
			s.Logger.Info("service assignment received", "services", len(a.Services))
			if s.OnAssignment != nil {
				s.OnAssignment(a.Services)
			}
		case control.TypeRenewed:
			var r control.Renewed
			if err := env.Decode(&r); err != nil {
				return err
			}
			s.mu.Lock()
			ch := s.pending[env.ID]
			delete(s.pending, env.ID)
			s.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		case control.TypeHubSnapshot:
			var hs control.HubSnapshot
			if err := env.Decode(&hs); err != nil {
				return err
			}
			if s.OnHubSnapshot != nil {
				s.OnHubSnapshot(hs)
			}
		case control.TypeHeartbeatAck:
			if s.OnHeartbeatAck != nil {
				s.OnHeartbeatAck(time.Since(time.Unix(0, s.sentAt.Load())))
			}
		case control.TypeUndeliverable:
			var u control.Undeliverable
			if err := env.Decode(&u); err != nil {
				return err
			}
			s.Logger.Error("the controller could not send a message: larger than this router accepts", "message", u.Type, "bytes", u.Size, "limit", u.Limit)
		default:
			s.Logger.Debug("ignoring unknown control message", "type", env.Type)
		}
	}
}

func (s *session) heartbeats(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		hb := control.Heartbeat{SentAt: time.Now().UTC(), Services: s.Health.Results()}
		s.sentAt.Store(hb.SentAt.UnixNano())
		err := s.conn.Send(control.TypeHeartbeat, 0, hb)
		var tooLarge *control.TooLargeError
		if errors.As(err, &tooLarge) {
			// Liveness matters more than health: the controller (one that predates chunked
			// messages) hears the heartbeat, without the service health it would refuse.
			s.Logger.Error("service health not reported: the heartbeat is larger than the controller accepts", "services", len(hb.Services), "error", err)
			err = s.conn.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: hb.SentAt})
		}
		if err != nil {
			s.conn.Close() // the reader notices and reports the session as down
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// renewTimeout bounds one renewal round trip; retryRenewal spaces failed attempts.
const (
	renewTimeout = 10 * time.Second
	retryRenewal = 2 * time.Second
)

func (s *session) renewals(ctx context.Context) {
	s.Metrics.SetCertExpiry(s.Credentials.Leaf().NotAfter)
	for {
		wait := time.Until(s.Credentials.RenewAt())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := s.renew(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.Metrics.Renewal(false)
			s.Logger.Warn("certificate renewal failed; retrying", "error", err, "expires", s.Credentials.Leaf().NotAfter)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryRenewal):
			}
			continue
		}
		leaf := s.Credentials.Leaf()
		s.Metrics.Renewal(true)
		s.Metrics.SetCertExpiry(leaf.NotAfter)
		s.Logger.Info("certificate renewed", "expires", leaf.NotAfter.UTC(), "serial", leaf.SerialNumber.Text(16))
	}
}

func (s *session) renew(ctx context.Context) error {
	csr, err := s.Credentials.CSR()
	if err != nil {
		return err
	}
	r, err := s.request(ctx, control.Renew{CSR: string(csr)})
	if err != nil {
		return err
	}
	return s.Credentials.Install([]byte(r.Certificate))
}

// request sends a renew message and waits for its answer; a refusal is an error.
func (s *session) request(ctx context.Context, req control.Renew) (control.Renewed, error) {
	id := s.conn.NextID()
	ch := make(chan control.Renewed, 1)
	s.mu.Lock()
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	if err := s.conn.Send(control.TypeRenew, id, req); err != nil {
		return control.Renewed{}, err
	}
	select {
	case <-ctx.Done():
		return control.Renewed{}, ctx.Err()
	case <-time.After(renewTimeout):
		return control.Renewed{}, errors.New("controller did not answer the certificate request in time")
	case r := <-ch:
		if r.Error != "" {
			return r, fmt.Errorf("controller refused the certificate: %s", r.Error)
		}
		return r, nil
	}
}
