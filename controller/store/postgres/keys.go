package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

const keyColumns = `id, kind, subject_id, secret_hash, ttl_seconds, allow_reenrollment, expires_at, revoked, used_at, used_by, created_at`

func scanKey(row pgx.Row) (*store.Key, error) {
	var k store.Key
	var used *time.Time
	if err := row.Scan(&k.ID, &k.Kind, &k.SubjectID, &k.SecretHash, &k.TTLSeconds, &k.AllowReenrollment, &k.ExpiresAt, &k.Revoked, &used, &k.UsedBy, &k.CreatedAt); err != nil {
		return nil, err
	}
	k.ExpiresAt, k.CreatedAt = utc(k.ExpiresAt), utc(k.CreatedAt)
	if used != nil {
		t := utc(*used)
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

// CreateKey implements store.Store. The subject's row is locked FOR SHARE until the key is
// in, so a concurrent delete of the subject cannot leave the key behind.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	table, err := subjectTable(k.Kind)
	if err != nil {
		return err
	}
	store.PrepareKey(k)
	return s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = $1 FOR SHARE`, k.SubjectID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &store.ReferenceError{Field: k.Kind + "_id", Value: k.SubjectID}
		}
		if err != nil {
			return nil, err
		}
		if err := insertKey(ctx, tx, k); err != nil {
			return nil, err
		}
		return []store.Change{{Collection: store.Keys, Op: store.OpCreate, ID: k.ID}}, nil
	})
}

func insertKey(ctx context.Context, tx pgx.Tx, k *store.Key) error {
	_, err := tx.Exec(ctx, `INSERT INTO keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, false, NULL, NULL, $8)`,
		k.ID, k.Kind, k.SubjectID, k.SecretHash, k.TTLSeconds, k.AllowReenrollment, k.ExpiresAt, k.CreatedAt)
	return err
}

// GetKey implements store.Store.
func (s *Store) GetKey(ctx context.Context, id string) (*store.Key, error) {
	return getKey(ctx, s.pool, id, "")
}

func getKey(ctx context.Context, q querier, id, lock string) (*store.Key, error) {
	k, err := scanKey(q.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("registration key %q: %w", id, store.ErrNotFound)
	}
	return k, classify(err)
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context, kind string) ([]store.Key, error) {
	return queryKeys(ctx, s, `SELECT `+keyColumns+` FROM keys WHERE kind = $1 ORDER BY created_at, id`, kind)
}

// queryKeys reads the keys a SELECT keyColumns statement returns, in its order.
func queryKeys(ctx context.Context, s *Store, q string, args ...any) ([]store.Key, error) {
	rows, err := s.pool.Query(ctx, q, args...)
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
	err := s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		k, err := getKey(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return nil, err
		}
		if k.UsedAt != nil {
			return nil, fmt.Errorf("registration key %q: %w; delete the router to cut it off", id, store.ErrKeyUsed)
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET revoked = true WHERE id = $1`, id); err != nil {
			return nil, err
		}
		k.Revoked = true
		out = k
		return []store.Change{{Collection: store.Keys, Op: store.OpUpdate, ID: id}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteKey implements store.Store.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM keys WHERE id = $1`, id)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, fmt.Errorf("registration key %q: %w", id, store.ErrNotFound)
		}
		return []store.Change{{Collection: store.Keys, Op: store.OpDelete, ID: id}}, nil
	})
}

// ConsumeKey implements store.Store. Concurrent calls — through this replica or any other —
// queue on row locks taken in the same order as every other writer (subject first, then its
// keys, like DeleteRouter), and the state is checked on the locked, latest row: the first
// caller consumes the key, every later one sees it used.
func (s *Store) ConsumeKey(ctx context.Context, id string, now time.Time, usedBy []byte) (*store.Key, error) {
	var out *store.Key
	err := s.write(ctx, func(tx pgx.Tx) (changes []store.Change, err error) {
		// Unlocked first read: which subject to lock.
		k, err := getKey(ctx, tx, id, "")
		if err != nil {
			return nil, err
		}
		switch k.Kind {
		case api.KindRouter:
			out, changes, err = consumeFor(ctx, tx, routers, k.SubjectID, id, now, usedBy, store.OpState, func(r *api.Router, k *store.Key) error {
				if err := store.AdmitEnrolment(r, k); err != nil {
					return fmt.Errorf("registration key %s: %w", id, err)
				}
				store.MarkEnrolled(r)
				return nil
			})
			return changes, err
		case api.KindIdentity:
			out, changes, err = consumeFor(ctx, tx, identities, k.SubjectID, id, now, usedBy, store.OpUpdate, func(i *api.Identity, _ *store.Key) error {
				i.Enrolled = true
				return nil
			})
			return changes, err
		}
		return nil, fmt.Errorf("registration key %s has unknown kind %q", id, k.Kind)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// consumeFor locks the key's subject, consumes the key and marks the subject enrolled. enrol
// may refuse the enrolment (store.AdmitEnrolment); its error rolls the transaction back.
func consumeFor[T any](ctx context.Context, tx pgx.Tx, d docTable[T], subjectID, keyID string, now time.Time, usedBy []byte, op string, enrol func(*T, *store.Key) error) (*store.Key, []store.Change, error) {
	v, err := d.get(ctx, tx, subjectID, "FOR UPDATE")
	if err != nil {
		return nil, nil, subjectGone(keyID, err)
	}
	k, retry, err := consume(ctx, tx, keyID, now, usedBy)
	if err != nil || retry {
		return k, nil, err // a retry of the enrolment that used the key changes nothing
	}
	if err := enrol(v, k); err != nil {
		return nil, nil, err
	}
	if err := d.save(ctx, tx, v); err != nil {
		return nil, nil, err
	}
	return k, []store.Change{{Collection: store.Keys, Op: store.OpUpdate, ID: keyID}, d.change(op, subjectID)}, nil
}

// subjectGone maps a missing subject (deleted, with its keys, since the first read) to the
// key being unknown.
func subjectGone(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("registration key %q: %w", id, store.ErrNotFound)
	}
	return err
}

// consume locks the key, checks its state at now and marks it used; retry reports a repeat of
// the enrolment that used it (store.Key.RetryOf), for which nothing is written.
func consume(ctx context.Context, tx pgx.Tx, id string, now time.Time, usedBy []byte) (k *store.Key, retry bool, err error) {
	k, err = getKey(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, false, err
	}
	switch k.State(now) {
	case api.KeyUsed:
		if k.RetryOf(usedBy, now) {
			return k, true, nil
		}
		return nil, false, fmt.Errorf("registration key %s: %w at %s", id, store.ErrKeyUsed, k.UsedAt.Format(time.RFC3339))
	case api.KeyRevoked:
		return nil, false, fmt.Errorf("registration key %s: %w", id, store.ErrKeyRevoked)
	case api.KeyExpired:
		return nil, false, fmt.Errorf("registration key %s: %w at %s", id, store.ErrKeyExpired, k.ExpiresAt.Format(time.RFC3339))
	}
	usedAt := now.UTC().Truncate(time.Microsecond)
	if _, err := tx.Exec(ctx, `UPDATE keys SET used_at = $1, used_by = $2 WHERE id = $3`, usedAt, usedBy, id); err != nil {
		return nil, false, err
	}
	// This enrolment supersedes the subject's earlier ones: none of their keys may be retried
	// any more (store.Key.RetryOf), or a retry would issue a certificate newer than this
	// enrolment for a key it replaced.
	if _, err := tx.Exec(ctx, `UPDATE keys SET used_by = NULL WHERE kind = $1 AND subject_id = $2 AND id <> $3 AND used_by IS NOT NULL`,
		k.Kind, k.SubjectID, id); err != nil {
		return nil, false, err
	}
	k.UsedAt, k.UsedBy = &usedAt, usedBy
	return k, false, nil
}

// ReissueIdentityToken implements store.Store. Locking the identity first serialises it
// with ConsumeKey, which locks the subject before the key.
func (s *Store) ReissueIdentityToken(ctx context.Context, id string, token *store.Key) (*api.Identity, error) {
	var out *api.Identity
	err := s.write(ctx, func(tx pgx.Tx) ([]store.Change, error) {
		v, err := identities.get(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return nil, err
		}
		rows, err := tx.Query(ctx, `UPDATE keys SET revoked = true WHERE kind = $1 AND subject_id = $2 AND used_at IS NULL AND NOT revoked RETURNING id`, api.KindIdentity, id)
		if err != nil {
			return nil, err
		}
		revoked, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		var changes []store.Change
		for _, kid := range revoked {
			changes = append(changes, store.Change{Collection: store.Keys, Op: store.OpUpdate, ID: kid})
		}
		store.PrepareReissue(v, token)
		if err := insertKey(ctx, tx, token); err != nil {
			return nil, err
		}
		if err := identities.save(ctx, tx, v); err != nil {
			return nil, err
		}
		out = v
		return append(changes, store.Change{Collection: store.Keys, Op: store.OpCreate, ID: token.ID}, identities.change(store.OpUpdate, id)), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LatestEnrolment implements store.Store through the keys_subject index.
func (s *Store) LatestEnrolment(ctx context.Context, kind, subjectID string) (time.Time, error) {
	var used *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT MAX(used_at) FROM keys WHERE kind = $1 AND subject_id = $2`, kind, subjectID).Scan(&used); err != nil {
		return time.Time{}, classify(err)
	}
	if used == nil {
		return time.Time{}, nil
	}
	return utc(*used), nil
}
