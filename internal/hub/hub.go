// Package hub is the relay in the middle of the data plane. Routers and client identities link to
// it (fabric links over TLS 1.3, certificates verified both ways). For each stream a client opens
// it checks the policy snapshot the controller pushed (no controller round trip per dial, so dials
// keep working while the controller is down), picks the cheapest healthy router hosting the
// service (cost = link RTT moving average + load + the router's static cost), retries on the next
// router when stream setup fails, and then relays the stream's bytes — end-to-end ciphertext it
// cannot read — without copying them through per-stream buffers.
//
// A new snapshot takes effect on live traffic too: relayed streams it no longer authorises are
// cut, and links of identities and routers it no longer lists are closed (a certificate stays
// valid until it expires; the snapshot is how a deletion reaches the hub).
//
// Integration (the controller's embedded hub or `ztna-router run --hub`):
//
//	h := hub.New(hub.Config{Credentials: fabric.Credentials{Cert: slot, CA: caCert}})
//	h.Update(snapshot)           // now and on every change of services, routers, identities, policies
//	go h.Serve(ctx, fabricListener)
package hub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// Config configures a Hub.
type Config struct {
	Credentials fabric.Credentials // the hub's certificate (kind hub or controller) and the CA
	// Authorize may refuse a verified router or identity at link setup (for example one the
	// controller deleted). Nil accepts all.
	Authorize         pki.Authorizer
	KeepaliveInterval time.Duration // zero: fabric defaults
	KeepaliveTimeout  time.Duration
	// LoadCost is what one open stream adds to a router's cost. Zero means 50 µs: a thousand
	// streams weigh as much as 50 ms of round-trip time.
	LoadCost time.Duration
	// SetupTimeout bounds a whole dial, all attempts included. Zero means 15 s.
	SetupTimeout time.Duration
	// MaxAttempts is how many routers one dial may try. Zero means 3.
	MaxAttempts int
	// Limits bound what one identity can make the hub hold; zero fields take DefaultLimits.
	Limits  Limits
	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: no metrics
	// KeyLog receives the links' TLS secrets (debugging only; see fabric.LinkConfig.KeyLog).
	KeyLog io.Writer
	// Records chooses what carries the links' TLS records (fabric.LinkConfig.Records).
	Records fabric.Records
}

// Hub relays client streams to routers.
type Hub struct {
	cfg     Config
	linkCfg fabric.LinkConfig
	log     *slog.Logger
	metrics *metrics
	ix      atomic.Pointer[index]

	// mu guards the links and streams Update must revisit; stream setup and teardown take it,
	// the relayed bytes never do.
	mu      sync.Mutex
	routers map[string][]*fabric.Link                 // router id → its live links to this hub
	links   map[fabric.Peer]map[*fabric.Link]struct{} // every router and identity link
	streams map[string]map[*relayed]struct{}          // identity → its relayed streams
	changed chan struct{}                             // closed and replaced by each Update
	clients map[string]*client                        // identity → what its links hold

	refusals *refusalLog
}

// client is what one identity's links hold, against Limits.
type client struct {
	id      string
	refs    int           // under Hub.mu: links set up or up that hold this entry
	links   int           // under Hub.mu: of those, the ones admitted (links_per_identity)
	streams *fabric.Quota // streams_per_identity, across its links
	opens   *rate.Limiter // stream_opens_per_second, across its links
}

// paceQuantum is the least a paced link's reader sleeps: an open that is due sooner goes on
// at once, in debt to the rate. Sleeping for every open instead, 10,000 opens a second cost
// as many timer wake-ups.
const paceQuantum = 5 * time.Millisecond

// pace waits until the identity may open another stream.
func (h *Hub) pace(c *client) {
	if d := c.opens.Reserve().Delay(); d >= paceQuantum {
		h.metrics.pacedOpens.Inc()
		time.Sleep(d)
	}
}

// relayed is a stream being relayed, with the dial that authorised it.
type relayed struct {
	target, service string
	client, router  net.Conn
}

