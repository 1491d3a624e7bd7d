package controlserver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/control"
)

// Status is what one router's sessions on this controller reported since the last flush, as
// the store should record it: the latest state wins, so a thousand heartbeats of one router
// between two flushes are one row.
type Status struct {
	RouterID string
	Online   bool
	At       time.Time // last seen
	// Hello is the hello of a session that began since the last flush (version, failure
	// domain, image attestation); nil when no session began.
	Hello *control.Hello
	// Health is the router's latest per-service health; HealthSet says it changed (or is due
	// to be rewritten) since the last flush.
	Health    []control.ServiceHealth
	HealthSet bool
}

// merge folds the later report next into st: next's state and time win, a hello or health
// not repeated in next is kept.
func (st Status) merge(next Status) Status {
	if next.Hello == nil {
		next.Hello = st.Hello
	}
	if !next.HealthSet && st.HealthSet {
		next.Health, next.HealthSet = st.Health, true
	}
	return next
}

// Liveness writer defaults. A flush every 250 ms keeps the API's view of status at most
// about a quarter of a second behind in steady state; 2,000 routers per batch bound one
// transaction's hold on SQLite's single writer (API writes queue behind it) while writing
// 8,000 routers a second, more than a 10,000-router fleet's refreshes (one per router every
// LastSeenInterval) need.
const (
	defaultFlushInterval = 250 * time.Millisecond
	maxFlushBatch        = 2000
	// finalFlushTimeout bounds the flush of the last reports (every session offline) when
	// the server stops.
	finalFlushTimeout = 10 * time.Second
)

// liveness keeps router status in memory and writes it to the backend in batches from one
// goroutine, so that no session waits on the store to be welcomed or to have a heartbeat
// acknowledged. Reports coalesce per router, and a flush writes at most maxFlushBatch
// routers: a backlog (a fleet reconnecting at once) is written over several intervals, at
// a bounded rate, instead of queueing transactions in front of the store's writer. Memory is
// one entry per router with an unwritten report: bounded by the routers that exist.
type liveness struct {
	backend  Backend
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]Status
}

func newLiveness(b Backend, interval time.Duration, log *slog.Logger) *liveness {
	return &liveness{backend: b, interval: interval, log: log, pending: map[string]Status{}}
}

// report queues st for the next flush.
func (l *liveness) report(st Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.pending[st.RouterID]; ok {
		st = prev.merge(st)
	}
	l.pending[st.RouterID] = st
}

// Backlog is how many routers have reports not yet written.
func (l *liveness) backlog() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// take removes up to n pending reports.
func (l *liveness) take(n int) []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := make([]Status, 0, min(n, len(l.pending)))
	for id, st := range l.pending {
		if len(batch) == n {
			break
		}
		batch = append(batch, st)
		delete(l.pending, id)
	}
	return batch
}

// giveBack re-queues a batch whose write failed, under any report that arrived since.
func (l *liveness) giveBack(batch []Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range batch {
		if later, ok := l.pending[st.RouterID]; ok {
			st = st.merge(later)
		}
		l.pending[st.RouterID] = st
	}
}

// flush writes one batch and reports whether more is pending.
func (l *liveness) flush(ctx context.Context) (more bool, err error) {
	batch := l.take(maxFlushBatch)
	if len(batch) == 0 {
		return false, nil
	}
	if err := l.backend.RecordStatus(ctx, batch); err != nil {
		l.giveBack(batch)
		return true, err
	}
	return l.backlog() > 0, nil
}

// run flushes every interval until ctx ends, then, once sessionsDone is closed, writes what
// is left (the offline reports of the sessions the shutdown closed) within finalFlushTimeout.
func (l *liveness) run(ctx context.Context, sessionsDone <-chan struct{}) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			<-sessionsDone
			l.drain()
			return
		case <-t.C:
		}
		_, err := l.flush(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			l.log.Error("cannot record router status; keeping it in memory and retrying", "error", err, "pending", l.backlog())
			failing = true
		case err == nil && failing:
			l.log.Info("router status recorded again", "pending", l.backlog())
			failing = false
		}
	}
}

// drain writes every pending report, batch by batch, within finalFlushTimeout.
func (l *liveness) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), finalFlushTimeout)
	defer cancel()
	for {
		more, err := l.flush(ctx)
		if err != nil {
			l.log.Error("cannot record the last router status before stopping", "error", err, "pending", l.backlog())
			return
		}
		if !more {
			return
		}
	}
}
