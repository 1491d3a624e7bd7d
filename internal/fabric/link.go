package fabric

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztna/ztna/internal/fabric/mux"
	"github.com/ztna/ztna/internal/pki"
)

// Multiplexer tuning.
const (
	// MaxFrame is the largest multiplexer frame payload: a 1 MiB write crosses each hop as
	// one frame, 64 full TLS records and one system call.
	MaxFrame = 1 << 20
	// streamWindow is the per-stream flow-control window a stream starts with: large enough
	// that one stream runs at well over 1 GB/s across a relay on a LAN, while an idle stream
	// holds no buffer at all.
	streamWindow = 4 << 20
	// initialStreamWindow is what a stream starts with on a link that agreed on ALPNBudget; it
	// grows to streamWindow (and beyond, see below) from the link's budget only while it is
	// read. A link buffers at most maxSessionWindow plus this much per stream: 1,000 stalled
	// downloads pin 32 MiB + 16 MiB at a hub rather than 4 MiB each. Measured in
	// TestFloodNeverReadDownloads: +56 MB of hub RSS, a bystander's dial p99 80 ms; with 32 KiB,
	// +100 MB and 825 ms. It carries a request and a short answer without waiting for credit; a
	// longer answer waits one round trip for the grant, much as TCP's initial congestion window
	// (about 14 KiB) makes it wait anyway.
	initialStreamWindow = 16 << 10
	// maxStreamWindow and maxSessionWindow bound how far the windows grow on a link whose round
	// trip limits them (4 MiB per 40 ms round trip is 100 MB/s): 16 MiB carries 335 MB/s a
	// stream across 50 ms, and a link's streams grow by 16 MiB in all at the most, on top of
	// the 4 MiB each starts with. To carry that, the TCP connection under the link needs send
	// and receive buffers as large: the router image raises Linux's limits (tcp_wmem stops at
	// 4 MiB by default); see packer/provisioner/ztnarouter/files/sysctl.conf.
	maxStreamWindow  = 16 << 20
	maxSessionWindow = 32 << 20
	// windowGoal: a window that lets a stream move this much per round trip is large enough
	// (one stream's end-to-end encryption and relaying does not run much faster on any
	// router), and does not grow: on a LAN, 4 MiB is already 4 GB/s at a 1 ms round trip.
	windowGoal = 2e9 // bytes per second
)

// Keepalive defaults. Liveness has two thresholds. A link whose peer sent nothing — neither
// data nor keepalives — for three intervals (1.5 s) stops being Healthy: hubs open no new
// streams on it and route new dials to another router at once. Only after the timeout is the
// link closed and its streams cut, so that a network blip shorter than that costs no
// established stream. The timeout is the longer because TCP's retransmit backoff (0.2, 0.6,
// 1.4, 3.0, 6.2 s after a loss) delays the first packet after an outage: with the old 3 s, a
// 1.6–2.5 s blackout cut every stream in 4 of 6 runs. Where the kernel allows (Linux 6.15:
// TCP_RTO_MAX_MS), links cap the retransmit interval at 1 s, so an outage up to about a second
// shorter than the timeout is ridden out; elsewhere up to about 6 s with the default.
const (
	DefaultKeepaliveInterval = 500 * time.Millisecond
	DefaultKeepaliveTimeout  = 10 * time.Second
)

// Bounds of a configured link timeout: at least four keepalive intervals, so that a link is
// never closed before it has been reported unhealthy; at most an hour, past which a dead router
// would hold its streams (and their target sessions) for longer than anyone waits.
const (
	MinKeepaliveTimeout = 4 * DefaultKeepaliveInterval
	MaxKeepaliveTimeout = time.Hour
)

// CheckLinkTimeout refuses a configured link timeout (the key or flag named key) outside the
// bounds; zero, the default, passes.
func CheckLinkTimeout(key string, d time.Duration) error {
	if d != 0 && (d < MinKeepaliveTimeout || d > MaxKeepaliveTimeout) {
		return fmt.Errorf("%s %v: want between %v and %v (default %v); it bounds the silence a link rides out before its streams are cut",
			key, d, MinKeepaliveTimeout, MaxKeepaliveTimeout, DefaultKeepaliveTimeout)
	}
	return nil
}

// ErrSilent closes a link whose peer sent nothing for the keepalive timeout.
var ErrSilent = errors.New("fabric: peer silent beyond the keepalive timeout")

