package fabric

import (
	"errors"
	"fmt"
	"net"

	"github.com/ztna/ztna/internal/fabric/mux"
)

// Stream limits of a link by default: a peer may keep this many streams open on one link
// (streams it opened, not yet closed by both ends). An accepting hub serves one identity per
// link; a dialing router serves every identity a hub relays, hence more.
const (
	DefaultMaxStreamsAccepted = 8192
	DefaultMaxStreamsDialed   = 16384
)

// LinkLimits bounds what the peer of a link can make this end hold.
type LinkLimits struct {
	// MaxStreams bounds the streams the peer has open on the link; beyond it the link's reader
	// answers a new stream with LimitReached at once, with no goroutine started for it. Zero
	// means DefaultMaxStreamsAccepted on a link Accept ran, DefaultMaxStreamsDialed on one Dial
	// made; negative means no bound.
	MaxStreams int
	// MaxSetups bounds the peer's streams not yet past their setup: with ServeStreams, those
	// whose handler has not called SetUp yet (nor returned); a stream taken with AcceptStream
	// counts until SetUp. Beyond it, as beyond MaxStreams, the reader refuses new streams
	// without a goroutine. Zero means no bound.
	MaxSetups int
	// SharedStreams, when set, returns (once the handshake named the peer) the quota of
	// streams that the peer's links share (a hub gives each identity one), refused the same
	// way as beyond MaxStreams; nil: none.
	SharedStreams func(Peer) *Quota
	// StreamRefused, when set, is called for each stream a limit refused, with the limit (for
	// a metric and a rate-limited log line; it runs on the link's reader, so it must not
	// block).
	StreamRefused func(Peer, StreamLimit)
	// Pace, when set, is called on the link's reader before each stream the peer opens and may
	// block to slow the peer down (see mux.Config.Pace).
	Pace func()
	// AllowLegacy lets a peer that speaks only ALPN ztna-fabric/1 link (a hub's router or
	// client, a router's or client's hub from before the per-link budget). Under it every
	// stream is granted its 4 MiB window up front, so such a link holds at most
	// LegacyMaxStreams streams, whichever end opened them, beyond which the peer's streams are
	// refused (LimitLegacyStreams) and this end's opens fail with LimitReached. Off, the
	// default, an accepting end answers such a peer's control stream with LimitReached and a
	// message naming the setting, and a dialing end closes the link (its Dial fails, saying so).
	AllowLegacy bool
	// LegacyRefused, when set, is called on the accepting side for each link refused for want
	// of AllowLegacy (for a metric and a log line).
	LegacyRefused func(Peer)
	// Admit, on the accepting side, may refuse a peer that verified (for example one that has
	// too many links already) before the link is up: the peer's Dial fails with the *Error
	// Admit returns (any other error is sent as Unavailable). Nil admits all.
	Admit func(Peer) error
}

func (lim LinkLimits) applyTo(c *mux.Config, peer Peer, accepted bool) {
	n := lim.MaxStreams
	switch {
	case n < 0:
		n = 0
	case n == 0 && accepted:
		n = DefaultMaxStreamsAccepted
	case n == 0:
		n = DefaultMaxStreamsDialed
	}
	c.MaxStreams = n
	if accepted && n > 0 { // the peer opened the control stream too
		c.MaxStreams++
	}
	c.MaxSetups = max(lim.MaxSetups, 0)
	if lim.SharedStreams != nil {
		c.SharedStreams = lim.SharedStreams(peer)
	}
	c.Pace = lim.Pace
	answers := map[StreamLimit][]byte{}
	for l, msg := range map[StreamLimit]string{
		LimitStreams:       fmt.Sprintf("the link has %d streams open, its limit", n),
		LimitSetups:        fmt.Sprintf("the link has %d stream setups in progress, its limit", c.MaxSetups),
		LimitSharedStreams: fmt.Sprintf("%s has as many streams open across its links as it may", peer),
		LimitLegacyStreams: errLegacyStreams.Message,
	} {
		answers[l], _ = (&Response{Code: LimitReached, Message: msg}).Marshal()
	}
	refused := lim.StreamRefused
	c.Refuse = func(l mux.Limit) []byte {
		if refused != nil {
			refused(peer, l)
		}
		return answers[l]
	}
}

// StreamLimit names the limit that refused a stream.
type StreamLimit = mux.Limit

// Stream limits (see LinkLimits).
const (
	LimitStreams       = mux.LimitStreams
	LimitSetups        = mux.LimitSetups
	LimitSharedStreams = mux.LimitSharedStreams
	LimitLegacyStreams = mux.LimitAllStreams // LinkLimits.AllowLegacy's LegacyMaxStreams
)

// LegacyMaxStreams is how many streams a link under ALPN (ztna-fabric/1) may hold, its control
// stream aside: each is granted its whole window (4 MiB) up front, and so many of them buffer
// at most what a budgeted link's streams share beyond their initial windows (32 MiB).
const LegacyMaxStreams = maxSessionWindow / streamWindow

// errLegacyPeer is the answer to a peer that speaks only ALPN when LinkLimits.AllowLegacy is
// off, errLegacyHub a dialing end's error for such a hub, errLegacyStreams the answer to a
// stream beyond LegacyMaxStreams.
var (
	errLegacyPeer = &Error{Code: LimitReached, Message: "this hub links only peers that speak " + ALPNBudget +
		" (stream memory budgeted per link) and the peer offered only " + ALPN + ": upgrade it, or allow legacy peers at the hub (controller fabric_limits.legacy_peers, --fabric-legacy-peers)"}
	errLegacyHub     = fmt.Errorf("the hub speaks only %s (every stream granted 4 MiB up front, no per-link budget): upgrade it, or allow legacy hubs (ztna-router run --fabric-legacy-peers, client.Config.AllowLegacyHubs)", ALPN)
	errLegacyStreams = &Error{Code: LimitReached, Message: fmt.Sprintf("the link speaks %s (every stream granted 4 MiB up front): it carries at most %d streams at once; upgrade the peer to %s for more",
		ALPN, LegacyMaxStreams, ALPNBudget)}
)

// Quota is a bound shared by links (LinkLimits.SharedStreams).
type Quota = mux.Quota

// NewQuota returns a quota of max.
func NewQuota(max int) *Quota { return mux.NewQuota(max) }

// SetUp ends the setup of a stream from ServeStreams: it no longer counts against MaxSetups
// (a handler that returns ends it too).
func SetUp(c net.Conn) {
	if s, ok := c.(interface{ SetUp() }); ok {
		s.SetUp()
	}
}

func (lim LinkLimits) admit(peer Peer) error {
	if lim.Admit == nil {
		return nil
	}
	return lim.Admit(peer)
}

// refusal is the response that carries err to the peer.
func refusal(err error) *Response {
	var fe *Error
	if errors.As(err, &fe) {
		return &Response{Code: fe.Code, Message: fe.Message}
	}
	return &Response{Code: Unavailable, Message: err.Error()}
}
