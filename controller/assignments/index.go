// Package assignments indexes services by the router roles that host them, so that a router's
// assignment is the union of its roles' entries instead of a scan of the services table, and
// a service change names the roles whose routers it concerns (the control channel wakes only
// those). The index follows the store's change feed: the caller Loads it once after
// subscribing, then Applies every service change.
package assignments

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

// Index is safe for concurrent use.
type Index struct {
	mu       sync.RWMutex
	ready    bool
	services map[string]entry               // by service id
	byRole   map[string]map[string]struct{} // router role → service ids
}

type entry struct {
	service control.Service
	roles   []string
}

// Ready reports whether the index was loaded (and not invalidated since).
func (ix *Index) Ready() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.ready
}

// Invalidate marks the index unusable until the next Load (a change it could not apply).
func (ix *Index) Invalidate() {
	ix.mu.Lock()
	ix.ready = false
	ix.mu.Unlock()
}

// Load replaces the index with every service in st.
func (ix *Index) Load(ctx context.Context, st store.Store) error {
	list, err := st.ListServices(ctx)
	if err != nil {
		return err
	}
	services := make(map[string]entry, len(list))
	byRole := map[string]map[string]struct{}{}
	for i := range list {
		e, err := newEntry(&list[i])
		if err != nil {
			return err
		}
		services[e.service.ID] = e
		file(byRole, e)
	}
	ix.mu.Lock()
	ix.services, ix.byRole, ix.ready = services, byRole, true
	ix.mu.Unlock()
	return nil
}

// Apply re-reads service id (created, updated or deleted) and returns the router roles whose
// assignments may have changed: its roles before and after.
func (ix *Index) Apply(ctx context.Context, st store.Store, id string) ([]string, error) {
	s, err := st.GetService(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var next *entry
	if s != nil && err == nil {
		e, err := newEntry(s)
		if err != nil {
			return nil, err
		}
		next = &e
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var roles []string
	if old, ok := ix.services[id]; ok {
		roles = append(roles, old.roles...)
		for _, r := range old.roles {
			delete(ix.byRole[r], id)
			if len(ix.byRole[r]) == 0 {
				delete(ix.byRole, r)
			}
		}
		delete(ix.services, id)
	}
	if next != nil {
		roles = append(roles, next.roles...)
		ix.services[id] = *next
		file(ix.byRole, *next)
	}
	slices.Sort(roles)
	return slices.Compact(roles), nil
}

// ForRoles returns the services hosted by any of roles, sorted by name; false when the index
// is not ready.
func (ix *Index) ForRoles(roles []string) ([]control.Service, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.ready {
		return nil, false
	}
	out := []control.Service{}
	seen := map[string]struct{}{}
	for _, r := range roles {
		for id := range ix.byRole[r] {
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			out = append(out, ix.services[id].service)
		}
	}
	slices.SortFunc(out, func(a, b control.Service) int { return strings.Compare(a.Name, b.Name) })
	return out, true
}

func newEntry(s *api.Service) (entry, error) {
	ws, err := control.ServiceFromAPI(s)
	if err != nil {
		return entry{}, err
	}
	roles := slices.Clone(s.RouterRoles)
	slices.Sort(roles)
	return entry{service: ws, roles: slices.Compact(roles)}, nil
}

func file(byRole map[string]map[string]struct{}, e entry) {
	for _, r := range e.roles {
		set := byRole[r]
		if set == nil {
			set = map[string]struct{}{}
			byRole[r] = set
		}
		set[e.service.ID] = struct{}{}
	}
}
