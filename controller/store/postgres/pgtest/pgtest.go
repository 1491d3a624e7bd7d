// Package pgtest gives tests a real PostgreSQL server: TestMain starts the throwaway cluster
// of scripts/postgres.sh (or uses $ZTNA_TEST_POSTGRES_DSN), and each test gets an empty
// database of its own that is dropped when it ends.
//
// When PostgreSQL cannot be started, tests that need it skip with the reason — unless
// $ZTNA_REQUIRE_POSTGRES is set (as `make test` does), in which case they fail. With -short
// no server is started and those tests skip.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables that steer the package.
const (
	// EnvDSN names an existing server to use instead of starting one (a superuser DSN: the
	// tests create and drop databases).
	EnvDSN = "ZTNA_TEST_POSTGRES_DSN"
	// EnvRequire turns "PostgreSQL unavailable" from a skip into a failure.
	EnvRequire = "ZTNA_REQUIRE_POSTGRES"
)

// server is the package's cluster, set by Main.
var server struct {
	dsn         string
	unavailable error
	short       bool // -short: no PostgreSQL, its tests skip
}

// Main starts the cluster, runs the tests (m.Run) and stops it; use it as
// `func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }`. m may wrap *testing.M to nest
// another package's Main.
func Main(m interface{ Run() int }) int {
	flag.Parse() // testing.Short reads the flags
	if testing.Short() {
		server.short = true
		return m.Run()
	}
	stop, err := start()
	if err != nil {
		server.unavailable = err
		if os.Getenv(EnvRequire) != "" {
			fmt.Fprintf(os.Stderr, "pgtest: %s is set but PostgreSQL cannot be started: %v\n", EnvRequire, err)
			return 1
		}
	}
	code := m.Run()
	if server.dsn != "" && stop == nil {
		dropDatabases()
	}
	if stop != nil {
		if err := stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop PostgreSQL: %v\n", err)
		}
	}
	return code
}

// start starts a cluster in a fresh directory and returns how to stop it.
func start() (stop func() error, err error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		server.dsn = dsn
		return nil, nil
	}
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	sweep(script)
	// Directly under /tmp: the cluster's owner (postgres, when we are root) must reach it,
	// and the unix socket path must stay short.
	dir, err := os.MkdirTemp("/tmp", dirPrefix)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(dir+ownerSuffix, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	out, err := run(script, "start", dir)
	if err != nil {
		os.RemoveAll(dir)
		os.Remove(dir + ownerSuffix)
		return nil, err
	}
	server.dsn = strings.TrimSpace(out)
	return func() error {
		_, err := run(script, "stop", dir)
		os.Remove(dir + ownerSuffix)
		return err
	}, nil
}

// A cluster lives in /tmp/<dirPrefix>*; <dir><ownerSuffix> holds the pid of the test process
// that started it.
const (
	dirPrefix   = "ztna-pg-"
	ownerSuffix = ".owner"
)

// sweep stops clusters whose test process died without stopping them (a test binary killed
// by a timeout), so they do not pile up on a CI machine.
func sweep(script string) {
	owners, _ := filepath.Glob(filepath.Join("/tmp", dirPrefix+"*"+ownerSuffix))
	for _, f := range owners {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // alive (or not ours to judge)
		}
		if _, err := run(script, "stop", strings.TrimSuffix(f, ownerSuffix)); err == nil {
			os.Remove(f)
		}
	}
}

func run(script string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", script, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// findScript locates scripts/postgres.sh in the module root above the working directory.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "postgres.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("module root %s has no scripts/postgres.sh", dir)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/postgres.sh not found: run the tests inside the ztna module")
		}
		dir = parent
	}
}

// Cluster is a PostgreSQL server of one test's own, for tests that stop and start it:
// stopping the shared server would break every other test running on it.
type Cluster struct {
	DSN         string // superuser DSN of its postgres database
	script, dir string
}

