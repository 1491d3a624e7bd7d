package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

const keyColumns = `id, kind, subject_id, secret_hash, ttl_seconds, allow_reenrollment, expires_at, revoked, used_at, used_by, created_at`

func scanKey(row interface{ Scan(...any) error }) (*store.Key, error) {
	var k store.Key
	var expires, created int64
	var used sql.NullInt64
	if err := row.Scan(&k.ID, &k.Kind, &k.SubjectID, &k.SecretHash, &k.TTLSeconds, &k.AllowReenrollment, &expires, &k.Revoked, &used, &k.UsedBy, &created); err != nil {
		return nil, err
	}
	k.ExpiresAt, k.CreatedAt = fromMicros(expires), fromMicros(created)
	if used.Valid {
		t := fromMicros(used.Int64)
		k.UsedAt = &t
	}
	return &k, nil
}

func subjectTable(kind string) (string, error) {
	switch kind {
	case api.KindRouter:
		return "routers", nil
	case api.KindIdentity:
		return "identities", nil
	}
	return "", fmt.Errorf("unknown key kind %q", kind)
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	table, err := subjectTable(k.Kind)
	if err != nil {
		return err
	}
	store.PrepareKey(k)
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, k.SubjectID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return &store.ReferenceError{Field: k.Kind + "_id", Value: k.SubjectID}
		}
		if err != nil {
			return err
		}
		return insertKey(ctx, tx, k)
	})
	if err != nil {
		return err
	}
	s.Publish(store.Change{Collection: store.Keys, Op: store.OpCreate, ID: k.ID})
	return nil
}

func insertKey(ctx context.Context, tx *sql.Tx, k *store.Key) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, ?)`,
		k.ID, k.Kind, k.SubjectID, k.SecretHash, k.TTLSeconds, k.AllowReenrollment, micros(k.ExpiresAt), micros(k.CreatedAt))
	return err
}

// GetKey implements store.Store.
func (s *Store) GetKey(ctx context.Context, id string) (*store.Key, error) {
	return getKey(ctx, s.r, id)
}

func getKey(ctx context.Context, q querier, id string) (*store.Key, error) {
	k, err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registration key %q: %w", id, store.ErrNotFound)
	}
	return k, classify(err)
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context, kind string) ([]store.Key, error) {
	return queryKeys(ctx, s, `SELECT `+keyColumns+` FROM keys WHERE kind = ? ORDER BY created_at, id`, kind)
}

// queryKeys reads the keys a SELECT keyColumns statement returns, in its order.
func queryKeys(ctx context.Context, s *Store, q string, args ...any) ([]store.Key, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []store.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, *k)
	}
	return out, classify(rows.Err())
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(ctx context.Context, id string) (*store.Key, error) {
	var out *store.Key
	err := s.tx(ctx, func(tx *sql.Tx) error {
		k, err := getKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.UsedAt != nil {
			return fmt.Errorf("registration key %q: %w; delete the router to cut it off", id, store.ErrKeyUsed)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked = 1 WHERE id = ?`, id); err != nil {
			return err
		}
		k.Revoked = true
		out = k
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Publish(store.Change{Collection: store.Keys, Op: store.OpUpdate, ID: id})
	return out, nil
}

// DeleteKey implements store.Store.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, id)
	if err != nil {
		return classify(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("registration key %q: %w", id, store.ErrNotFound)
	}
	s.Publish(store.Change{Collection: store.Keys, Op: store.OpDelete, ID: id})
	return nil
}

