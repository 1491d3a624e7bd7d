package fabric

import (
	"errors"
	"fmt"

	"github.com/ztna/ztna/internal/fabric/mux"
)

// Stream limits of a link by default: a peer may keep this many streams open on one link
// (streams it opened, not yet closed by both ends). An accepting hub serves one identity per
// link; a dialing router serves every identity a hub relays, hence more.
const (
	DefaultMaxStreamsAccepted = 4096
	DefaultMaxStreamsDialed   = 16384
)

// LinkLimits bounds what the peer of a link can make this end hold.
type LinkLimits struct {
	// MaxStreams bounds the streams the peer has open on the link; beyond it the link's reader
	// answers a new stream with LimitReached at once, with no goroutine started for it. Zero
	// means DefaultMaxStreamsAccepted on a link Accept ran, DefaultMaxStreamsDialed on one Dial
	// made; negative means no bound.
	MaxStreams int
	// StreamRefused, when set, is called for each stream MaxStreams refused (for a metric and
	// a rate-limited log line; it runs on the link's reader, so it must not block).
	StreamRefused func(Peer)
	// Admit, on the accepting side, may refuse a peer that verified (for example one that has
	// too many links already) before the link is up: the peer's Dial fails with the *Error
	// Admit returns (any other error is sent as Unavailable). Nil admits all.
	Admit func(Peer) error
}

func (lim LinkLimits) applyTo(c *mux.Config, peer Peer, accepted bool) {
	n := lim.MaxStreams
	switch {
	case n < 0:
		return
	case n == 0 && accepted:
		n = DefaultMaxStreamsAccepted
	case n == 0:
		n = DefaultMaxStreamsDialed
	}
	c.MaxStreams = n
	if accepted { // the peer opened the control stream too
		c.MaxStreams++
	}
	c.Refusal, _ = (&Response{Code: LimitReached, Message: fmt.Sprintf("the link has %d streams open, its limit", n)}).Marshal()
	if f := lim.StreamRefused; f != nil {
		c.OnRefused = func() { f(peer) }
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