// New returns a hub with an empty snapshot: every dial is refused until Update.
func New(cfg Config) *Hub {
	if cfg.LoadCost <= 0 {
		cfg.LoadCost = 50 * time.Microsecond
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 15 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	h := &Hub{
		cfg: cfg,
		linkCfg: fabric.LinkConfig{
			Credentials: cfg.Credentials, Logger: cfg.Logger,
			KeepaliveInterval: cfg.KeepaliveInterval, KeepaliveTimeout: cfg.KeepaliveTimeout,
			KeyLog: cfg.KeyLog, Records: cfg.Records,
		},
		log:     cfg.Logger,
		metrics: newMetrics(cfg.Metrics),
		routers: map[string][]*fabric.Link{},
		links:   map[fabric.Peer]map[*fabric.Link]struct{}{},
		streams: map[string]map[*relayed]struct{}{},
		changed: make(chan struct{}),
		clients: map[string]*client{},

		refusals: newRefusalLog(cfg.Logger, cfg.Limits.RefusalLogInterval),
	}
	h.linkCfg.Authorize = h.authorizeLink
	h.ix.Store(compile(Snapshot{}))
	return h
}

// ErrNotListed refuses a link from a router or identity the current snapshot does not list.
var ErrNotListed = errors.New("not in the hub's policy snapshot (deleted at the controller?)")

// ErrSuperseded refuses a link whose router certificate was issued before the router's latest
// enrolment.
var ErrSuperseded = errors.New("certificate superseded: the router was enrolled again since it was issued")

// authorizeLink admits at link setup only peers the current snapshot admits (or one arriving
// within AdmitWait: a router just enrolled), then asks
// cfg.Authorize.
func (h *Hub) authorizeLink(kind, id string) error {
	if !h.awaitListed(fabric.Peer{Kind: kind, ID: id}) {
		return fmt.Errorf("%s %s: %w", kind, id, ErrNotListed)
	}
	if h.cfg.Authorize != nil {
		return h.cfg.Authorize(kind, id)
	}
	return nil
}

// Update replaces the policy and service snapshot; dials from now on use the new one, watchers
// whose service list changed get the new list, relayed streams the new snapshot does not
// authorise — by the same check their dial passed — are cut, and links of peers it does not
// admit are closed.
func (h *Hub) Update(s Snapshot) {
	ix := compile(s)
	ix.fromController = true
	var cut []func()
	h.mu.Lock()
	// Storing under mu pairs with track and register: a stream or link set up concurrently is
	// either already listed here or checked against ix.
	h.ix.Store(ix)
	for identity, set := range h.streams {
		for r := range set {
			if _, ok := ix.authorize(identity, r.target); !ok {
				cut = append(cut, func() { h.cutStream(identity, r) })
			}
		}
	}
	for _, links := range h.links {
		for l := range links {
			if err := ix.admitLink(l); err != nil {
				cut = append(cut, func() { h.cutLink(l, err) })
			}
		}
	}
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	for _, c := range cut {
		c()
	}
}

func (h *Hub) cutStream(identity string, r *relayed) {
	h.log.Info("stream cut: no longer authorized", "identity", identity, "service", r.service, "target", r.target)
	h.metrics.streamsRevoked.Inc()
	// Closing both halves without the end-to-end close: the client reads an error, never a
	// clean end of stream.
	r.client.Close()
	r.router.Close()
}

func (h *Hub) cutLink(l *fabric.Link, why error) {
	peer := l.Peer()
	h.log.Info("link cut: no longer in the policy snapshot", "peer", peer.String(), "err", why)
	h.metrics.linksRevoked.WithLabelValues(peer.Kind).Inc()
	l.Close()
}

// current returns the snapshot and a channel closed at the next Update.
func (h *Hub) current() (*index, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ix.Load(), h.changed
}

// Serve accepts links on ln until ctx ends or ln fails.
func (h *Hub) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go h.refusals.run(rctx)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go h.ServeConn(ctx, c)
	}
}

// linkSetupTimeout bounds the TLS handshake of a new link.
const linkSetupTimeout = 10 * time.Second