// LinkConfig configures one end of a link.
type LinkConfig struct {
	Credentials
	// Authorize, on the accepting (hub) side, may refuse a peer whose certificate verified, for
	// example a router the controller has deleted. Nil accepts every verified router or identity.
	Authorize pki.Authorizer
	// KeepaliveInterval is how often each end pings; KeepaliveTimeout is how long a link may stay
	// silent before it is closed and its streams are cut (the link timeout: hub's and router's
	// fabric.link_timeout / --link-timeout). Each end applies its own: configure both alike.
	// Zero means the defaults.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	Logger            *slog.Logger
	// KeyLog, when set, receives the links' TLS secrets in NSS key log format, so that a
	// packet capture can be decrypted (Wireshark) — for debugging only. It never exposes
	// end-to-end encrypted stream contents: those stay ciphertext inside the link.
	KeyLog io.Writer
	// Records chooses what carries the TLS records after the handshake; empty: RecordsEnv's
	// value, else RecordsTLSRecord.
	Records Records
	// What the peer may make this end hold (see limits.go).
	LinkLimits
}

func (c LinkConfig) check() error {
	if err := c.Credentials.check(); err != nil {
		return err
	}
	_, err := c.records()
	return err
}

func (c *LinkConfig) defaults() {
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.KeepaliveTimeout <= 0 {
		c.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	c.KeepaliveTimeout = max(c.KeepaliveTimeout, 4*c.KeepaliveInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// WireConfig is the multiplexer configuration of a link that agreed on alpn, as far as both
// ends must share it (frames and windows); for a peer written by hand in a test.
func WireConfig(alpn string) mux.Config {
	c := mux.DefaultConfig()
	c.MaxFrame = MaxFrame
	c.Window = streamWindow
	if alpn != ALPN {
		c.InitialWindow = initialStreamWindow
	}
	return c
}

// muxConfig tunes the multiplexer of a link; rtt is the link's base round trip.
func muxConfig(rtt func() time.Duration, lim LinkLimits, peer Peer, accepted bool, alpn string) mux.Config {
	c := WireConfig(alpn)
	c.MaxWindow, c.MaxSessionWindow = maxStreamWindow, maxSessionWindow
	c.RTT, c.WindowGoal = rtt, windowGoal
	lim.applyTo(&c, peer, accepted)
	if alpn == ALPN { // every stream holds its whole window from the start: bound their number
		c.MaxAllStreams = LegacyMaxStreams + 1 // and the control stream
	}
	return c
}

// refusedLegacyConfig is the multiplexer of a link whose peer speaks only ALPN and is not
// allowed to: it lives only to answer the control stream with the refusal. It grants the
// budget's initial window, not the 4 MiB the peer counts on, so a peer that sends more than
// its control request before the answer only ends the link sooner.
func refusedLegacyConfig() mux.Config {
	c := WireConfig(ALPNBudget)
	c.MaxAllStreams = 1
	return c
}

// Link is an established fabric connection carrying streams.
type Link struct {
	records  Records
	peer     Peer
	peerCert *x509.Certificate // the peer's verified leaf certificate
	cfg      LinkConfig
	sess     *mux.Session
	conn     net.Conn // the TCP connection under TLS, for addresses
	tc       recordConn
	// The peer speaks only ALPN and LinkLimits.AllowLegacy is off: the link is set up only to
	// refuse it on its control stream.
	refuseLegacy bool

	ctrl   *mux.Stream
	ctrlMu sync.Mutex // serialises pings and pongs on ctrl

	rtt atomic.Int64 // ns, moving average; 0 until the first pong

	// The least keepalive round trip since the link came up (ns, 0: none yet): the path's own
	// round trip, without the time pings spend queued behind data frames. Stream windows grow
	// with it; with the average, a busy loopback link (pings behind megabytes of frames: 2 ms
	// instead of 0.1) grew its windows fourfold for nothing. A path that got longer since only
	// makes the windows grow less.
	minRTT atomic.Int64

	// The pings sent and not yet answered: a pong counts only if it echoes one, so a peer can
	// make its round trip look longer (by answering late) but never shorter than it is.
	pingMu  sync.Mutex
	pending [8]uint64
	npend   int
	probe   uint64      // the ping sent as the link came up (see keepalive)
	pinging atomic.Bool // a keepalive ping is being written

	closeOnce sync.Once
	done      chan struct{}
	err       error
}

// Dial connects a router or identity to the hub at addr. The hub must prove a certificate from
// the CA that names a hub or a controller.
func Dial(ctx context.Context, addr string, cfg LinkConfig) (*Link, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fabric: dial hub %s: %w", addr, err)
	}
	tlsCfg := clientTLS(cfg.Credentials)
	tlsCfg.KeyLogWriter = cfg.KeyLog
	l, err := establish(ctx, raw, tlsCfg, cfg, true)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("fabric: hub %s: %w", addr, err)
	}
	return l, nil
}

// Accept runs the hub side of a link over an accepted connection. The peer must prove a
// certificate from the CA that names a router or an identity.
func Accept(ctx context.Context, conn net.Conn, cfg LinkConfig) (*Link, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	tlsCfg := serverTLS(cfg.Credentials, cfg.Authorize)
	tlsCfg.KeyLogWriter = cfg.KeyLog
	l, err := establish(ctx, conn, tlsCfg, cfg, false)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("fabric: link from %s: %w", conn.RemoteAddr(), err)
	}
	return l, nil
}

