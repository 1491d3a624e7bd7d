package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ztna/ztna/controller/assignments"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/policy"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

// ControlBackend returns the control channel's view of this controller.
func (c *Controller) ControlBackend() controlserver.Backend {
	return &controlBackend{c: c, ix: &assignments.Index{}}
}

type controlBackend struct {
	c *Controller
	// ix serves ServicesForRoles once Subscribe loaded it; until then (or after a change it
	// could not apply) the services table is listed.
	ix *assignments.Index
}

var _ controlserver.Backend = (*controlBackend)(nil)

func (b *controlBackend) Router(ctx context.Context, id string) (controlserver.Router, error) {
	r, err := b.c.Store.GetRouter(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return controlserver.Router{}, fmt.Errorf("%w: %v", controlserver.ErrRouterNotFound, err)
	}
	if err != nil {
		return controlserver.Router{}, err
	}
	enrolled, err := store.LatestEnrolments(ctx, b.c.Store, api.KindRouter)
	if err != nil {
		return controlserver.Router{}, err
	}
	return controlserver.Router{ID: r.ID, Name: r.Name, Roles: r.Roles, EnrolledAt: enrolled[r.ID]}, nil
}

func (b *controlBackend) ServicesForRoles(ctx context.Context, roles []string) ([]control.Service, error) {
	if out, ok := b.ix.ForRoles(roles); ok {
		return out, nil
	}
	svcs, err := b.c.Store.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	out := []control.Service{}
	for _, s := range svcs {
		if !policy.RolesIntersect(s.RouterRoles, roles) {
			continue
		}
		ws, err := control.ServiceFromAPI(&s)
		if err != nil {
			return nil, err
		}
		out = append(out, ws)
	}
	slices.SortFunc(out, func(a, b control.Service) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (b *controlBackend) RouterOnline(ctx context.Context, id string, hello control.Hello, at time.Time) error {
	online := api.RouterOnline
	st := store.RouterState{Status: &online, LastSeen: &at, Version: &hello.Version, FailureDomain: &hello.FailureDomain}
	verdict := b.c.cfg.AttestationKeys.Verify(hello.Image)
	b.c.attestations.WithLabelValues(string(verdict)).Inc()
	if verdict != control.AttestationVerified {
		b.c.log.Warn("router attestation not verified", "router_id", id, "reason", string(verdict))
	}
	if hello.Image != nil {
		raw, err := json.Marshal(hello.Image)
		if err != nil {
			return err
		}
		st.Attestation = raw
	}
	return b.c.Store.SetRouterState(ctx, id, st)
}

func (b *controlBackend) RouterHeartbeat(ctx context.Context, id string, health []control.ServiceHealth, at time.Time) error {
	online := api.RouterOnline
	hs := make([]api.ServiceHealth, len(health))
	for i, h := range health {
		hs[i] = api.ServiceHealth{Name: h.ServiceName, Resolvable: h.Resolvable, Reachable: h.Reachable, Error: h.Error, CheckedAt: h.CheckedAt.UTC()}
	}
	return b.c.Store.SetRouterState(ctx, id, store.RouterState{Status: &online, LastSeen: &at, Health: &hs})
}

func (b *controlBackend) RouterOffline(ctx context.Context, id string, at time.Time) error {
	offline := api.RouterOffline
	err := b.c.Store.SetRouterState(ctx, id, store.RouterState{Status: &offline, LastSeen: &at})
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted while connected: nothing left to record
	}
	return err
}

func (b *controlBackend) MarkStaleOffline(ctx context.Context, seenBefore time.Time) error {
	_, err := b.c.Store.MarkStaleOffline(ctx, seenBefore)
	return err
}

func (b *controlBackend) IssueRouterCertificate(ctx context.Context, id string, csrPEM []byte) ([]byte, error) {
	iss, err := b.c.Issuer.Issue(ctx, api.KindRouter, id, csrPEM)
	if err != nil {
		return nil, err
	}
	return iss.ChainPEM, nil
}

// Subscribe turns store changes into assignment changes: a router's own edits and enrolments
// (which supersede its earlier certificates) concern that router (and hubs); a service change
// concerns the routers holding its roles before or after it (through the role index, which
// it keeps current); identity and policy changes concern hubs only; status reports concern
// nobody.
func (b *controlBackend) Subscribe(ctx context.Context) <-chan controlserver.Change {
	in := b.c.Store.Subscribe(ctx)
	if err := b.ix.Load(ctx, b.c.Store); err != nil && ctx.Err() == nil {
		b.c.log.Warn("cannot index services by role; assignments list the services table until the next service change", "error", err)
	}
	out := make(chan controlserver.Change, 64)
	go func() {
		defer close(out)
		for ch := range in {
			var c controlserver.Change
			switch {
			case ch.Collection == store.Routers && ch.Op != store.OpState:
				c.RouterID = ch.ID
			case ch.Collection == store.Services && b.ix.Ready():
				roles, err := b.ix.Apply(ctx, b.c.Store, ch.ID)
				if err != nil {
					b.ix.Invalidate() // every router re-reads; the next service change reloads
					break
				}
				c.ByRoles, c.Roles = true, roles
			case ch.Collection == store.Services, ch.Collection == store.All:
				if err := b.ix.Load(ctx, b.c.Store); err != nil {
					b.ix.Invalidate()
				}
			case ch.Collection == store.Identities, ch.Collection == store.ServicePolicies:
				c.HubsOnly = true
			case ch.Collection == store.Keys && ch.Op == store.OpUpdate:
				k, err := b.c.Store.GetKey(ctx, ch.ID)
				if err != nil || k.Kind != api.KindRouter || k.UsedAt == nil {
					continue // revoked, deleted meanwhile, or an identity's token
				}
				c.RouterID = k.SubjectID
			default:
				continue
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