// ServeConn runs one accepted connection as a fabric link until it or ctx ends.
func (h *Hub) ServeConn(ctx context.Context, c net.Conn) {
	// The identity's entry, held from the handshake on: its links share its stream quota and
	// opening rate. admitted: the link took one of its link slots.
	var held atomic.Pointer[client]
	admitted := false
	cfg := h.linkCfg
	cfg.MaxStreams = h.cfg.Limits.StreamsPerLink
	cfg.MaxSetups = h.cfg.Limits.SetupsPerLink
	cfg.SharedStreams = func(p fabric.Peer) *fabric.Quota {
		if p.Kind != api.KindIdentity {
			return nil
		}
		cl := h.hold(p.ID)
		held.Store(cl)
		return cl.streams
	}
	cfg.Pace = func() {
		if cl := held.Load(); cl != nil {
			h.pace(cl)
		}
	}
	cfg.StreamRefused = func(p fabric.Peer, l fabric.StreamLimit) { h.limited(p.ID, streamLimitKey[l]) }
	cfg.AllowLegacy = h.cfg.Limits.LegacyPeers
	cfg.LegacyRefused = func(p fabric.Peer) { h.limited(p.ID, limitLegacyPeers) }
	cfg.Admit = func(p fabric.Peer) error {
		cl := held.Load()
		if cl == nil {
			return nil
		}
		if err := h.admit(cl); err != nil {
			return err
		}
		admitted = true
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, linkSetupTimeout)
	link, err := fabric.Accept(sctx, c, cfg)
	cancel()
	if cl := held.Load(); cl != nil {
		defer h.unhold(cl, admitted)
	}
	if err != nil {
		if errors.Is(err, fabric.ErrLimitReached) {
			return // admit counted and logged it
		}
		h.log.Info("link refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	stop := context.AfterFunc(ctx, func() { link.Close() })
	defer stop()
	defer link.Close()
	peer := link.Peer()
	// Refused after the handshake: superseded (the authorizer sees no certificate), or a
	// snapshot installed during the handshake no longer lists it.
	if err := h.register(link); err != nil {
		h.log.Info("link refused", "peer", peer.String(), "remote", link.RemoteAddr().String(), "err", err)
		return
	}
	defer h.unregister(link)
	h.log.Info("link up", "peer", peer.String(), "remote", link.RemoteAddr().String(), "records", link.Records())
	switch peer.Kind {
	case api.KindRouter:
		h.metrics.routerLinks.Inc()
		defer h.metrics.routerLinks.Dec()
		// Routers never open streams to a hub; refuse any that arrive.
		link.ServeStreams(func(s net.Conn) { s.Close() })
	case api.KindIdentity:
		h.metrics.clientLinks.Inc()
		defer h.metrics.clientLinks.Dec()
		watches := &slots{}
		link.ServeStreams(func(s net.Conn) { h.handle(ctx, watches, peer.ID, s) })
	}
	h.log.Info("link down", "peer", peer.String(), "err", link.Err())
}

// hold returns the identity's entry, creating it, for one more link being set up.
func (h *Hub) hold(id string) *client {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.clients[id]
	if c == nil {
		lim := &h.cfg.Limits
		c = &client{id: id, streams: fabric.NewQuota(lim.StreamsPerIdentity),
			opens: rate.NewLimiter(rate.Limit(lim.StreamOpensPerSecond), lim.StreamOpenBurst)}
		h.clients[id] = c
	}
	c.refs++
	return c
}

// unhold lets go of what hold and (when admitted) admit took.
func (h *Hub) unhold(c *client, admitted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if admitted {
		c.links--
	}
	if c.refs--; c.refs == 0 {
		delete(h.clients, c.id)
	}
}

// admit takes one of an identity's link slots.
func (h *Hub) admit(c *client) error {
	h.mu.Lock()
	ok := c.links < h.cfg.Limits.LinksPerIdentity
	if ok {
		c.links++
	}
	h.mu.Unlock()
	if !ok {
		h.limited(c.id, limitLinksPerIdentity)
		return &fabric.Error{Code: fabric.LimitReached,
			Message: fmt.Sprintf("identity %s has %d links up, its limit (%s)", c.id, h.cfg.Limits.LinksPerIdentity, limitLinksPerIdentity)}
	}
	return nil
}

// limited counts and logs (rate-limited) a refusal by one of the Limits.
func (h *Hub) limited(identity, limit string) {
	h.metrics.limitRefusals.WithLabelValues(limit).Inc()
	h.refusals.note(identity, limit, "refused: limit reached", "limit", limit)
}

// refuseLimit answers a stream that limit refused.
func (h *Hub) refuseLimit(s net.Conn, identity, limit, msg string) {
	h.limited(identity, limit)
	h.refuse(s, &fabric.Error{Code: fabric.LimitReached, Message: msg + " (" + limit + ")"})
}

// register lists a new link, unless the current snapshot does not admit it.
func (h *Hub) register(l *fabric.Link) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	peer := l.Peer()
	if err := h.ix.Load().admitLink(l); err != nil {
		return err
	}
	if h.links[peer] == nil {
		h.links[peer] = map[*fabric.Link]struct{}{}
	}
	h.links[peer][l] = struct{}{}
	if peer.Kind == api.KindRouter {
		h.routers[peer.ID] = append(h.routers[peer.ID], l)
	}
	return nil
}

func (h *Hub) unregister(l *fabric.Link) {
	h.mu.Lock()
	defer h.mu.Unlock()
	peer := l.Peer()
	delete(h.links[peer], l)
	if len(h.links[peer]) == 0 {
		delete(h.links, peer)
	}
	if peer.Kind != api.KindRouter {
		return
	}
	id := peer.ID
	h.routers[id] = slices.DeleteFunc(h.routers[id], func(x *fabric.Link) bool { return x == l })
	if len(h.routers[id]) == 0 {
		delete(h.routers, id)
	}
}

// track lists a stream about to be relayed, unless the current snapshot no longer authorises
// it (an Update since the dial was checked).
func (h *Hub) track(identity string, r *relayed) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ix.Load().authorize(identity, r.target); !ok {
		return false
	}
	if h.streams[identity] == nil {
		h.streams[identity] = map[*relayed]struct{}{}
	}
	h.streams[identity][r] = struct{}{}
	return true
}

