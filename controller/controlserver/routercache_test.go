package controlserver

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// countingBackend answers Router from a map and counts the lookups; hold, when set, is
// called inside a lookup (after the value is read) to race an invalidation against it.
type countingBackend struct {
	Backend
	mu      sync.Mutex
	routers map[string]Router
	lookups int
	hold    func()
}

func (b *countingBackend) Router(_ context.Context, id string) (Router, error) {
	b.mu.Lock()
	r, ok := b.routers[id]
	b.lookups++
	hold := b.hold
	b.mu.Unlock()
	if hold != nil {
		hold()
	}
	if !ok {
		return Router{}, fmt.Errorf("%w: %s", ErrRouterNotFound, id)
	}
	return r, nil
}

func (b *countingBackend) set(r Router) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.routers[r.ID] = r
}

func TestRouterCache(t *testing.T) {
	ctx := context.Background()
	b := &countingBackend{routers: map[string]Router{}}
	b.set(Router{ID: "r1", Roles: []string{"a"}})
	b.set(Router{ID: "r2", Roles: []string{"a"}})
	c := newRouterCache(b)

	get := func(id string) Router {
		t.Helper()
		r, err := c.get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for range 3 {
		get("r1")
	}
	if b.lookups != 1 {
		t.Fatalf("3 gets of one router made %d store lookups, want 1", b.lookups)
	}

	// Service, identity and policy changes leave routers cached.
	c.invalidate(Change{ByRoles: true, Roles: []string{"a"}})
	c.invalidate(Change{HubsOnly: true})
	get("r1")
	if b.lookups != 1 {
		t.Fatalf("a service or policy change made the router be looked up again (%d lookups)", b.lookups)
	}

	// A change of the router is read from the store next time; others stay cached.
	get("r2")
	b.set(Router{ID: "r1", Roles: []string{"b"}})
	c.invalidate(Change{RouterID: "r1"})
	if r := get("r1"); r.Roles[0] != "b" {
		t.Fatalf("after its change router r1 has roles %v, want [b]", r.Roles)
	}
	get("r2")
	if b.lookups != 3 {
		t.Fatalf("%d lookups, want 3 (r1 twice, r2 once)", b.lookups)
	}

	// Every router changed (the feed overflowed): all are read again.
	c.invalidate(Change{})
	get("r1")
	get("r2")
	if b.lookups != 5 {
		t.Fatalf("%d lookups after an all-routers change, want 5", b.lookups)
	}

	// A deleted router is refused, and not cached.
	b.mu.Lock()
	delete(b.routers, "r2")
	b.mu.Unlock()
	c.invalidate(Change{RouterID: "r2"})
	for range 2 {
		if _, err := c.get(ctx, "r2"); err == nil {
			t.Fatal("a deleted router was served from the cache")
		}
	}

	// A lookup that read the router before a change whose invalidation passed it while it was
	// in flight does not cache what it read.
	b.mu.Lock()
	b.hold = func() {
		b.mu.Lock()
		b.hold = nil
		b.routers["r1"] = Router{ID: "r1", Roles: []string{"c"}}
		b.mu.Unlock()
		c.invalidate(Change{RouterID: "r1"})
	}
	b.mu.Unlock()
	c.invalidate(Change{RouterID: "r1"})
	if r := get("r1"); r.Roles[0] != "b" {
		t.Fatalf("the racing lookup read %v, want the value before the change [b]", r.Roles)
	}
	if r := get("r1"); r.Roles[0] != "c" {
		t.Fatalf("after a change that raced a lookup, router r1 has roles %v from the cache, want [c]", r.Roles)
	}
}

// listingBackend is a countingBackend that lists its routers (a RouterLister).
type listingBackend struct {
	*countingBackend
	during func() // called inside Routers, after the list is read
}

func (b *listingBackend) Routers(context.Context) ([]Router, error) {
	b.mu.Lock()
	var out []Router
	for _, r := range b.routers {
		out = append(out, r)
	}
	b.mu.Unlock()
	if b.during != nil {
		b.during()
	}
	return out, nil
}

func TestRouterCacheLoad(t *testing.T) {
	ctx := context.Background()
	b := &listingBackend{countingBackend: &countingBackend{routers: map[string]Router{}}}
	for i := range 100 {
		b.set(Router{ID: fmt.Sprint("r", i)})
	}
	c := newRouterCache(b)
	if err := c.load(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := c.get(ctx, fmt.Sprint("r", i)); err != nil {
			t.Fatal(err)
		}
	}
	if b.lookups != 0 {
		t.Fatalf("%d store lookups after the cache was loaded, want 0", b.lookups)
	}

	// A change while the list is read: the list may predate it, so none of it is kept.
	c = newRouterCache(b)
	b.during = func() { c.invalidate(Change{RouterID: "r1"}) }
	if err := c.load(ctx); err != nil {
		t.Fatal(err)
	}
	c.get(ctx, "r2")
	if b.lookups != 1 {
		t.Fatalf("a list that raced a change was kept (%d lookups, want 1)", b.lookups)
	}
}