// ConsumeKey implements store.Store. The single writer connection and IMMEDIATE
// transactions serialise concurrent calls, and the conditional UPDATE makes the check and the
// consumption one step.
func (s *Store) ConsumeKey(ctx context.Context, id string, now time.Time, usedBy []byte) (*store.Key, error) {
	var out *store.Key
	var changed []store.Change
	err := s.tx(ctx, func(tx *sql.Tx) error {
		k, err := getKey(ctx, tx, id)
		if err != nil {
			return err
		}
		switch k.State(now) {
		case api.KeyUsed:
			if k.RetryOf(usedBy, now) {
				out = k
				return nil
			}
			return fmt.Errorf("registration key %s: %w at %s", id, store.ErrKeyUsed, k.UsedAt.Format(time.RFC3339))
		case api.KeyRevoked:
			return fmt.Errorf("registration key %s: %w", id, store.ErrKeyRevoked)
		case api.KeyExpired:
			return fmt.Errorf("registration key %s: %w at %s", id, store.ErrKeyExpired, k.ExpiresAt.Format(time.RFC3339))
		}
		var r *api.Router
		if k.Kind == api.KindRouter {
			if r, err = routers.get(ctx, tx, k.SubjectID); err != nil {
				return err
			}
			if err := store.AdmitEnrolment(r, k); err != nil {
				return fmt.Errorf("registration key %s: %w", id, err)
			}
		}
		usedAt := now.UTC().Truncate(time.Microsecond)
		res, err := tx.ExecContext(ctx, `UPDATE keys SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND revoked = 0`, micros(usedAt), usedBy, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("registration key %s: %w", id, store.ErrKeyUsed)
		}
		// This enrolment supersedes the subject's earlier ones: none of their keys may be
		// retried any more (store.Key.RetryOf), or a retry would issue a certificate newer
		// than this enrolment for a key it replaced.
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET used_by = NULL WHERE kind = ? AND subject_id = ? AND id != ? AND used_by IS NOT NULL`,
			k.Kind, k.SubjectID, id); err != nil {
			return err
		}
		k.UsedAt, k.UsedBy = &usedAt, usedBy
		out = k
		changed = append(changed, store.Change{Collection: store.Keys, Op: store.OpUpdate, ID: id})
		switch k.Kind {
		case api.KindRouter:
			store.MarkEnrolled(r)
			return saveDoc(ctx, tx, routers, r, &changed, store.OpState)
		case api.KindIdentity:
			i, err := identities.get(ctx, tx, k.SubjectID)
			if err != nil {
				return err
			}
			i.Enrolled = true
			return saveDoc(ctx, tx, identities, i, &changed, store.OpUpdate)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range changed {
		s.Publish(c)
	}
	return out, nil
}

func saveDoc[T any](ctx context.Context, tx *sql.Tx, d docTable[T], v *T, changed *[]store.Change, op string) error {
	id, _, _, _ := d.meta(v)
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+d.table+` SET doc = ? WHERE id = ?`, doc, *id); err != nil {
		return err
	}
	*changed = append(*changed, store.Change{Collection: d.collection, Op: op, ID: *id})
	return nil
}

// ReissueIdentityToken implements store.Store.
func (s *Store) ReissueIdentityToken(ctx context.Context, id string, token *store.Key) (*api.Identity, error) {
	var out *api.Identity
	var changed []store.Change
	err := s.tx(ctx, func(tx *sql.Tx) error {
		v, err := identities.get(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE keys SET revoked = 1 WHERE kind = ? AND subject_id = ? AND used_at IS NULL AND revoked = 0 RETURNING id`, api.KindIdentity, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var kid string
			if err := rows.Scan(&kid); err != nil {
				rows.Close()
				return err
			}
			changed = append(changed, store.Change{Collection: store.Keys, Op: store.OpUpdate, ID: kid})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		store.PrepareReissue(v, token)
		if err := insertKey(ctx, tx, token); err != nil {
			return err
		}
		changed = append(changed, store.Change{Collection: store.Keys, Op: store.OpCreate, ID: token.ID})
		out = v
		return saveDoc(ctx, tx, identities, v, &changed, store.OpUpdate)
	})
	if err != nil {
		return nil, err
	}
	for _, c := range changed {
		s.Publish(c)
	}
	return out, nil
}

// LatestEnrolment implements store.Store through the keys_subject index.
func (s *Store) LatestEnrolment(ctx context.Context, kind, subjectID string) (time.Time, error) {
	var used sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MAX(used_at) FROM keys WHERE kind = ? AND subject_id = ?`, kind, subjectID).Scan(&used)
	if err != nil || !used.Valid {
		return time.Time{}, classify(err)
	}
	return fromMicros(used.Int64), nil
}