func (h *Hub) untrack(identity string, r *relayed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams[identity], r)
	if len(h.streams[identity]) == 0 {
		delete(h.streams, identity)
	}
}

// RouterStatus is what the hub knows about one router's link.
type RouterStatus struct {
	ID      string
	RTT     time.Duration
	Streams int
	Healthy bool
}

// Routers reports every linked router, for status pages and the controller.
func (h *Hub) Routers() []RouterStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []RouterStatus
	for id, links := range h.routers {
		for _, l := range links {
			out = append(out, RouterStatus{ID: id, RTT: l.RTT(), Streams: l.Streams(), Healthy: l.Healthy()})
		}
	}
	slices.SortFunc(out, func(a, b RouterStatus) int { return cmp.Compare(a.RTT, b.RTT) })
	return out
}

// costGranularity is the smallest cost difference that makes one router preferred.
const costGranularity = 100 * time.Microsecond

// candidate is a router link able to take a stream, with its current cost.
type candidate struct {
	id      string
	link    *fabric.Link
	cost    time.Duration
	healthy bool
}

// candidates returns the links to routers hosting svc: healthy ones cheapest first, then —
// as a last resort, for a router that is only slow to answer keepalives — silent ones. Equal
// costs are ordered randomly so that identical routers share load.
func (h *Hub) candidates(svc *service) []candidate {
	var out []candidate
	h.mu.Lock()
	for _, r := range svc.routers {
		for _, l := range h.routers[r.id] {
			out = append(out, candidate{id: r.id, link: l, cost: time.Duration(r.cost) * time.Millisecond})
		}
	}
	h.mu.Unlock()
	for i := range out {
		c := &out[i]
		c.healthy = c.link.Healthy()
		c.cost += c.link.RTT() + time.Duration(c.link.Streams())*h.cfg.LoadCost
		// Differences below costGranularity are noise in the RTT average: routers that close
		// count as equal and share the load randomly.
		c.cost = c.cost.Truncate(costGranularity)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b candidate) int {
		if a.healthy != b.healthy {
			if a.healthy {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.cost, b.cost)
	})
	return out
}

