package controlserver

import (
	"sync"
	"time"
)

// Admission: a fleet reconnecting at once (a controller restart, a replica lost) must not
// queue thousands of half-admitted sessions, each holding store reads and timing out into a
// reconnect storm. At most max sessions are between hello and their first assignment; a
// hello beyond that is answered error{retry_after_ms} and closed before it costs the store
// anything, and the router waits that long (plus jitter) before it tries again. Sessions
// already up are never closed to make room.
const (
	defaultMaxAdmitting = 256
	// retryAfterMin is what a refused router is told at a small backlog; every max refusals
	// within a second add as much again (the backlog takes that long to admit), up to
	// retryAfterMax.
	retryAfterMin = time.Second
	retryAfterMax = 30 * time.Second
)

// reconnectArrivals is the arrival rate (sessions per second) a fleet's reconnects are
// spread to: welcome.reconnect_spread_ms is this controller's session count divided by it,
// and routers spread their reconnect attempts over that window after losing a session.
const reconnectArrivals = 1000

type admission struct {
	max int

	mu          sync.Mutex
	inflight    int
	refused     int // refusals since windowStart
	windowStart time.Time
}

func newAdmission(max int) *admission {
	if max <= 0 {
		max = defaultMaxAdmitting
	}
	return &admission{max: max}
}

// enter admits a session (release ends its admission; calling it again does nothing) or
// says after how long the router should retry.
func (a *admission) enter() (release func(), retryAfter time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight >= a.max {
		now := time.Now()
		if now.Sub(a.windowStart) > time.Second {
			a.windowStart, a.refused = now, 0
		}
		a.refused++
		return nil, min(retryAfterMin*time.Duration(1+a.refused/a.max), retryAfterMax)
	}
	a.inflight++
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.inflight--
			a.mu.Unlock()
		})
	}, 0
}

// reconnectSpread is the window routers spread their reconnects over (see reconnectArrivals).
func (s *Server) reconnectSpread() time.Duration {
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	return time.Duration(n) * time.Second / reconnectArrivals
}
