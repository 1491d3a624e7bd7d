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
	enrolled, err := b.c.Store.LatestEnrolment(ctx, api.KindRouter, r.ID)
	if err != nil {
		return controlserver.Router{}, err
	}
	return controlserver.Router{ID: r.ID, Name: r.Name, Roles: r.Roles, EnrolledAt: enrolled}, nil
}

var _ controlserver.RouterLister = (*controlBackend)(nil)

// Routers lists every router in two reads (the routers and the latest enrolments).
func (b *controlBackend) Routers(ctx context.Context) ([]controlserver.Router, error) {
	rs, err := b.c.Store.ListRouters(ctx)
	if err != nil {
		return nil, err
	}
	enrolled, err := store.LatestEnrolments(ctx, b.c.Store, api.KindRouter)
	if err != nil {
		return nil, err
	}
	out := make([]controlserver.Router, len(rs))
	for i, r := range rs {
		out[i] = controlserver.Router{ID: r.ID, Name: r.Name, Roles: r.Roles, EnrolledAt: enrolled[r.ID]}
	}
	return out, nil
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

// RecordStatus writes the liveness writer's batch in one store transaction. A hello's
// attestation is verified here, off the session's path.
func (b *controlBackend) RecordStatus(ctx context.Context, batch []controlserver.Status) error {
	states := make(map[string]store.RouterState, len(batch))
	for _, st := range batch {
		status := api.RouterOffline
		if st.Online {
			status = api.RouterOnline
		}
		rs := store.RouterState{Status: &status, LastSeen: &st.At}
		if h := st.Hello; h != nil {
			rs.Version, rs.FailureDomain = &h.Version, &h.FailureDomain
			verdict := b.c.cfg.AttestationKeys.Verify(h.Image)
			b.c.attestations.WithLabelValues(string(verdict)).Inc()
			if verdict != control.AttestationVerified {
				b.c.log.Warn("router attestation not verified", "router_id", st.RouterID, "reason", string(verdict))
			}
			if h.Image != nil {
				raw, err := json.Marshal(h.Image)
				if err != nil {
					return err
				}
				rs.Attestation = raw
			}
		}
		if st.HealthSet {
			hs := make([]api.ServiceHealth, len(st.Health))
			for i, h := range st.Health {
				hs[i] = api.ServiceHealth{Name: h.ServiceName, Resolvable: h.Resolvable, Reachable: h.Reachable, Error: h.Error, CheckedAt: h.CheckedAt.UTC()}
			}
			rs.Health = &hs
		}
		states[st.RouterID] = rs
	}
	return b.c.Store.SetRouterStates(ctx, states)
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
