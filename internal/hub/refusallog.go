package hub

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// refusalLog keeps refusals from flooding the log: per identity, the first refusal of an
// interval is logged as it happens, the rest are counted by reason and logged as one summary
// line when the interval is over. 20,000 refused dials in a burst make two lines, not 20,000.
// Entries exist only for identities with links (the snapshot admits them), so the map is
// bounded by the snapshot.
type refusalLog struct {
	log      *slog.Logger
	interval time.Duration

	mu    sync.Mutex
	peers map[string]*refusals
}

type refusals struct {
	logged time.Time      // when the last line for this identity was written
	counts map[string]int // refusals since, by reason, not yet logged
}

func newRefusalLog(log *slog.Logger, interval time.Duration) *refusalLog {
	return &refusalLog{log: log, interval: interval, peers: map[string]*refusals{}}
}

// note logs a refusal of identity's (msg and attrs) or counts it under reason when a line for
// the identity was written less than an interval ago.
func (r *refusalLog) note(identity, reason, msg string, attrs ...any) {
	now := time.Now()
	r.mu.Lock()
	p := r.peers[identity]
	if p == nil {
		p = &refusals{counts: map[string]int{}}
		r.peers[identity] = p
	}
	if now.Sub(p.logged) < r.interval {
		p.counts[reason]++
		r.mu.Unlock()
		return
	}
	p.logged = now
	suppressed := p.summary()
	r.mu.Unlock()
	if suppressed != nil {
		attrs = append(attrs, suppressed)
	}
	r.log.Info(msg, append([]any{"identity", identity}, attrs...)...)
}

// summary, under mu, takes the counted refusals as a log attribute (nil when none).
func (p *refusals) summary() any {
	if len(p.counts) == 0 {
		return nil
	}
	var attrs []any
	for _, reason := range slices.Sorted(maps.Keys(p.counts)) {
		attrs = append(attrs, slog.Int(reason, p.counts[reason]))
	}
	clear(p.counts)
	return slog.Group("also_refused", attrs...)
}

// flush writes the summaries of intervals that are over and forgets identities that were
// quiet for one.
func (r *refusalLog) flush(now time.Time) {
	type line struct {
		identity string
		summary  any
	}
	var lines []line
	r.mu.Lock()
	for id, p := range r.peers {
		if now.Sub(p.logged) < r.interval {
			continue
		}
		if s := p.summary(); s != nil {
			p.logged = now
			lines = append(lines, line{id, s})
		} else {
			delete(r.peers, id)
		}
	}
	r.mu.Unlock()
	for _, l := range lines {
		r.log.Info("refusals since the last line", "identity", l.identity, "interval", r.interval, l.summary)
	}
}

// run flushes once per interval until ctx ends.
func (r *refusalLog) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.flush(now)
		}
	}
}
