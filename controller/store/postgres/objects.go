package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// CreateRouter implements store.Store.
func (s *Store) CreateRouter(ctx context.Context, r *api.Router) error {
	store.PrepareRouter(r)
	return routers.create(ctx, s, r, nil)
}

// GetRouter implements store.Store.
func (s *Store) GetRouter(ctx context.Context, id string) (*api.Router, error) {
	return routers.get(ctx, s.pool, id, "")
}

// ListRouters implements store.Store.
func (s *Store) ListRouters(ctx context.Context) ([]api.Router, error) { return routers.list(ctx, s) }

// UpdateRouter implements store.Store.
func (s *Store) UpdateRouter(ctx context.Context, id string, fn func(*api.Router) error) (*api.Router, error) {
	return routers.update(ctx, s, id, store.OpUpdate, true, fn)
}

// DeleteRouter implements store.Store.
func (s *Store) DeleteRouter(ctx context.Context, id string) error {
	return routers.delete(ctx, s, id, deleteKeysOf(ctx, api.KindRouter, id))
}

// deleteKeysOf deletes a subject's keys after the subject's row is deleted (and so locked):
// a concurrent CreateKey either committed before (its key is deleted here) or waits for the
// row and then finds no subject.
func deleteKeysOf(ctx context.Context, kind, id string) func(pgx.Tx) error {
	return func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM keys WHERE kind = $1 AND subject_id = $2`, kind, id)
		return err
	}
}

// SetRouterState implements store.Store.
func (s *Store) SetRouterState(ctx context.Context, id string, st store.RouterState) error {
	_, err := routers.update(ctx, s, id, store.OpState, false, func(r *api.Router) error {
		st.Apply(r)
		return nil
	})
	return err
}

// MarkStaleOffline implements store.Store in one statement, so a heartbeat committed by any
// replica meanwhile is either seen (the router stays online) or comes after (and wins).
func (s *Store) MarkStaleOffline(ctx context.Context, seenBefore time.Time) ([]string, error) {
	var ids []string
	err := s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		rows, err := tx.Query(ctx, `UPDATE routers SET doc = jsonb_set(doc, '{status}', to_jsonb($1::text))
			WHERE doc->>'status' = $2 AND (doc->>'last_seen' IS NULL OR (doc->>'last_seen')::timestamptz < $3)
			RETURNING id`, api.RouterOffline, api.RouterOnline, seenBefore)
		if err != nil {
			return nil, err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		changes := make([]store.Change, len(ids))
		for i, id := range ids {
			changes[i] = routers.change(store.OpState, id)
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// CreateService implements store.Store.
func (s *Store) CreateService(ctx context.Context, v *api.Service) error {
	store.PrepareService(v)
	return services.create(ctx, s, v, nil)
}

// GetService implements store.Store.
func (s *Store) GetService(ctx context.Context, id string) (*api.Service, error) {
	return services.get(ctx, s.pool, id, "")
}

// ListServices implements store.Store.
func (s *Store) ListServices(ctx context.Context) ([]api.Service, error) {
	return services.list(ctx, s)
}

// UpdateService implements store.Store.
func (s *Store) UpdateService(ctx context.Context, id string, fn func(*api.Service) error) (*api.Service, error) {
	return services.update(ctx, s, id, store.OpUpdate, true, func(v *api.Service) error {
		if err := fn(v); err != nil {
			return err
		}
		v.RouterSummary = api.RouterSummary{}
		return nil
	})
}

// DeleteService implements store.Store.
func (s *Store) DeleteService(ctx context.Context, id string) error {
	return services.delete(ctx, s, id, nil)
}

// CreateIdentity implements store.Store.
func (s *Store) CreateIdentity(ctx context.Context, v *api.Identity, token *store.Key) error {
	store.PrepareIdentity(v, token)
	return identities.create(ctx, s, v, func(tx pgx.Tx) ([]store.Change, error) {
		token.SubjectID = v.ID
		if err := insertKey(ctx, tx, token); err != nil {
			return nil, err
		}
		return []store.Change{{Collection: store.Keys, Op: store.OpCreate, ID: token.ID}}, nil
	})
}

// GetIdentity implements store.Store.
func (s *Store) GetIdentity(ctx context.Context, id string) (*api.Identity, error) {
	return identities.get(ctx, s.pool, id, "")
}

// ListIdentities implements store.Store.
func (s *Store) ListIdentities(ctx context.Context) ([]api.Identity, error) {
	return identities.list(ctx, s)
}

// UpdateIdentity implements store.Store.
func (s *Store) UpdateIdentity(ctx context.Context, id string, fn func(*api.Identity) error) (*api.Identity, error) {
	return identities.update(ctx, s, id, store.OpUpdate, true, fn)
}

// DeleteIdentity implements store.Store.
func (s *Store) DeleteIdentity(ctx context.Context, id string) error {
	return identities.delete(ctx, s, id, deleteKeysOf(ctx, api.KindIdentity, id))
}

// CreateServicePolicy implements store.Store.
func (s *Store) CreateServicePolicy(ctx context.Context, v *api.ServicePolicy) error {
	store.PreparePolicy(v)
	return policies.create(ctx, s, v, nil)
}

// GetServicePolicy implements store.Store.
func (s *Store) GetServicePolicy(ctx context.Context, id string) (*api.ServicePolicy, error) {
	return policies.get(ctx, s.pool, id, "")
}

// ListServicePolicies implements store.Store.
func (s *Store) ListServicePolicies(ctx context.Context) ([]api.ServicePolicy, error) {
	return policies.list(ctx, s)
}

// UpdateServicePolicy implements store.Store.
func (s *Store) UpdateServicePolicy(ctx context.Context, id string, fn func(*api.ServicePolicy) error) (*api.ServicePolicy, error) {
	return policies.update(ctx, s, id, store.OpUpdate, true, fn)
}

// DeleteServicePolicy implements store.Store.
func (s *Store) DeleteServicePolicy(ctx context.Context, id string) error {
	return policies.delete(ctx, s, id, nil)
}

// SetRouterStates implements store.Store: one transaction for the whole batch, rows locked in
// id order so that two replicas' batches cannot deadlock.
func (s *Store) SetRouterStates(ctx context.Context, states map[string]store.RouterState) error {
	if len(states) == 0 {
		return nil
	}
	return s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		for _, id := range store.SortedIDs(states) {
			r, err := routers.get(ctx, tx, id, "FOR UPDATE")
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted while connected: nothing left to record
			}
			if err != nil {
				return nil, err
			}
			states[id].Apply(r)
			if err := routers.save(ctx, tx, r); err != nil {
				return nil, err
			}
		}
		return nil, nil // published by nobody: see store.Store
	})
}
