package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	wire "github.com/ztna/ztna/internal/control"
)

// StoreBackend is the Backend of a real controller: its store and certificate issuer.
type StoreBackend struct {
	Store  store.Store
	Issuer *issuer.Issuer
}

var _ Backend = (*StoreBackend)(nil)

// Router implements Backend.
func (b *StoreBackend) Router(ctx context.Context, id string) (Router, error) {
	r, err := b.Store.GetRouter(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Router{}, fmt.Errorf("router %s: %w", id, ErrRouterNotFound)
	}
	if err != nil {
		return Router{}, err
	}
	return Router{ID: r.ID, Name: r.Name, Roles: r.Roles}, nil
}

// ServicesForRoles implements Backend.
func (b *StoreBackend) ServicesForRoles(ctx context.Context, roles []string) ([]wire.Service, error) {
	all, err := b.Store.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	var out []wire.Service
	for _, s := range all {
		if !slices.ContainsFunc(s.RouterRoles, func(r string) bool { return slices.Contains(roles, r) }) {
			continue
		}
		ws, err := wireService(s)
		if err != nil {
			return nil, err
		}
		out = append(out, ws)
	}
	slices.SortFunc(out, func(a, b wire.Service) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func wireService(s api.Service) (wire.Service, error) {
	ws := wire.Service{ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port, Protocol: s.Protocol}
	if ws.Protocol == "" {
		ws.Protocol = api.ProtocolTCP
	}
	for _, pr := range s.PortRanges {
		from, to, err := api.ParsePortRange(pr)
		if err != nil {
			return ws, fmt.Errorf("service %s: stored port range %q: %w", s.ID, pr, err)
		}
		ws.PortRanges = append(ws.PortRanges, wire.PortRange{From: from, To: to})
	}
	return ws, nil
}

// RouterOnline implements Backend.
func (b *StoreBackend) RouterOnline(ctx context.Context, id string, hello wire.Hello, at time.Time) error {
	st := store.RouterState{Status: ptr(api.RouterOnline), LastSeen: &at, Version: &hello.Version, FailureDomain: &hello.FailureDomain,
		Attestation: json.RawMessage("null")}
	if hello.Image != nil {
		raw, err := json.Marshal(hello.Image)
		if err != nil {
			return err
		}
		st.Attestation = raw
	}
	return b.Store.SetRouterState(ctx, id, st)
}

// RouterHeartbeat implements Backend. It also (re)asserts online, which heals a router that a
// stale-status sweep caught during a long database hiccup.
func (b *StoreBackend) RouterHeartbeat(ctx context.Context, id string, health []wire.ServiceHealth, at time.Time) error {
	h := make([]api.ServiceHealth, 0, len(health))
	for _, s := range health {
		h = append(h, api.ServiceHealth{Name: s.ServiceName, Resolvable: s.Resolvable, Reachable: s.Reachable, Error: s.Error, CheckedAt: s.CheckedAt})
	}
	return b.Store.SetRouterState(ctx, id, store.RouterState{Status: ptr(api.RouterOnline), LastSeen: &at, Health: &h})
}

// RouterOffline implements Backend. A deleted router has no status left to record.
func (b *StoreBackend) RouterOffline(ctx context.Context, id string, at time.Time) error {
	err := b.Store.SetRouterState(ctx, id, store.RouterState{Status: ptr(api.RouterOffline), LastSeen: &at})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// MarkStaleOffline implements Backend.
func (b *StoreBackend) MarkStaleOffline(ctx context.Context, seenBefore time.Time) error {
	routers, err := b.Store.ListRouters(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range routers {
		if r.Status != api.RouterOnline || (r.LastSeen != nil && !r.LastSeen.Before(seenBefore)) {
			continue
		}
		err := b.Store.SetRouterState(ctx, r.ID, store.RouterState{Status: ptr(api.RouterOffline)})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IssueRouterCertificate implements Backend.
func (b *StoreBackend) IssueRouterCertificate(ctx context.Context, id string, csrPEM []byte) ([]byte, error) {
	iss, err := b.Issuer.Issue(ctx, api.KindRouter, id, csrPEM)
	if err != nil {
		return nil, err
	}
	return iss.ChainPEM, nil
}

// Subscribe implements Backend: router edits and deletions concern that router, service changes
// (and resyncs) every router; status writes, keys, identities and policies concern none.
func (b *StoreBackend) Subscribe(ctx context.Context) <-chan Change {
	in := b.Store.Subscribe(ctx)
	out := make(chan Change)
	go func() {
		defer close(out)
		for c := range in {
			var ch Change
			switch {
			case c.Collection == store.Routers && c.Op != store.OpState:
				ch.RouterID = c.ID
			case c.Collection == store.Services, c.Collection == store.All:
			default:
				continue
			}
			select {
			case out <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func ptr[T any](v T) *T { return &v }
