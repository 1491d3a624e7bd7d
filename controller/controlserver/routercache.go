package controlserver

import (
	"context"
	"sync"
)

// routerCache keeps the routers the control channel looked up, so that a handshake, a hello
// and a session's first push do not each read the store: at 5,000 routers connecting at once,
// those reads (two queries each, through SQLite's four reader connections) queued past the
// 10 s handshake deadline and no fleet converged. The change feed invalidates an entry (or
// all of them) before the sessions it concerns are woken, so a session re-checking its router
// reads the store; a lookup that raced an invalidation is not cached (gen). Entries exist only
// for routers that exist: bounded by the routers table.
type routerCache struct {
	backend Backend

	mu   sync.Mutex
	gen  uint64 // bumped by every invalidation
	byID map[string]Router
}

func newRouterCache(b Backend) *routerCache {
	return &routerCache{backend: b, byID: map[string]Router{}}
}

// get returns router id from the cache, or from the backend (errors are not cached: a
// deleted router's certificate is looked up, and refused, every time).
func (c *routerCache) get(ctx context.Context, id string) (Router, error) {
	c.mu.Lock()
	r, ok := c.byID[id]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := c.backend.Router(ctx, id)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.byID[id] = r
	}
	c.mu.Unlock()
	return r, nil
}

// invalidate forgets what ch may have changed: one router, or every router.
func (c *routerCache) invalidate(ch Change) {
	if ch.HubsOnly || ch.ByRoles {
		return // services, identities, policies: no router changed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if ch.RouterID == "" {
		clear(c.byID)
		return
	}
	delete(c.byID, ch.RouterID)
}

// RouterLister is what a Backend may add to have the cache filled in one read when the
// server starts: a restarted controller then admits its reconnecting fleet without a store
// read per router (which also queued the management API behind it: at 5,000 routers the API
// did not answer within 20 s of a restart).
type RouterLister interface {
	// Routers lists every router.
	Routers(ctx context.Context) ([]Router, error)
}

// load fills the cache from the backend's list, unless a change arrived meanwhile (then the
// sessions look their routers up one by one, as without a list).
func (c *routerCache) load(ctx context.Context) error {
	l, ok := c.backend.(RouterLister)
	if !ok {
		return nil
	}
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	all, err := l.Routers(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return nil
	}
	for _, r := range all {
		c.byID[r.ID] = r
	}
	return nil
}
