package failover_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// unixForwarder listens on loopback TCP and carries each connection to the unix socket sock
// (scripts/postgres.sh serves PostgreSQL on a unix socket only), ending both sides together:
// when the router resets the TCP side, PostgreSQL sees its client go, as it would on TCP.
func unixForwarder(t *testing.T, sock string) int {
	t.Helper()
	return nettest.Serve(t, func(c net.Conn) {
		u, err := net.Dial("unix", sock)
		if err != nil {
			c.Close()
			return
		}
		t.Cleanup(func() { c.Close(); u.Close() })
		ended := make(chan struct{}, 2)
		for _, p := range [][2]net.Conn{{c, u}, {u, c}} {
			go func() { io.Copy(p[0], p[1]); ended <- struct{}{} }()
		}
		<-ended
		c.Close()
		u.Close()
	}).Port
}

// TestFrozenRouterLeavesNoDatabaseSession: a client holds a PostgreSQL transaction open through
// the overlay when the carrying router freezes (SIGSTOP). The hub gives up on the silent link
// after its link timeout and the client's query fails. When the router thaws it finds its link
// closed and resets the target connections of the streams it carried: the PostgreSQL session
// (pg_stat_activity) is gone within 5 s of the client's error, its transaction rolled back,
// instead of staying "idle in transaction" with its locks.
func TestFrozenRouterLeavesNoDatabaseSession(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	port := unixForwarder(t, filepath.Join(pgcfg.Host, fmt.Sprintf(".s.PGSQL.%d", pgcfg.Port)))
	// Links time out after 4 s on both ends (the keys under test), to keep the test short.
	c := harness.StartController(t, "--link-timeout", "4s")
	r := c.StartRouter(t, "edge-1", []string{"edge"}, "--link-timeout", "4s")
	cl := service(t, c, "127.0.0.1", port)
	waitAssigned(t, r)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	overlay := pgcfg.Copy()
	overlay.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) { return cl.Dial(ctx, addr) }
	var db *pgx.Conn
	harness.WaitFor(t, 20*time.Second, "PostgreSQL answers through the overlay", func() bool {
		db, err = pgx.ConnectConfig(ctx, overlay)
		return err == nil
	})
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 100)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := db.QueryRow(ctx, "SELECT pg_backend_pid() FROM accounts WHERE id = 1 FOR UPDATE").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		var s string
		err := admin.QueryRow(ctx, "SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = $1", pid).Scan(&s)
		if err == pgx.ErrNoRows {
			return "gone"
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := state(); s != "idle in transaction" {
		t.Fatalf("the session holding the row lock is %q, want idle in transaction", s)
	}

	r.Proc.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { r.Proc.Signal(syscall.SIGCONT) })
	// kill(2) returns before every thread of the router has stopped: wait until the kernel
	// reports the process stopped, or a query sent at once can still get through.
	harness.WaitFor(t, 10*time.Second, "the router to be stopped", func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.Proc.Cmd.Process.Pid))
		if err != nil {
			return false
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		return len(fields) > 0 && fields[0] == "T"
	})
	stopped := time.Now()
	qctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err = db.Exec(qctx, "UPDATE accounts SET balance = 0 WHERE id = 1")
	failed := time.Now()
	if err == nil {
		t.Fatal("a query through the frozen router succeeded")
	}
	if qctx.Err() != nil {
		t.Fatalf("the client got no error from the overlay within 60 s: %v", err)
	}
	t.Logf("client error %v after the router froze: %v", failed.Sub(stopped).Round(time.Millisecond), err)
	if s := state(); s != "idle in transaction" {
		t.Logf("while the router is frozen the session is %q", s)
	}

	r.Proc.Signal(syscall.SIGCONT)
	harness.WaitFor(t, 30*time.Second, "the PostgreSQL session ends", func() bool { return state() == "gone" })
	gone := time.Since(failed)
	t.Logf("PostgreSQL session gone %v after the client's error (router thawed at once)", gone.Round(time.Millisecond))
	if gone > 5*time.Second {
		t.Errorf("the PostgreSQL session outlived the client's error by %v; the target is 5 s", gone.Round(time.Millisecond))
	}
	// Its transaction was rolled back and its lock released: the row can be taken at once.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	var balance int
	if err := admin.QueryRow(lctx, "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE NOWAIT").Scan(&balance); err != nil || balance != 100 {
		t.Errorf("row after the session ended: balance %d, %v (want 100, unlocked)", balance, err)
	}
}