func establish(ctx context.Context, raw net.Conn, tlsCfg *tls.Config, cfg LinkConfig, client bool) (*Link, error) {
	cfg.defaults()
	rec, err := cfg.records()
	if err != nil {
		return nil, err
	}
	tc, err := handshake(ctx, raw, tlsCfg, client, rec)
	if err != nil {
		return nil, err
	}
	cs := tc.ConnectionState()
	peer, err := peerOf(cs)
	if err != nil {
		return nil, err
	}
	legacy := cs.NegotiatedProtocol == ALPN
	if client && legacy && !cfg.AllowLegacy {
		tc.Close()
		return nil, errLegacyHub
	}
	l := &Link{records: rec, peer: peer, peerCert: cs.PeerCertificates[0], cfg: cfg, conn: raw, tc: tc, done: make(chan struct{})}
	l.refuseLegacy = legacy && !cfg.AllowLegacy
	tuneTCP(raw, cfg.KeepaliveTimeout)
	switch {
	case client:
		l.sess, err = mux.Client(tc, muxConfig(l.BaseRTT, cfg.LinkLimits, peer, false, cs.NegotiatedProtocol))
	case l.refuseLegacy:
		l.sess, err = mux.Server(tc, refusedLegacyConfig())
	default:
		l.sess, err = mux.Server(tc, muxConfig(l.BaseRTT, cfg.LinkLimits, peer, true, cs.NegotiatedProtocol))
	}
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	if client {
		err = l.openControl()
	} else {
		err = l.acceptControl()
	}
	if !stop() || (err != nil && ctx.Err() != nil) {
		err = ctx.Err()
	}
	raw.SetDeadline(time.Time{})
	if err != nil {
		l.sess.Close()
		return nil, err
	}
	go l.readControl()
	go l.keepalive()
	return l, nil
}

// openControl opens the control stream: the first stream of every link.
func (l *Link) openControl() error {
	s, err := l.sess.OpenStream()
	if err != nil {
		return err
	}
	b, _ := (&Request{Op: opControl}).Marshal()
	if _, err := s.Write(b); err != nil {
		return err
	}
	resp, err := ReadResponse(s)
	if err != nil {
		return err
	}
	if err := resp.Err(); err != nil {
		return fmt.Errorf("hub refused the link: %w", err)
	}
	l.ctrl = s
	return nil
}

func (l *Link) acceptControl() error {
	s, err := l.sess.AcceptStream()
	if err != nil {
		return err
	}
	req, err := ReadRequest(s)
	if err != nil {
		return err
	}
	if req.Op != opControl {
		return fmt.Errorf("first stream is op %d, want the control stream", req.Op)
	}
	s.LeaveQuota() // what a peer's links share is for its own streams
	s.SetUp()
	if l.refuseLegacy {
		if l.cfg.LegacyRefused != nil {
			l.cfg.LegacyRefused(l.peer)
		}
		WriteResponse(s, refusal(errLegacyPeer))
		return errLegacyPeer
	}
	if err := l.cfg.LinkLimits.admit(l.peer); err != nil {
		WriteResponse(s, refusal(err))
		return err
	}
	if err := WriteResponse(s, &Response{Code: OK}); err != nil {
		return err
	}
	l.ctrl = s
	return nil
}

// clockBase anchors the keepalives' timestamps: nanoseconds on the monotonic clock.
var clockBase = time.Now()

func monotonic() int64 { return int64(time.Since(clockBase)) }

// Keepalive messages on the control stream: a type byte and the sender's timestamp, echoed back.
const (
	msgPing = 1
	msgPong = 2
	msgLen  = 9
)

