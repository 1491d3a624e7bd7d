package controlclient

import (
	"math/rand/v2"
	"time"

	"github.com/ztna/ztna/internal/backoff"
)

// outcome is how a connection attempt ended; it decides how long to wait before the next.
type outcome int

const (
	// unreachable: no TCP connection (refused, timed out, no route). A controller being
	// restarted looks like this, and such an attempt costs the controller nothing.
	unreachable outcome = iota
	// refused: the controller answered (TCP connected) but no session came of it — a TLS
	// failure, an error message, no welcome.
	refused
	// dropped: a session was established and then lost.
	dropped
)

// Reconnect timing. A restarted controller should see its routers back within about a second
// of listening again, so while the controller is merely unreachable the delay stays under
// quickMax (first retry 125–250 ms); that costs a closed port one connection attempt per router
// and second. After restartWindow of unreachability, or when the controller answered but
// refused or dropped the session again and again, delays grow exponentially from slowMin to
// slowMax, so that a controller in trouble is not hammered. Jitter ("equal jitter", see
// package backoff) keeps a fleet of routers from reconnecting in lockstep.
const (
	quickMin      = 250 * time.Millisecond
	quickMax      = time.Second
	restartWindow = 30 * time.Second
	slowMin       = 2 * time.Second
	slowMax       = 30 * time.Second
	// stableAfter is how long a session must last before the policy starts over.
	stableAfter = 3 * time.Second
)

// retryPolicy picks the delay before each reconnect attempt.
type retryPolicy struct {
	quick, slow *backoff.Backoff
	// unreachableSince is when the current run of unreachable attempts began (zero when the
	// last attempt reached the controller).
	unreachableSince time.Time
	// answered counts the attempts since the policy started over where the controller
	// answered but no lasting session came of it.
	answered int
	// spread is the last welcome's reconnect spread: quick retries (a controller restarting,
	// a replica lost) are spread over it, so that a fleet arrives at a bounded rate.
	spread time.Duration
	rand   func(n int64) int64
}

func newRetryPolicy() *retryPolicy {
	return &retryPolicy{quick: backoff.New(quickMin, quickMax), slow: backoff.New(slowMin, slowMax), rand: rand.Int64N}
}

// spreadOver sets the window quick retries are spread over (welcome.reconnect_spread_ms).
func (p *retryPolicy) spreadOver(d time.Duration) { p.spread = max(d, 0) }

// quickNext is a quick delay, spread over the controller's reconnect spread: uniform in
// [0, spread) on top, so that N routers that lost the same controller arrive at about
// N/spread per second instead of all within the first second.
func (p *retryPolicy) quickNext() time.Duration {
	d := p.quick.Next()
	if p.spread > 0 {
		d += time.Duration(p.rand(int64(p.spread)))
	}
	return d
}

// busy returns the delay after the controller refused admission with retryAfter (it is
// shedding a backlog): at least retryAfter, uniform up to twice it, so the refused routers
// come back spread out. It does not count as a refusal: the controller is healthy.
func (p *retryPolicy) busy(retryAfter time.Duration) time.Duration {
	p.unreachableSince = time.Time{}
	return retryAfter + time.Duration(p.rand(int64(retryAfter)+1))
}

// next returns the delay after an attempt that ended at now with o; lasted is how long its
// session was up (dropped only).
func (p *retryPolicy) next(o outcome, lasted time.Duration, now time.Time) time.Duration {
	if o == dropped && lasted >= stableAfter {
		p.quick.Reset()
		p.slow.Reset()
		p.answered = 0
		// The controller (or the path to it) went away after a healthy session: most likely
		// a restart, so retry as quickly as for an unreachable one.
		p.unreachableSince = now
		return p.quickNext()
	}
	if o == unreachable {
		if p.unreachableSince.IsZero() {
			p.unreachableSince = now
		}
		if now.Sub(p.unreachableSince) < restartWindow {
			return p.quickNext()
		}
		return p.slow.Next()
	}
	// The controller answered, then refused or dropped us. Once may be a restart (the session
	// had barely begun); again means the controller is in trouble.
	p.unreachableSince = time.Time{}
	p.answered++
	if p.answered == 1 {
		return p.quick.Next()
	}
	return p.slow.Next()
}
