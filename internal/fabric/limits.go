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
