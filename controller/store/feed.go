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

// maxLag is how many changes a subscriber may lag behind before its queue is replaced by a
// single resync Change; status updates of many routers arrive in bursts.
const maxLag = 4096

// Feed fans changes out to subscribers without ever blocking the publisher. Backends embed
// it and Publish after each commit; a PostgreSQL backend publishes what LISTEN receives, so
// every replica's subscribers see every replica's writes.
type Feed struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	mu    sync.Mutex
	queue []Change
	wake  chan struct{} // capacity 1: "the queue is not empty"
}

// Publish queues c for every subscriber.
func (f *Feed) Publish(c Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.mu.Lock()
		if len(s.queue) >= maxLag {
			s.queue = append(s.queue[:0], Change{Collection: All})
		} else {
			s.queue = append(s.queue, c)
		}
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