// sendControl writes a keepalive message. A write that times out behind a queue of data frames
// is not a failure: the link is busy, and the peer judges liveness by any bytes it receives.
func (l *Link) sendControl(typ byte, v uint64) error {
	var m [msgLen]byte
	m[0] = typ
	binary.BigEndian.PutUint64(m[1:], v)
	l.ctrlMu.Lock()
	defer l.ctrlMu.Unlock()
	l.ctrl.SetWriteDeadline(time.Now().Add(l.cfg.KeepaliveTimeout))
	_, err := l.ctrl.Write(m[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

func (l *Link) readControl() {
	var m [msgLen]byte
	for {
		if _, err := io.ReadFull(l.ctrl, m[:]); err != nil {
			l.closeWith(fmt.Errorf("fabric: link to %s lost: %w", l.peer, err))
			return
		}
		v := binary.BigEndian.Uint64(m[1:])
		switch m[0] {
		case msgPing:
			if err := l.sendControl(msgPong, v); err != nil {
				l.closeWith(fmt.Errorf("fabric: link to %s lost: %w", l.peer, err))
				return
			}
		case msgPong:
			if probe, ok := l.answered(v); ok {
				l.observeRTT(time.Duration(monotonic()-int64(v)), !probe)
			}
		default:
			l.closeWith(fmt.Errorf("fabric: link to %s: unknown control message %d", l.peer, m[0]))
			return
		}
	}
}

// answered reports whether v is a ping sent and not yet answered, and marks it answered; probe
// says it was the ping sent as the link came up.
func (l *Link) answered(v uint64) (probe, ok bool) {
	l.pingMu.Lock()
	defer l.pingMu.Unlock()
	for i := range l.npend {
		if l.pending[i] == v {
			copy(l.pending[i:], l.pending[i+1:l.npend])
			l.npend--
			return v == l.probe, true
		}
	}
	return false, false
}

// observeRTT folds a sample into the least round trip and, unless only the base round trip
// wants it, into an exponential moving average (weight 1/5), so one slow pong behind a burst of
// data does not flip routing decisions.
func (l *Link) observeRTT(sample time.Duration, average bool) {
	if sample <= 0 {
		sample = 1
	}
	for {
		m := l.minRTT.Load()
		if m != 0 && m <= int64(sample) || l.minRTT.CompareAndSwap(m, int64(sample)) {
			break
		}
	}
	if !average {
		return
	}
	old := l.rtt.Load()
	if old == 0 {
		l.rtt.Store(int64(sample))
		return
	}
	l.rtt.Store(old + (int64(sample)-old)/5)
}

func (l *Link) keepalive() {
	ping := func(probe bool) {
		v := uint64(monotonic())
		l.pingMu.Lock()
		if probe {
			l.probe = v
		}
		if l.npend == len(l.pending) { // the oldest went unanswered: forget it
			copy(l.pending[:], l.pending[1:])
			l.npend--
		}
		l.pending[l.npend] = v
		l.npend++
		l.pingMu.Unlock()
		if err := l.sendControl(msgPing, v); err != nil {
			l.closeWith(fmt.Errorf("fabric: link to %s lost: %w", l.peer, err))
		}
	}
	// A probe leaves at once, while the link is still idle: its round trip is the path's own,
	// with no frames queued ahead of it (see BaseRTT). Routing costs (RTT) start with the
	// keepalives, as before: a probe taken while the links come up, CPUs busy with handshakes,
	// would set one router apart from an equal one for a while.
	go ping(true)
	t := time.NewTicker(l.cfg.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		if l.silence() > l.cfg.KeepaliveTimeout {
			l.closeWith(fmt.Errorf("%w (%s, %v)", ErrSilent, l.peer, l.cfg.KeepaliveTimeout))
			return
		}
		// A write blocked behind a full send window must not delay the silence check above; while
		// one is blocked (a stalled path, for up to the timeout) another adds nothing, and
		// skipping it keeps a long timeout from piling up a goroutine every interval.
		if l.pinging.CompareAndSwap(false, true) {
			go func() {
				defer l.pinging.Store(false)
				ping(false)
			}()
		}
	}
}

// silence is how long the peer has sent nothing at all. Bytes waiting in the socket that this
// process has not got round to reading count as something.
func (l *Link) silence() time.Duration {
	d := time.Since(l.tc.LastRead())
	if d > l.cfg.KeepaliveInterval && unreadBytes(l.conn) {
		return 0
	}
	return d
}

func (l *Link) closeWith(err error) {
	l.closeOnce.Do(func() {
		l.err = err
		close(l.done)
		l.sess.Close()
		l.cfg.Logger.Debug("fabric link closed", "peer", l.peer.String(), "err", err)
	})
}

// Peer is the authenticated other end.
func (l *Link) Peer() Peer { return l.peer }

// Records says what carries the link's TLS records.
func (l *Link) Records() Records { return l.records }

// PeerCertificate is the leaf certificate the peer authenticated with.
func (l *Link) PeerCertificate() *x509.Certificate { return l.peerCert }

// RemoteAddr is the network address of the other end.
func (l *Link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }

// RTT is the moving average of keepalive round trips (0 before the first one).
func (l *Link) RTT() time.Duration { return time.Duration(l.rtt.Load()) }

// BaseRTT is the least keepalive round trip since the link came up (0 before the first one):
// the path's round trip without queueing behind data. A probe ping leaves as soon as the link is
// up, before any stream can queue frames ahead of it.
func (l *Link) BaseRTT() time.Duration { return time.Duration(l.minRTT.Load()) }

// Healthy reports whether the link is open and the peer sent something within three keepalive
// intervals: a hub stops choosing a router that fails this well before the link times out.
func (l *Link) Healthy() bool {
	select {
	case <-l.done:
		return false
	default:
	}
	return l.silence() <= 3*l.cfg.KeepaliveInterval
}

// Done is closed when the link is closed, by either end or by a keepalive timeout.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err says why the link closed (nil while it is open).
func (l *Link) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Close closes the link and every stream on it.
func (l *Link) Close() error {
	l.closeWith(errors.New("fabric: link closed"))
	return nil
}

// Buffered is how many bytes the link's streams have received and not yet read.
func (l *Link) Buffered() int { return l.sess.Buffered() }

// Streams is the number of open streams, the control stream excluded.
func (l *Link) Streams() int { return max(l.sess.NumStreams()-1, 0) }

// Open opens a stream, sends req and waits for the response, all bounded by ctx. On OK it
// returns the stream, ready for the end-to-end handshake to continue; otherwise the stream is
// closed and the error is the response's *Error or the transport failure.
func (l *Link) Open(ctx context.Context, req *Request) (net.Conn, *Response, error) {
	b, err := req.Marshal()
	if err != nil {
		return nil, nil, err
	}
	s, err := l.sess.OpenStream()
	if err != nil {
		return nil, nil, l.streamErr(err)
	}
	// The context alone bounds the exchange, so that when it fails ctx.Err() is already set.
	stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Now()) })
	resp, err := l.exchange(s, b)
	// When the context ended (and its deadline may land on the stream at any moment), the
	// open failed even if the response made it.
	if !stop() || (err != nil && ctx.Err() != nil) {
		err = fmt.Errorf("fabric: open %s: %w", req.Target, ctx.Err())
	}
	if err == nil {
		err = resp.Err()
	}
	if err != nil {
		s.Close()
		return nil, resp, err
	}
	s.SetDeadline(time.Time{})
	return s, resp, nil
}

