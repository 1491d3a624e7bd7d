// Package postgres is the controller store for replicated controllers: several
// `ztna-controller run` processes share one PostgreSQL database. Every write NOTIFYs its
// changes inside its own transaction, and every replica LISTENs on a dedicated connection and
// republishes what it hears to its local subscribers, so a change made through one replica
// reaches the routers connected to any other. The network CA lives in the database too,
// sealed with a key every replica is given (ca.go), so all replicas sign with one CA.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztna/ztna/controller/store"
)

// Store implements store.Store on a PostgreSQL database shared by controller replicas.
type Store struct {
	store.Feed
	pool   *pgxpool.Pool
	log    *slog.Logger
	stop   context.CancelFunc
	listen chan struct{} // closed when the listener has stopped
}

var _ store.Store = (*Store)(nil)

// applicationName marks the store's sessions in pg_stat_activity; the listener's session
// gets its own name so an operator can tell (and tests can cut) it.
const (
	applicationName         = "ztna-controller"
	listenerApplicationName = "ztna-controller-listen"
)

// Open connects to the database named by dsn (a postgres:// URL or key=value string),
// applies pending migrations, and starts listening for changes made by any replica. It
// returns once the listener is in place, so every change committed after Open returns
// reaches Subscribe's subscribers.
// A nil log discards the store's messages.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, fmt.Errorf("store DSN: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}
	listenCfg := cfg.ConnConfig.Copy()
	listenCfg.RuntimeParams["application_name"] = listenerApplicationName

	if err := migrate(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	lctx, stop := context.WithCancel(context.Background())
	s := &Store{pool: pool, log: log, stop: stop, listen: make(chan struct{})}
	ready := make(chan error, 1)
	go s.runListener(lctx, listenCfg, ready)
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("listen for changes: %w", err)
	}
	return s, nil
}

// Close stops listening and closes the connections.
func (s *Store) Close() error {
	s.stop()
	<-s.listen
	s.pool.Close()
	return nil
}

// migrationLock is the advisory lock key that serialises migrations of replicas starting
// at the same time ("ztna" in ASCII).
const migrationLock = 0x7a746e61

// migrate applies pending migrations on a connection of its own that holds the advisory
// lock: a replica that starts while another migrates waits, then finds nothing left to do.
// The lock is a session lock, so a replica that dies mid-migration releases it.
func migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("lock schema for migration: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this controller knows (%d): upgrade the controller", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, store.Now())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	// Closing the connection releases the lock; unlocking first just frees it sooner.
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrationLock)
	return err
}

// notifyChannel is the LISTEN/NOTIFY channel every replica's writes are announced on.
const notifyChannel = "ztna_changes"

// maxAttempts bounds retries of a transaction that PostgreSQL aborted to break a deadlock
// or a serialisation conflict; each retry reruns the whole read-modify-write.
const maxAttempts = 5

// write runs fn in a transaction, NOTIFYs the changes fn returns in that same transaction
// (so a change is announced exactly when its write commits), and commits. An error from fn
// rolls back and is returned as is.
func (s *Store) write(ctx context.Context, fn func(pgx.Tx) ([]store.Change, error)) error {
	for attempt := 1; ; attempt++ {
		err := writeOnce(ctx, s.pool, fn)
		if attempt < maxAttempts && isRetryable(err) {
			continue
		}
		var unknown *commitUnknownError
		if errors.As(err, &unknown) {
			return err // not classified: "nothing was changed" would not be true
		}
		return classify(err)
	}
}

// writeOnce runs fn in one transaction and commits it.
func writeOnce(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) ([]store.Change, error)) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	changes, err := fn(tx)
	if err != nil {
		return err
	}
	if len(changes) > 0 {
		payload, err := json.Marshal(changes)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, string(payload)); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || pgconn.SafeToRetry(err) {
			return err // the server refused the commit, or never received it: not committed
		}
		return &commitUnknownError{err: err}
	}
	return nil
}

// commitUnknownError is a COMMIT whose answer was lost with the connection: the transaction
// may or may not have committed. It deliberately does not unwrap to its cause, so that it is
// never classified as store.ErrUnavailable — a 503 tells clients that nothing was changed,
// and they send the request again.
type commitUnknownError struct{ err error }

func (e *commitUnknownError) Error() string {
	return "the database connection was lost while committing; the change may or may not have been made: " + e.err.Error()
}

// PostgreSQL error codes the store acts on.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeDiskFull             = "53100"
)

// classify wraps the errors that say PostgreSQL has no disk space left (store.ErrFull:
// 53100) or cannot serve for now (store.ErrUnavailable: it cannot be reached or the
// connection broke, class 08 connection exceptions, class 53 insufficient resources such as
// too many connections, 57P01-57P03 shutdown, crash recovery or start-up); other errors pass
// unchanged. A transaction that fails this way did not commit.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	switch code := pgCode(err); {
	case code == codeDiskFull:
		return store.Classify(store.ErrFull, err)
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"),
		code == "57P01", code == "57P02", code == "57P03":
		return store.Classify(store.ErrUnavailable, err)
	case code != "":
		return err // any other answer of a working server
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connect) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || pgconn.SafeToRetry(err) {
		return store.Classify(store.ErrUnavailable, err)
	}
	return err
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func isUnique(err error) bool { return pgCode(err) == codeUniqueViolation }

func isRetryable(err error) bool {
	c := pgCode(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// querier is what reads need from the pool and from a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// utc normalises a scanned timestamptz: pgx returns local time, the store speaks UTC.
func utc(t time.Time) time.Time { return t.UTC() }
