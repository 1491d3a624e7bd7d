package controltest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// Hubs is an in-memory controlserver.HubBackend next to a Backend: a snapshot the test sets, and hub
// certificates for the Backend's routers that hold the hub role.
type Hubs struct {
	b *Backend

	mu   sync.Mutex
	snap control.HubSnapshot
}

// NewHubs returns hub support for b with an empty snapshot.
func NewHubs(b *Backend) *Hubs { return &Hubs{b: b} }

// SetSnapshot replaces the snapshot and tells the server that only hubs are concerned.
func (h *Hubs) SetSnapshot(s control.HubSnapshot) {
	h.mu.Lock()
	h.snap = s
	h.mu.Unlock()
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	for _, ch := range h.b.subs {
		ch <- controlserver.Change{HubsOnly: true}
	}
}

// HubSnapshot implements controlserver.HubBackend.
func (h *Hubs) HubSnapshot(context.Context) (control.HubSnapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap, nil
}

// IssueHubCertificate implements controlserver.HubBackend.
func (h *Hubs) IssueHubCertificate(ctx context.Context, id string, csrPEM []byte) ([]byte, error) {
	r, err := h.b.Router(ctx, id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(r.Roles, api.RoleHub) {
		return nil, fmt.Errorf("router %s does not hold the role %s", id, api.RoleHub)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	iss, err := h.b.CA.IssueFromCSR(csr, api.KindHub, id, h.b.Lifetime)
	if err != nil {
		return nil, err
	}
	return iss.ChainPEM, nil
}
