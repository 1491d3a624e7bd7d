package postgres

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jackc/pgx/v5"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/controller/store/storetest"
	"github.com/ztna/ztna/internal/api"
)

// TestMain runs the tests against a PostgreSQL server (pgtest) and fails them when a goroutine
// outlives them (a change-feed listener, a pool's connection).
func TestMain(m *testing.M) { goleak.VerifyTestMain(withPostgres{m}) }

type withPostgres struct{ m *testing.M }

func (p withPostgres) Run() int { return pgtest.Main(p.m) }

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.NewDatabase(t)) })
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, storetest.Shared{SharedFeed: true, NewDatabase: func(t *testing.T) func(*testing.T) store.Store {
			dsn := pgtest.NewDatabase(t)
			return func(t *testing.T) store.Store { return open(t, dsn) }
		}})
	})
}

// Replicas starting at the same time on an empty database migrate it once.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 5)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn, nil)
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				return
			}
			stores[i] = s
		}()
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	var n, version int
	must(t, stores[0].pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &version))
	if n != len(migrations) || version != len(migrations) {
		t.Fatalf("%d migrations recorded up to version %d, want each of %d once", n, version, len(migrations))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn)
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dsn, nil); err == nil || !strings.Contains(err.Error(), "upgrade the controller") {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestBadDSN(t *testing.T) {
	for _, dsn := range []string{"postgres://u:hunter2@[::1", "host=/nonexistent/socket/dir connect_timeout=2 password=hunter2"} {
		_, err := Open(context.Background(), dsn, nil)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
}

// When the listening connection dies, the store reconnects, tells its subscribers to
// re-read everything, and changes flow again.
func TestListenerReconnects(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch := b.Subscribe(ctx)

	cut := time.Now()
	if n := terminateListeners(t, dsn); n != 2 {
		t.Fatalf("terminated %d listener sessions, want 2 (a's and b's)", n)
	}
	// A write while b is not listening: b must not miss it silently.
	must(t, a.CreateRouter(ctx, &api.Router{Name: "during-the-gap"}))
	for c := next(t, ch); c.Collection != store.All; c = next(t, ch) {
		// The gap's create may be heard if b was listening again before it committed.
		if c.Collection != store.Routers || c.Op != store.OpCreate {
			t.Fatalf("unexpected change %+v", c)
		}
	}
	t.Logf("listener back %v after its connection was killed", time.Since(cut))
	r := &api.Router{Name: "after"}
	must(t, a.CreateRouter(ctx, r))
	want := store.Change{Collection: store.Routers, Op: store.OpCreate, ID: r.ID}
	for c := next(t, ch); c != want; c = next(t, ch) {
		if c.Collection != store.Routers || c.Op != store.OpCreate {
			t.Fatalf("unexpected change %+v", c)
		}
	}
}

// terminateListeners kills the LISTEN sessions on dsn's database from the server side (as a
// database failover or a network cut would) and returns how many it killed.
func terminateListeners(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	must(t, err)
	defer conn.Close(ctx)
	var n int
	must(t, conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, listenerApplicationName).Scan(&n))
	return n
}

func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10s")
	}
	return store.Change{}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
