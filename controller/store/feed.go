package store

import (
	"context"
	"sync"
)

// Collections named in a Change.
const (
	Routers         = "routers"
	Keys            = "keys"
	Services        = "services"
	Identities      = "identities"
	ServicePolicies = "service-policies"
	// All tells a subscriber that it missed changes and must re-read everything.
	All = "*"
)

// Operations named in a Change.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	OpState  = "state" // a router's reported status/health changed (SetRouterState)
)

// Change says which object changed; subscribers re-read it (or notice it is gone).
type Change struct {
	Collection string `json:"collection"`
	Op         string `json:"op"`
	ID         string `json:"id"`
}

// maxLag is how many object changes a subscriber may lag behind before its queue is replaced
// by a single resync Change. Status reports (OpState) do not count: a router's report still
// queued makes a later one of the same router redundant (subscribers re-read), so they take at
// most one entry per router, up to maxStateLag. Before, status reports of 5,000 routers
// overflowed the queue, and every overflow made every subscriber re-read everything (a
// PostgreSQL replica rebuilt its snapshot 963 times with no object changed).
const (
	maxLag      = 4096
	maxStateLag = 1 << 16
)

// Feed fans changes out to subscribers without ever blocking the publisher. Backends embed
// it and Publish after each commit; a PostgreSQL backend publishes what LISTEN receives, so
// every replica's subscribers see every replica's writes.
type Feed struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	mu     sync.Mutex
	queue  []Change
	states map[string]struct{} // routers with a status report in queue
	wake   chan struct{}       // capacity 1: "the queue is not empty"
}

// add queues c unless it is a status report already queued, or replaces the queue with one
// resync Change when the subscriber lags too far behind.
func (s *subscriber) add(c Change) {
	if c.Op == OpState {
		if _, queued := s.states[c.ID]; queued {
			return
		}
	}
	if len(s.queue) > 0 && s.queue[0].Collection == All && len(s.queue) == 1 {
		return // a resync is pending: it covers c
	}
	if len(s.queue)-len(s.states) >= maxLag || len(s.states) >= maxStateLag {
		s.queue = append(s.queue[:0], Change{Collection: All})
		clear(s.states)
		return
	}
	if c.Op == OpState {
		if s.states == nil {
			s.states = map[string]struct{}{}
		}
		s.states[c.ID] = struct{}{}
	}
	s.queue = append(s.queue, c)
}

// Publish queues c for every subscriber.
func (f *Feed) Publish(c Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.mu.Lock()
		s.add(c)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel of changes, in commit order, that is closed when ctx ends.
func (f *Feed) Subscribe(ctx context.Context) <-chan Change {
	s := &subscriber{wake: make(chan struct{}, 1)}
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	out := make(chan Change)
	go func() {
		defer close(out)
		defer func() {
			f.mu.Lock()
			delete(f.subs, s)
			f.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			s.mu.Lock()
			batch := s.queue
			s.queue = nil
			clear(s.states)
			s.mu.Unlock()
			for _, c := range batch {
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
