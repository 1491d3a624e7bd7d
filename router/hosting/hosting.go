// Package hosting is the router's side of the data plane: it keeps fabric links to the hubs,
// accepts the streams hubs open over them, completes the end-to-end handshake as responder and
// connects each stream to its target — only to targets assigned to this router (router/targets
// refuses everything else: a router is never an open proxy).
//
// Integration in the router daemon:
//
//	host := hosting.New(hosting.Config{
//		Endpoint: e2e.NewEndpoint(certSlot, caCert),
//		Dialer:   &targets.Dialer{Targets: assigned, Resolver: resolver},
//		Link:     fabric.LinkConfig{Credentials: fabric.Credentials{Cert: certSlot, CA: caCert}},
//	})
//	host.SetHubs(ctx, fabricAddrs) // again whenever the controller's hub list changes
package hosting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/backoff"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/router/targets"
)

// TargetDialer connects to an assigned target and refuses, with an error wrapping
// targets.ErrNotAssigned, any address:port that is not assigned. *targets.Dialer is one.
type TargetDialer interface {
	Dial(ctx context.Context, address string, port int) (net.Conn, error)
}

// Config configures a Host.
type Config struct {
	Endpoint *e2e.Endpoint     // the router's end-to-end identity
	Dialer   TargetDialer      // reaches assigned targets only
	Link     fabric.LinkConfig // how to dial hubs (credentials, keepalives)
	// SetupTimeout bounds reading a stream's request, dialing the target and the client's final
	// handshake message. Zero means 15 s.
	SetupTimeout time.Duration
	Logger       *slog.Logger
	Metrics      prometheus.Registerer // nil: no metrics
}

// Host serves streams for one router.
type Host struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	hubs   map[string]context.CancelFunc // hub address → stops its link loop
	relink chan struct{}                 // closed and replaced by Relink

	// Streams in progress (setup or relay) and the drain that waits for them to end.
	streamsMu sync.Mutex
	streams   int
	draining  bool
	idle      chan struct{} // closed when the last stream of a drain ends
}

// New returns a Host; nothing runs until SetHubs or Serve.
func New(cfg Config) *Host {
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Link.Logger == nil {
		cfg.Link.Logger = cfg.Logger
	}
	h := &Host{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Metrics), hubs: map[string]context.CancelFunc{},
		relink: make(chan struct{})}
	refused := h.cfg.Link.StreamRefused
	h.cfg.Link.StreamRefused = func(p fabric.Peer, l fabric.StreamLimit) { // counted with the streams the router refused itself
		h.metrics.streams.WithLabelValues(fabric.LimitReached.String()).Inc()
		if refused != nil {
			refused(p, l)
		}
	}
	return h
}

// SetHubs keeps one link to each hub address, reconnecting with backoff and jitter, and drops
// links to hubs no longer listed. Streams on a dropped link end with an error.
func (h *Host) SetHubs(ctx context.Context, addrs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
		if _, ok := h.hubs[a]; !ok {
			hctx, cancel := context.WithCancel(ctx)
			h.hubs[a] = cancel
			go h.maintain(hctx, a)
		}
	}
	for a, cancel := range h.hubs {
		if !want[a] {
			cancel()
			delete(h.hubs, a)
		}
	}
}

// Relink makes every hub link that is down redial now, its retry delay reset: the control
// channel just came up (or a welcome listed the hubs), so a hub that restarted with the
// controller is most likely back too. Waiting out the backoff instead (up to 10 s) kept dials
// through a restarted controller's embedded hub failing for 6.4 s after its control channel
// was back.
func (h *Host) Relink() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.relink)
	h.relink = make(chan struct{})
}

func (h *Host) relinked() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.relink
}

