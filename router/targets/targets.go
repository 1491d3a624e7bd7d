// Package targets holds a router's assigned targets — the services the controller told it to
// host — and the only dialer the router uses towards customer networks, which refuses every
// address:port that is not assigned. A router is never an open proxy.
package targets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/target"
)

// ErrNotAssigned is returned for a dial to an address:port the router was not assigned.
var ErrNotAssigned = errors.New("target is not assigned to this router")

// Snapshot is the assignment at one point in time.
type Snapshot struct {
	Services []control.Service
	// Generation counts replacements; it changes whenever Services may have changed.
	Generation uint64
}

// Set is the current assignment. It is safe for concurrent use.
type Set struct {
	mu      sync.RWMutex
	snap    Snapshot
	byAddr  map[string][]control.Service // normalised address → services at that address
	loaded  bool
	changed chan struct{}
}

// NewSet returns an empty set: nothing may be dialled until an assignment arrives.
func NewSet() *Set {
	return &Set{changed: make(chan struct{})}
}

// Replace installs a new assignment and wakes everyone waiting on Changed.
func (s *Set) Replace(services []control.Service) {
	services = slices.Clone(services)
	byAddr := map[string][]control.Service{}
	for _, svc := range services {
		a := target.NormalizeHost(svc.Address)
		byAddr[a] = append(byAddr[a], svc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = Snapshot{Services: services, Generation: s.snap.Generation + 1}
	s.byAddr = byAddr
	s.loaded = true
	close(s.changed)
	s.changed = make(chan struct{})
}

// Snapshot returns the current assignment.
func (s *Set) Snapshot() Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snap
}

// Loaded reports whether any assignment (even an empty one) was installed.
func (s *Set) Loaded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loaded
}

// Changed returns a channel that is closed at the next Replace.
func (s *Set) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Allowed reports whether address:port is assigned.
func (s *Set) Allowed(address string, port int) bool {
	t := target.Normalize(address, port)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.ContainsFunc(s.byAddr[t.Address], func(svc control.Service) bool { return svc.HasPort(t.Port) })
}

// Dialer dials assigned targets only, resolving names with the router's resolver.
type Dialer struct {
	Targets  *Set
	Resolver *net.Resolver
	Timeout  time.Duration // per connection attempt; 0 means 10 s
}

// Dial connects to address:port if, and only if, that pair is assigned to the router.
func (d *Dialer) Dial(ctx context.Context, address string, port int) (net.Conn, error) {
	t := target.Normalize(address, port)
	if !d.Targets.Allowed(t.Address, t.Port) {
		return nil, fmt.Errorf("dial %s: %w", t, ErrNotAssigned)
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	nd := net.Dialer{Timeout: timeout, Resolver: d.Resolver}
	return nd.DialContext(ctx, "tcp", t.String())
}