// handle serves one stream a client opened; watches is what this link's watches hold. The
// link counts the stream against setups_per_link until fabric.SetUp, and against
// streams_per_link and streams_per_identity until both ends closed it.
func (h *Hub) handle(ctx context.Context, watches *slots, identity string, s net.Conn) {
	lim := &h.cfg.Limits
	s.SetDeadline(time.Now().Add(lim.RequestTimeout))
	req, err := fabric.ReadRequest(s)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			h.metrics.requestTimeouts.Inc()
		}
		s.Close()
		return
	}
	s.SetDeadline(time.Now().Add(h.cfg.SetupTimeout))
	ix := h.ix.Load()
	switch req.Op {
	case fabric.OpList:
		body, _ := json.Marshal(ix.visible(identity))
		fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK, Payload: body})
		s.Close()
	case fabric.OpDial:
		h.dial(ctx, ix, identity, req, s)
	case fabric.OpWatch:
		fabric.SetUp(s)
		if !watches.take(lim.WatchesPerLink) {
			h.refuseLimit(s, identity, limitWatchesPerLink, fmt.Sprintf("the link has %d watches open, its limit", lim.WatchesPerLink))
			return
		}
		defer watches.give()
		h.watch(ctx, identity, s)
	default:
		h.refuse(s, &fabric.Error{Code: fabric.BadRequest, Message: fmt.Sprintf("unknown op %d", req.Op)})
	}
}

// watch sends the identity's service list now and again after every Update that changes it,
// until the client closes the stream, the link fails or ctx ends.
func (h *Hub) watch(ctx context.Context, identity string, s net.Conn) {
	defer s.Close()
	s.SetDeadline(time.Time{})
	gone := make(chan struct{})
	go func() { // the client sends nothing more: a read returns when it closes or the link fails
		io.Copy(io.Discard, s)
		close(gone)
	}()
	h.metrics.watchers.Inc()
	defer h.metrics.watchers.Dec()
	var last []byte
	for {
		ix, changed := h.current()
		body, _ := json.Marshal(ix.visible(identity))
		if !bytes.Equal(body, last) {
			if err := fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK, Payload: body}); err != nil {
				return
			}
			last = body
		}
		select {
		case <-changed:
		case <-gone:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (h *Hub) refuse(s net.Conn, e *fabric.Error) {
	h.metrics.dials.WithLabelValues(e.Code.String()).Inc()
	fabric.WriteResponse(s, &fabric.Response{Code: e.Code, Message: e.Message})
	s.Close()
}

func (h *Hub) dial(ctx context.Context, ix *index, identity string, req *fabric.Request, s net.Conn) {
	svc, ok := ix.authorize(identity, req.Target)
	if !ok {
		h.refusals.note(identity, "no_policy", "dial refused: no policy", "target", req.Target)
		h.refuse(s, &fabric.Error{Code: fabric.NotAuthorized, Message: fmt.Sprintf("identity %s may not dial %s", identity, req.Target)})
		return
	}
	cands := h.candidates(svc)
	if len(cands) == 0 {
		h.refuse(s, &fabric.Error{Code: fabric.NoRoute, Message: fmt.Sprintf("no router hosting service %s is linked", svc.Name)})
		return
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.SetupTimeout)
	defer cancel()
	rreq := &fabric.Request{Op: fabric.OpDial, Target: req.Target, Service: svc.Name, Identity: identity, Payload: req.Payload}
	var last *fabric.Error
	for i, c := range cands {
		if i == h.cfg.MaxAttempts || dctx.Err() != nil {
			break
		}
		// Giving up on a slow router only helps when a healthy one is left to try.
		alternative := slices.ContainsFunc(cands[i+1:min(len(cands), h.cfg.MaxAttempts)], func(c candidate) bool { return c.healthy })
		rs, resp, err := h.attempt(dctx, c, alternative, rreq)
		if err == nil {
			r := &relayed{target: req.Target, service: svc.Name, client: s, router: rs}
			if !h.track(identity, r) {
				rs.Close()
				h.refusals.note(identity, "revoked_during_setup", "dial refused: policy revoked during setup", "target", req.Target)
				h.refuse(s, &fabric.Error{Code: fabric.NotAuthorized, Message: fmt.Sprintf("identity %s may not dial %s", identity, req.Target)})
				return
			}
			defer h.untrack(identity, r)
			if werr := fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK, Payload: resp.Payload}); werr != nil {
				rs.Close()
				s.Close()
				return
			}
			h.metrics.dials.WithLabelValues(fabric.OK.String()).Inc()
			fabric.SetUp(s)
			s.SetDeadline(time.Time{})
			h.relay(s, rs)
			return
		}
		var fe *fabric.Error
		if !errors.As(err, &fe) {
			fe = &fabric.Error{Code: fabric.Unavailable, Message: err.Error()}
		}
		last = &fabric.Error{Code: fe.Code, Message: fmt.Sprintf("router %s: %s", c.id, fe.Message)}
		h.refusals.note(identity, "setup_failed", "stream setup failed", "router", c.id, "service", svc.Name, "err", err)
		if fe.Code == fabric.BadRequest { // the client's request is at fault: every router would refuse it
			break
		}
	}
	if last == nil {
		last = &fabric.Error{Code: fabric.Unavailable, Message: "dial timed out"}
	}
	h.refuse(s, last)
}

