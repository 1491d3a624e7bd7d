// Package sqlite is the embedded controller store: SQLite through modernc.org/sqlite (pure
// Go, no cgo), WAL mode, one writer connection so that enrolment's check-and-consume of a
// key is serialised, and a small pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"syscall"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// Store implements store.Store on one SQLite database file.
type Store struct {
	store.Feed
	w *sql.DB // exactly one connection: all writes, in IMMEDIATE transactions
	r *sql.DB // readers
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.w.Close(), s.r.Close())
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this controller knows (%d): upgrade the controller", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, micros(store.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// tx runs fn in a write transaction and commits when fn returns nil. A full disk or a
// database locked past the busy timeout comes back classified (see classify); the
// transaction is rolled back then, so nothing of it is written.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return classify(err)
	}
	return classify(tx.Commit())
}

// classify wraps the driver errors that say the disk is full (store.ErrFull: SQLITE_FULL,
// which SQLite's VFS reports for ENOSPC, or ENOSPC itself from a temporary file) or that
// the database stayed locked past busy_timeout (store.ErrUnavailable: SQLITE_BUSY,
// SQLITE_LOCKED); other errors pass unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff { // the primary result code of an extended one
		case sqlite3.SQLITE_FULL:
			return store.Classify(store.ErrFull, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return store.Classify(store.ErrUnavailable, err)
		}
	}
	if errors.Is(err, syscall.ENOSPC) {
		return store.Classify(store.ErrFull, err)
	}
	return err
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// querier is what reads need from *sql.DB and *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// docTable stores one api type as JSON documents with a unique name.
type docTable[T any] struct {
	table      string // SQL table
	collection string // store collection name for changes and errors
	noun       string // singular, for messages
	rolesPath  string // JSON path of the document's roles that Page.Roles filters on
	meta       func(*T) (id *string, name *string, created, updated *time.Time)
}

// create inserts v, assigning id and timestamps; also runs in the same transaction.
func (d docTable[T]) create(ctx context.Context, s *Store, v *T, also func(tx *sql.Tx) error) error {
	id, name, created, updated := d.meta(v)
	*id = store.NewID()
	*created = store.Now()
	*updated = *created
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO `+d.table+` (id, name, doc, created_at) VALUES (?, ?, ?, ?)`, *id, *name, doc, micros(*created))
		if isUnique(err) {
			return &store.ConflictError{Collection: d.noun, Field: "name", Value: *name}
		}
		if err != nil || also == nil {
			return err
		}
		return also(tx)
	})
	if err != nil {
		return err
	}
	s.Publish(store.Change{Collection: d.collection, Op: store.OpCreate, ID: *id})
	return nil
}

func (d docTable[T]) get(ctx context.Context, q querier, id string) (*T, error) {
	var doc []byte
	err := q.QueryRowContext(ctx, `SELECT doc FROM `+d.table+` WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
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
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, classify(err)
		}
		var v T
		if err := json.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("%s: corrupt record: %w", d.noun, err)
		}
		out = append(out, v)
	}
	return out, classify(rows.Err())
}

// update loads, changes and saves one document in a write transaction. touch says whether
// updated_at moves (operator edits) or not (router reports).
func (d docTable[T]) update(ctx context.Context, s *Store, id, op string, touch bool, fn func(*T) error) (*T, error) {
	var out *T
	err := s.tx(ctx, func(tx *sql.Tx) error {
		v, err := d.get(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		vid, name, _, updated := d.meta(v)
		*vid = id // the id is not the caller's to change
		if touch {
			*updated = store.Now()
		}
		doc, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE `+d.table+` SET name = ?, doc = ? WHERE id = ?`, *name, doc, id)
		if isUnique(err) {
			return &store.ConflictError{Collection: d.noun, Field: "name", Value: *name}
		}
		out = v
		return err
	})
	if err != nil {
		return nil, err
	}
	s.Publish(store.Change{Collection: d.collection, Op: op, ID: id})
	return out, nil
}

// delete removes one document; also runs in the same transaction (dependent rows).
func (d docTable[T]) delete(ctx context.Context, s *Store, id string, also func(*sql.Tx) error) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+d.table+` WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s %q: %w", d.noun, id, store.ErrNotFound)
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Publish(store.Change{Collection: d.collection, Op: store.OpDelete, ID: id})
	return nil
}

var (
	routers = docTable[api.Router]{table: "routers", collection: store.Routers, noun: "router", rolesPath: "$.roles",
		meta: func(v *api.Router) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
	services = docTable[api.Service]{table: "services", collection: store.Services, noun: "service", rolesPath: "$.router_roles",
		meta: func(v *api.Service) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
	identities = docTable[api.Identity]{table: "identities", collection: store.Identities, noun: "identity", rolesPath: "$.roles",
		meta: func(v *api.Identity) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
	policies = docTable[api.ServicePolicy]{table: "service_policies", collection: store.ServicePolicies, noun: "service policy", rolesPath: "$.identity_roles",
		meta: func(v *api.ServicePolicy) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		}}
)
