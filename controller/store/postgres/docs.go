package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// docTable stores one api type as JSONB documents with a unique name.
type docTable[T any] struct {
	table      string // SQL table
	collection string // store collection name for changes and errors
	noun       string // singular, for messages
	rolesPath  string // JSON path of the document's roles that Page.Roles filters on
	meta       func(*T) (id *string, name *string, created, updated *time.Time)
}

func (d docTable[T]) change(op, id string) store.Change {
	return store.Change{Collection: d.collection, Op: op, ID: id}
}

// create inserts v, assigning id and timestamps; also runs in the same transaction and may
// add changes that follow the create.
func (d docTable[T]) create(ctx context.Context, s *Store, v *T, also func(pgx.Tx) ([]store.Change, error)) error {
	id, name, created, updated := d.meta(v)
	*id = store.NewID()
	*created = store.Now()
	*updated = *created
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO `+d.table+` (id, name, doc, created_at) VALUES ($1, $2, $3, $4)`, *id, *name, doc, *created)
		if isUnique(err) {
			return nil, &store.ConflictError{Collection: d.noun, Field: "name", Value: *name}
		}
		if err != nil {
			return nil, err
		}
		changes := []store.Change{d.change(store.OpCreate, *id)}
		if also != nil {
			more, err := also(tx)
			if err != nil {
				return nil, err
			}
			changes = append(changes, more...)
		}
		return changes, nil
	})
}

// get reads one document; lock adds a row lock clause (FOR UPDATE / FOR SHARE) when it runs
// inside a read-modify-write transaction.
func (d docTable[T]) get(ctx context.Context, q querier, id, lock string) (*T, error) {
	var doc []byte
	err := q.QueryRow(ctx, `SELECT doc FROM `+d.table+` WHERE id = $1 `+lock, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", d.noun, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, classify(err)
	}
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, fmt.Errorf("%s %q: corrupt record: %w", d.noun, id, err)
	}
	return v, nil
}

func (d docTable[T]) list(ctx context.Context, s *Store) ([]T, error) {
	return d.query(ctx, s, `SELECT doc FROM `+d.table+` ORDER BY created_at, id`)
}

// query reads the documents a SELECT doc statement returns, in its order.
func (d docTable[T]) query(ctx context.Context, s *Store, q string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify(err)
	}
	out := []T{}
	var doc []byte
	_, err = pgx.ForEachRow(rows, []any{&doc}, func() error {
		var v T
		if err := json.Unmarshal(doc, &v); err != nil {
			return fmt.Errorf("%s: corrupt record: %w", d.noun, err)
		}
		out = append(out, v)
		return nil
	})
	return out, classify(err)
}

// update loads (locking the row), changes and saves one document, so concurrent updates
// through any replica apply one after the other and none is lost. touch says whether
// updated_at moves (operator edits) or not (router reports).
func (d docTable[T]) update(ctx context.Context, s *Store, id, op string, touch bool, fn func(*T) error) (*T, error) {
	var out *T
	err := s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		v, err := d.get(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return nil, err
		}
		if err := fn(v); err != nil {
			return nil, err
		}
		vid, name, _, updated := d.meta(v)
		*vid = id // the id is not the caller's to change
		if touch {
			*updated = store.Now()
		}
		doc, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		_, err = tx.Exec(ctx, `UPDATE `+d.table+` SET name = $1, doc = $2 WHERE id = $3`, *name, doc, id)
		if isUnique(err) {
			return nil, &store.ConflictError{Collection: d.noun, Field: "name", Value: *name}
		}
		if err != nil {
			return nil, err
		}
		out = v
		return []store.Change{d.change(op, id)}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// save writes back a document read FOR UPDATE in tx (the name is unchanged).
func (d docTable[T]) save(ctx context.Context, tx pgx.Tx, v *T) error {
	id, _, _, _ := d.meta(v)
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE `+d.table+` SET doc = $1 WHERE id = $2`, doc, *id)
	return err
}

// delete removes one document; also runs in the same transaction (dependent rows).
func (d docTable[T]) delete(ctx context.Context, s *Store, id string, also func(pgx.Tx) error) error {
	return s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM `+d.table+` WHERE id = $1`, id)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, fmt.Errorf("%s %q: %w", d.noun, id, store.ErrNotFound)
		}
		if also != nil {
			if err := also(tx); err != nil {
				return nil, err
			}
		}
		return []store.Change{d.change(store.OpDelete, id)}, nil
	})
}

var (
	routers = docTable[api.Router]{table: "routers", collection: store.Routers, noun: "router", rolesPath: "roles",
		meta: func(v *api.Router) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
	services = docTable[api.Service]{table: "services", collection: store.Services, noun: "service", rolesPath: "router_roles",
		meta: func(v *api.Service) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
	identities = docTable[api.Identity]{table: "identities", collection: store.Identities, noun: "identity", rolesPath: "roles",
		meta: func(v *api.Identity) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
	policies = docTable[api.ServicePolicy]{table: "service_policies", collection: store.ServicePolicies, noun: "service policy", rolesPath: "identity_roles",
		meta: func(v *api.ServicePolicy) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
)
