package embeddedhub

import (
	"sync"

	"github.com/ztna/ztna/internal/control"
)

// Published is the snapshot the embedded hub built last, shared with the standalone hubs'
// sessions (Backend.Published): one store read per fold window serves every hub, instead of
// one per hub session per change, and the sessions compare versions instead of snapshots.
type Published struct {
	mu       sync.Mutex
	snap     control.HubSnapshot
	version  uint64
	watchers []func()
}

// publish installs snap as the next version and calls the watchers.
func (p *Published) publish(snap control.HubSnapshot) {
	p.mu.Lock()
	p.version++
	snap.Version = p.version
	p.snap = snap
	watchers := p.watchers
	p.mu.Unlock()
	for _, w := range watchers {
		w()
	}
}

// Latest returns the last published snapshot; false before the first.
func (p *Published) Latest() (control.HubSnapshot, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap, p.version > 0
}

// Watch calls fn after every publication (the control server's PokeHubs).
func (p *Published) Watch(fn func()) {
	p.mu.Lock()
	p.watchers = append(p.watchers, fn)
	p.mu.Unlock()
}