// maintain dials addr and serves the link until ctx ends, redialing whenever the link drops.
func (h *Host) maintain(ctx context.Context, addr string) {
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		// Taken before the dial, so that a Relink during a dial that fails is not missed.
		relink := h.relinked()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		link, err := fabric.Dial(dctx, addr, h.cfg.Link)
		cancel()
		if err != nil {
			h.log.Warn("cannot link to hub", "hub", addr, "err", err)
			select {
			case <-ctx.Done():
			case <-relink:
				bo.Reset()
			case <-time.After(bo.Next()):
			}
			continue
		}
		bo.Reset()
		h.log.Info("linked to hub", "hub", addr, "peer", link.Peer().String())
		h.metrics.links.Inc()
		err = h.Serve(ctx, link)
		h.metrics.links.Dec()
		if ctx.Err() == nil {
			h.log.Warn("hub link lost", "hub", addr, "err", err)
		}
	}
}

// Serve handles the streams a hub opens on link until the link or ctx ends; it closes link.
func (h *Host) Serve(ctx context.Context, link *fabric.Link) error {
	stop := context.AfterFunc(ctx, func() { link.Close() })
	defer stop()
	defer link.Close()
	err := link.ServeStreams(func(s net.Conn) { h.handle(ctx, s) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// handle runs one stream: request → target dial → handshake → relay.
func (h *Host) handle(ctx context.Context, s net.Conn) {
	s.SetDeadline(time.Now().Add(h.cfg.SetupTimeout))
	req, err := fabric.ReadRequest(s)
	if err != nil {
		s.Close()
		return
	}
	if !h.enter() {
		// Draining: the hub takes this answer as "try another router", so the client's dial
		// goes to the other router of the service instead of failing.
		h.metrics.streams.WithLabelValues(fabric.Unavailable.String()).Inc()
		fabric.WriteResponse(s, &fabric.Response{Code: fabric.Unavailable, Message: "router is shutting down"})
		s.Close()
		return
	}
	defer h.leave()
	target, conn, code, err := h.setup(ctx, s, req)
	h.metrics.streams.WithLabelValues(code.String()).Inc()
	if err != nil {
		h.log.Info("stream refused", "target", req.Target, "identity", req.Identity, "code", code.String(), "err", err)
		if code != fabric.OK { // the client has not been answered yet
			fabric.WriteResponse(s, &fabric.Response{Code: code, Message: err.Error()})
		}
		s.Close()
		return
	}
	s.SetDeadline(time.Time{})
	h.metrics.active.Inc()
	relay(conn, target)
	h.metrics.active.Dec()
}

// enter counts a new stream; false while draining.
func (h *Host) enter() bool {
	h.streamsMu.Lock()
	defer h.streamsMu.Unlock()
	if h.draining {
		return false
	}
	h.streams++
	return true
}

func (h *Host) leave() {
	h.streamsMu.Lock()
	defer h.streamsMu.Unlock()
	h.streams--
	if h.draining && h.streams == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}

// Drain refuses every new stream from now on (as Unavailable, so hubs send the dial to another
// router) and waits until the streams in progress have ended or ctx ends; it returns how many
// were still open then. The links stay up meanwhile: closing them would cut those streams.
// A router stopping for an upgrade or a host replacement drains first, so that a client of a
// redundant service sees no failed dial (before, SIGTERM closed the links at once and every
// stream through them failed).
func (h *Host) Drain(ctx context.Context) int {
	h.streamsMu.Lock()
	h.draining = true
	if h.streams == 0 {
		h.streamsMu.Unlock()
		return 0
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	idle := h.idle
	h.log.Info("draining: waiting for open streams to end", "streams", h.streams)
	h.streamsMu.Unlock()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
		h.streamsMu.Lock()
		defer h.streamsMu.Unlock()
		return h.streams
	}
}

// setup returns the connected target and the end-to-end connection, or the code and reason
// for refusing the stream (OK when the failure happened after the client was answered).
func (h *Host) setup(ctx context.Context, s net.Conn, req *fabric.Request) (net.Conn, *e2e.Conn, fabric.Code, error) {
	if req.Op != fabric.OpDial {
		return nil, nil, fabric.BadRequest, fmt.Errorf("routers only accept dial requests, got op %d", req.Op)
	}
	host, portStr, err := net.SplitHostPort(req.Target)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		return nil, nil, fabric.BadRequest, fmt.Errorf("target %q is not host:port", req.Target)
	}
	// The target dial and the handshake reply's key agreement overlap: both are on the new
	// stream's critical path. The key agreement goes to another goroutine and the dial stays
	// here: a goroutine just started waits for this one to block (or for an idle CPU to take
	// it, which on a small machine it often does not), and the dial blocks at once — in the
	// connect or in name resolution — while the key agreement never does. (The other way
	// round, the dial started only after the key agreement was done.)
	type responded struct {
		r     *e2e.Responder
		reply []byte
		err   error
	}
	rc := make(chan responded, 1)
	go func() {
		r, reply, err := h.cfg.Endpoint.Respond(req.Target, req.Identity, req.Payload)
		rc <- responded{r, reply, err}
	}()
	dctx, cancel := context.WithTimeout(ctx, h.cfg.SetupTimeout)
	target, err := h.cfg.Dialer.Dial(dctx, host, port)
	cancel()
	if err != nil {
		return nil, nil, dialCode(err), err
	}
	res := <-rc
	resp, reply, herr := res.r, res.reply, res.err
	if herr != nil {
		target.Close()
		return nil, nil, fabric.BadRequest, herr
	}
	if err := fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK, Payload: reply}); err != nil {
		target.Close()
		return nil, nil, fabric.OK, err
	}
	conn, err := resp.Finish(s)
	if err == nil && req.Identity != "" && conn.Peer().ID != req.Identity {
		// The hub vouched for one identity, the handshake proved another: trust neither.
		err = fmt.Errorf("hub announced identity %q, handshake proved %q", req.Identity, conn.Peer().ID)
		conn.Abort()
	}
	if err != nil {
		target.Close()
		return nil, nil, fabric.OK, err
	}
	return target, conn, fabric.OK, nil
}

