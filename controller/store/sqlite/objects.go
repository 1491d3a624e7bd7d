package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

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
	return routers.get(ctx, s.r, id)
}

// ListRouters implements store.Store.
func (s *Store) ListRouters(ctx context.Context) ([]api.Router, error) { return routers.list(ctx, s) }

// UpdateRouter implements store.Store.
func (s *Store) UpdateRouter(ctx context.Context, id string, fn func(*api.Router) error) (*api.Router, error) {
	return routers.update(ctx, s, id, store.OpUpdate, true, fn)
}

// DeleteRouter implements store.Store.
func (s *Store) DeleteRouter(ctx context.Context, id string) error {
	return routers.delete(ctx, s, id, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM keys WHERE kind = 'router' AND subject_id = ?`, id)
		return err
	})
}

// SetRouterState implements store.Store.
func (s *Store) SetRouterState(ctx context.Context, id string, st store.RouterState) error {
	_, err := routers.update(ctx, s, id, store.OpState, false, func(r *api.Router) error {
		st.Apply(r)
		return nil
	})
	return err
}

// CreateService implements store.Store.
func (s *Store) CreateService(ctx context.Context, v *api.Service) error {
	store.PrepareService(v)
	return services.create(ctx, s, v, nil)
}

// GetService implements store.Store.
func (s *Store) GetService(ctx context.Context, id string) (*api.Service, error) {
	return services.get(ctx, s.r, id)
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
	err := identities.create(ctx, s, v, func(tx *sql.Tx) error {
		token.SubjectID = v.ID
		return insertKey(ctx, tx, token)
	})
	if err != nil {
		return err
	}
	s.Publish(store.Change{Collection: store.Keys, Op: store.OpCreate, ID: token.ID})
	return nil
}

// GetIdentity implements store.Store.
func (s *Store) GetIdentity(ctx context.Context, id string) (*api.Identity, error) {
	return identities.get(ctx, s.r, id)
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
	return identities.delete(ctx, s, id, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM keys WHERE kind = 'identity' AND subject_id = ?`, id)
		return err
	})
}

// CreateServicePolicy implements store.Store.
func (s *Store) CreateServicePolicy(ctx context.Context, v *api.ServicePolicy) error {
	store.PreparePolicy(v)
	return policies.create(ctx, s, v, nil)
}

// GetServicePolicy implements store.Store.
func (s *Store) GetServicePolicy(ctx context.Context, id string) (*api.ServicePolicy, error) {
	return policies.get(ctx, s.r, id)
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

// MarkStaleOffline implements store.Store.
func (s *Store) MarkStaleOffline(ctx context.Context, seenBefore time.Time) ([]string, error) {
	// Candidates from SQLite (every replica runs this every 5 s; decoding every router's
	// document in Go cost 10,000 decodes a run): online, and last seen before the cut-off
	// within julianday's millisecond precision (a second of margin) or not parseable by it.
	// The transaction below decides exactly.
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM routers WHERE json_extract(doc, '$.status') = ?
		AND (json_extract(doc, '$.last_seen') IS NULL OR julianday(json_extract(doc, '$.last_seen')) IS NULL
			OR julianday(json_extract(doc, '$.last_seen')) < julianday(?) + 1.0 / 86400)`,
		api.RouterOnline, seenBefore.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, classify(err)
	}
	var candidates []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, classify(err)
		}
		candidates = append(candidates, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	offline := api.RouterOffline
	var ids []string
	for _, id := range candidates {
		// Re-check inside the write transaction: a heartbeat may have arrived meanwhile.
		changed := false
		_, err := routers.update(ctx, s, id, store.OpState, false, func(cur *api.Router) error {
			if cur.Status == api.RouterOnline && (cur.LastSeen == nil || cur.LastSeen.Before(seenBefore)) {
				cur.Status = offline
				changed = true
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return ids, err
		}
		if changed {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// SetRouterStates implements store.Store: one write transaction for the whole batch.
func (s *Store) SetRouterStates(ctx context.Context, states map[string]store.RouterState) error {
	if len(states) == 0 {
		return nil
	}
	var none []store.Change // published by nobody: see store.Store
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range store.SortedIDs(states) {
			if st := states[id]; st.Status != nil && st.LastSeen != nil && st.Version == nil && st.FailureDomain == nil &&
				st.Health == nil && st.Attestation == nil {
				// Status and last_seen only (a session's periodic refresh, most of a fleet's
				// writes: 2,000 rows a second at 10,000 routers): set in place by SQLite,
				// without decoding and re-encoding the router's document here. A router
				// deleted meanwhile matches no row.
				seen := st.LastSeen.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) // as json.Marshal writes it
				if _, err := tx.ExecContext(ctx, `UPDATE routers SET doc = json_set(doc, '$.status', ?, '$.last_seen', ?) WHERE id = ?`,
					*st.Status, seen, id); err != nil {
					return err
				}
				continue
			}
			r, err := routers.get(ctx, tx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted while connected: nothing left to record
			}
			if err != nil {
				return err
			}
			states[id].Apply(r)
			if err := saveDoc(ctx, tx, routers, r, &none, store.OpState); err != nil {
				return err
			}
		}
		return nil
	})
}
