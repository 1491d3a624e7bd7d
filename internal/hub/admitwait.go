package hub

import (
	"sync/atomic"
	"time"

	"github.com/ztna/ztna/internal/fabric"
)

// AdmitWait is how long a link from a router or identity the snapshot does not list waits for
// a snapshot that lists it before it is refused. A router links to its hubs the moment it has
// enrolled, and the snapshot naming it follows the enrolment by a fold interval and a rebuild
// (embedded hub) or a push (standalone hub): without the wait its first links were refused
// until the next rebuild. A deleted router's retries are merely slowed by it.
const AdmitWait = 3 * time.Second

// maxAdmitWaiters bounds the links waiting to be admitted at once; more are refused at once,
// so a flood of links with valid but unlisted certificates holds at most this many
// handshakes (each already a goroutine of the accept loop, bounded by its handshake timeout).
const maxAdmitWaiters = 256

// admitWaiters counts the links waiting in awaitListed, per process (tests run several hubs;
// the bound is what matters).
var admitWaiters atomic.Int64

// awaitListed waits up to AdmitWait for a snapshot that admits peer, and reports whether one
// came. A hub that has no snapshot from the controller yet admits everyone and never waits.
func (h *Hub) awaitListed(peer fabric.Peer) bool {
	if h.ix.Load().admits(peer) {
		return true
	}
	if admitWaiters.Add(1) > maxAdmitWaiters {
		admitWaiters.Add(-1)
		return false
	}
	defer admitWaiters.Add(-1)
	deadline := time.NewTimer(AdmitWait)
	defer deadline.Stop()
	for {
		ix, changed := h.current()
		if ix.admits(peer) {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}