// dialCode maps a target dial failure to the result the client sees; resolution failures and
// timeouts are Unreachable.
func dialCode(err error) fabric.Code {
	switch {
	case errors.Is(err, targets.ErrNotAssigned):
		return fabric.NotAuthorized
	case errors.Is(err, syscall.ECONNREFUSED):
		return fabric.TargetRefused
	default:
		return fabric.Unreachable
	}
}

// relay copies both directions until both have ended. A clean end in one direction is passed on
// as a half-close; a failure in either aborts both, so neither the client nor the target mistakes
// a broken stream for a complete one.
func relay(conn *e2e.Conn, target net.Conn) {
	errc := make(chan error, 1)
	go func() {
		_, err := conn.ReadFrom(target) // target → client
		if err == nil {
			err = conn.CloseWrite()
		}
		if err != nil {
			abort(conn, target) // also ends the other direction
		}
		errc <- err
	}()
	_, err := conn.WriteTo(target) // client → target
	if err == nil {
		err = closeWrite(target)
	}
	if err != nil {
		abort(conn, target)
		<-errc
		return
	}
	if err := <-errc; err != nil {
		return
	}
	conn.Close()
	target.Close()
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// abort resets the target connection (RST, not FIN) and ends the stream without its
// end-of-stream frame.
func abort(conn *e2e.Conn, target net.Conn) {
	if tc, ok := target.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	target.Close()
	conn.Abort()
}

type metrics struct {
	links   prometheus.Gauge
	active  prometheus.Gauge
	streams *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		links: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_router_hub_links",
			Help: "Fabric links to hubs that are up.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_router_streams_active",
			Help: "Streams currently relayed to targets.",
		}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_router_streams_total",
			Help: "Streams hubs asked for, by result.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.links, m.active, m.streams)
	}
	return m
}