// attempt opens the stream on one router link. When another router is left to try and this
// link was healthy, it gives up as soon as the link stops answering keepalives rather than
// waiting for the whole setup timeout; otherwise it waits until the link is declared dead.
func (h *Hub) attempt(ctx context.Context, c candidate, alternative bool, req *fabric.Request) (net.Conn, *fabric.Response, error) {
	link := c.link
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A link that closes fails the open by itself. Watching its health takes a timer, not a
	// goroutine: most setups finish long before the first check.
	if alternative && c.healthy {
		w := &healthWatch{link: link, cancel: cancel}
		w.mu.Lock()
		w.t = time.AfterFunc(healthCheckInterval, w.check)
		w.mu.Unlock()
		defer w.stop()
	}
	rs, resp, err := link.Open(actx, req)
	if err != nil && context.Cause(actx) != nil && ctx.Err() == nil {
		err = context.Cause(actx)
	}
	return rs, resp, err
}

// healthCheckInterval is how often a stream setup in progress checks its router's link.
const healthCheckInterval = 100 * time.Millisecond

// healthWatch cancels a stream setup when its router's link stops answering keepalives.
type healthWatch struct {
	link   *fabric.Link
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (w *healthWatch) check() {
	if !w.link.Healthy() {
		w.cancel(errors.New("router stopped answering keepalives"))
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Reset(healthCheckInterval)
	}
}

func (w *healthWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// relay copies both directions until either side closes, then closes both. The multiplexer
// streams hand their received frames straight to the other stream (mux Stream.WriteTo), so an
// idle relayed stream holds no buffer.
func (h *Hub) relay(client, router net.Conn) {
	h.metrics.active.Inc()
	defer h.metrics.active.Dec()
	go func() {
		io.Copy(router, client)
		router.Close()
		client.Close()
	}()
	io.Copy(client, router)
	client.Close()
	router.Close()
}

type metrics struct {
	routerLinks prometheus.Gauge
	clientLinks prometheus.Gauge
	active      prometheus.Gauge
	watchers    prometheus.Gauge
	dials       *prometheus.CounterVec
	// What Limits refused, by limit; requests that did not arrive within RequestTimeout.
	limitRefusals   *prometheus.CounterVec
	requestTimeouts prometheus.Counter
	pacedOpens      prometheus.Counter
	// What snapshot updates cut.
	streamsRevoked prometheus.Counter
	linksRevoked   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		routerLinks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztna_hub_router_links", Help: "Router links up."}),
		clientLinks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztna_hub_client_links", Help: "Client identity links up."}),
		active:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztna_hub_streams_active", Help: "Streams being relayed."}),
		watchers:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztna_hub_service_watchers", Help: "Clients watching their service list."}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_hub_dials_total", Help: "Client dials, by result.",
		}, []string{"result"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_hub_limit_refusals_total", Help: "Streams and links refused by a hub limit, by limit (its config key).",
		}, []string{"limit"}),
		requestTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ztna_hub_request_timeouts_total", Help: "Client streams closed because their request did not arrive within request_timeout.",
		}),
		pacedOpens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ztna_hub_stream_opens_paced_total", Help: "Client stream opens delayed by stream_opens_per_second.",
		}),
		streamsRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ztna_hub_streams_revoked_total", Help: "Relayed streams cut because a new policy snapshot no longer authorised them.",
		}),
		linksRevoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_hub_links_revoked_total", Help: "Links closed because a new policy snapshot no longer listed their router or identity, by peer kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.routerLinks, m.clientLinks, m.active, m.watchers, m.dials, m.limitRefusals, m.requestTimeouts, m.pacedOpens, m.streamsRevoked, m.linksRevoked)
	}
	return m
}