// Private starts a cluster for t alone (scripts/postgres.sh in a fresh directory, so its own
// socket) and removes it when t ends. It skips under -short and, unless $ZTNA_REQUIRE_POSTGRES
// is set, when PostgreSQL cannot be started.
func Private(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping tests that need PostgreSQL")
	}
	script, err := findScript()
	if err == nil {
		var c *Cluster
		if c, err = startPrivate(script); err == nil {
			t.Cleanup(func() {
				if _, err := run(script, "stop", c.dir); err != nil {
					t.Errorf("remove private PostgreSQL: %v", err)
				}
			})
			return c
		}
	}
	if os.Getenv(EnvRequire) != "" {
		t.Fatalf("PostgreSQL is required (%s) but cannot be started: %v", EnvRequire, err)
	}
	t.Skipf("PostgreSQL cannot be started, skipping (install the Debian package postgresql): %v", err)
	return nil
}

func startPrivate(script string) (*Cluster, error) {
	// Not dirPrefix: sweep must not take it for the package cluster of a dead test binary.
	dir, err := os.MkdirTemp("/tmp", "ztna-pgown-")
	if err != nil {
		return nil, err
	}
	out, err := run(script, "start", dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Cluster{DSN: strings.TrimSpace(out), script: script, dir: dir}, nil
}

// Stop stops the server and keeps its data; clients get connection errors until Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if _, err := run(c.script, "halt", c.dir); err != nil {
		t.Fatal(err)
	}
}

// Start starts the stopped server again, with the data it had.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if _, err := run(c.script, "start", c.dir); err != nil {
		t.Fatal(err)
	}
}

// DSN returns the server's superuser DSN, skipping (or failing) t when there is no server.
func DSN(t testing.TB) string {
	t.Helper()
	if server.short {
		t.Skip("-short: skipping tests that need PostgreSQL")
	}
	if server.dsn == "" {
		err := server.unavailable
		if err == nil {
			err = errors.New("pgtest.Main did not run: call it from TestMain")
		}
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("PostgreSQL is required (%s) but unavailable: %v", EnvRequire, err)
		}
		t.Skipf("PostgreSQL unavailable, skipping (install the Debian package postgresql or set %s): %v", EnvDSN, err)
	}
	return server.dsn
}

// databases are empty test databases to hand out again: creating a database takes about a
// second on a busy machine, emptying one takes milliseconds.
var databases struct {
	sync.Mutex
	free []string
	made []string
}

// NewDatabase gives t an empty database of its own, returns its DSN, and empties it again
// for reuse when t ends (after t's other cleanups, which close t's connections).
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := DSN(t)
	databases.Lock()
	var name string
	if n := len(databases.free); n > 0 {
		name, databases.free = databases.free[n-1], databases.free[:n-1]
		databases.Unlock()
	} else {
		name = fmt.Sprintf("ztna_test_%d_%d", time.Now().UnixNano(), len(databases.made))
		databases.made = append(databases.made, name)
		databases.Unlock()
		if err := execSQL(admin, "CREATE DATABASE "+name); err != nil {
			t.Fatalf("create test database: %v", err)
		}
	}
	dsn := WithDatabase(admin, name)
	t.Cleanup(func() {
		// A store a test leaked would hold locks: give up on the database rather than hang.
		err := execSQL(dsn, "SET lock_timeout = '5s'; DROP SCHEMA public CASCADE; CREATE SCHEMA public")
		if err != nil {
			t.Errorf("empty test database %s: %v", name, err)
			if err := execSQL(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("drop test database: %v", err)
			}
			return
		}
		databases.Lock()
		databases.free = append(databases.free, name)
		databases.Unlock()
	})
	return dsn
}

// dropDatabases drops the test databases (on a server that outlives the tests).
func dropDatabases() {
	databases.Lock()
	defer databases.Unlock()
	for _, name := range databases.made {
		if err := execSQL(server.dsn, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: drop test database %s: %v\n", name, err)
		}
	}
}

// WithDatabase returns dsn with its database replaced by name.
func WithDatabase(dsn, name string) string {
	if strings.Contains(dsn, "://") {
		// URL form: the path is the database.
		scheme, rest, _ := strings.Cut(dsn, "://")
		authority, query, hasQuery := strings.Cut(rest, "?")
		if i := strings.Index(authority, "/"); i >= 0 {
			authority = authority[:i]
		}
		out := scheme + "://" + authority + "/" + name
		if hasQuery {
			out += "?" + query
		}
		return out
	}
	return dsn + " dbname=" + name // keyword form: the last setting wins
}

func execSQL(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