// OpenStream opens a stream and sends nothing on it: the caller writes the marshalled Request
// and reads the Response itself (ReadResponse), for example to send a request in parts. A hub
// closes a stream whose request is not complete within its request_timeout, answering nothing.
func (l *Link) OpenStream() (net.Conn, error) {
	s, err := l.sess.OpenStream()
	if err != nil {
		return nil, l.streamErr(err)
	}
	return s, nil
}

func (l *Link) exchange(s *mux.Stream, req []byte) (*Response, error) {
	if _, err := s.Write(req); err != nil {
		return nil, l.streamErr(err)
	}
	resp, err := ReadResponse(s)
	if err != nil {
		return nil, l.streamErr(err)
	}
	return resp, nil
}

// streamErr prefers the link's own reason (peer silent, link lost) over the multiplexer's.
func (l *Link) streamErr(err error) error {
	if lerr := l.Err(); lerr != nil {
		return lerr
	}
	if errors.Is(err, mux.ErrStreamLimit) {
		return errLegacyStreams
	}
	return err
}

// ServeStreams runs handle, each in its own goroutine, on every stream the peer opens, until the
// link closes; it returns why the link closed. The handler reads the Request itself (under a
// deadline) and answers with WriteResponse. Prefer it to an AcceptStream loop: the stream's
// handler starts straight from the link's reader.
func (l *Link) ServeStreams(handle func(net.Conn)) error {
	err := l.sess.ServeStreams(func(s *mux.Stream) { handle(s) })
	return l.streamErr(err)
}

// AcceptStream waits for the peer to open a stream. The caller reads the Request with
// ReadRequest (under a deadline) and answers with WriteResponse.
func (l *Link) AcceptStream() (net.Conn, error) {
	s, err := l.sess.AcceptStream()
	if err != nil {
		return nil, l.streamErr(err)
	}
	return s, nil
}
