package controlserver

import (
	"log/slog"
	"sync"
	"time"
)

// failureLogInterval is how often failed handshakes are logged at most.
const failureLogInterval = time.Second

// failureLog keeps failures any peer can cause (a TLS handshake that fails or times out)
// from flooding the log: the first of an interval is logged as it happens with the number
// left unlogged since the previous line; the rest are only counted. A fleet of 5,000 routers
// timing out at once made 5,000 warnings, and the sessions writing them queued on the log
// writer's lock.
type failureLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	logged     time.Time
	suppressed int
}

// note logs msg with attrs at warning level, or counts it when a line was written less than
// an interval ago.
func (f *failureLog) note(msg string, attrs ...any) {
	now := time.Now()
	f.mu.Lock()
	if now.Sub(f.logged) < f.every {
		f.suppressed++
		f.mu.Unlock()
		return
	}
	f.logged = now
	n := f.suppressed
	f.suppressed = 0
	f.mu.Unlock()
	if n > 0 {
		attrs = append(attrs, "unlogged_since_last", n)
	}
	f.log.Warn(msg, attrs...)
}
