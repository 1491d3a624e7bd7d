package edgeapi_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store/postgres"
	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

// tinyDisk mounts a tmpfs of size bytes for t and unmounts it when t ends.
func tinyDisk(t *testing.T, size int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the full-disk test (mounts a tmpfs)")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the disk is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

func TestFullDiskAnswers507AndLosesNothing(t *testing.T) {
	disk := tinyDisk(t, 4<<20)
	dbPath := filepath.Join(disk, "z.db")
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	e := startWith(t, st)
	ctx := t.Context()
	if _, err := e.client.CreateRouter(ctx, api.RouterCreate{Name: "before"}); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, disk)

	// Writes that still fit in pages SQLite already holds may succeed; the first one that
	// needs room gets 507.
	created := []string{"before"}
	var full error
	for i := 0; i < 500 && full == nil; i++ {
		name := fmt.Sprintf("r%d", i)
		_, err := e.client.CreateRouter(ctx, api.RouterCreate{Name: name})
		switch {
		case err == nil:
			created = append(created, name)
		default:
			full = err
		}
	}
	var apiErr *apiclient.Error
	if !errors.As(full, &apiErr) || apiErr.StatusCode != 507 || apiErr.Problem.Type != api.ProblemInsufficientStorage {
		t.Fatalf("create on a full disk: want 507 %s, got %v", api.ProblemInsufficientStorage, full)
	}
	t.Logf("507 after %d creates on the full disk: %s", len(created)-1, apiErr.Problem.Detail)

	// The controller keeps serving reads, and shows exactly the writes that succeeded.
	routers, err := e.client.ListRouters(ctx)
	if err != nil {
		t.Fatalf("list on a full disk: %v", err)
	}
	if got := names(routers); fmt.Sprint(got) != fmt.Sprint(created) {
		t.Fatalf("routers on a full disk: %v, want %v", got, created)
	}

	// Space freed: writes work again without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateRouter(ctx, api.RouterCreate{Name: "after"}); err != nil {
		t.Fatalf("create after freeing space: %v", err)
	}
	created = append(created, "after")

	// The database opens again, intact.
	again, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatalf("reopen the store: %v", err)
	}
	defer again.Close()
	stored, err := again.ListRouters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(stored); fmt.Sprint(got) != fmt.Sprint(created) {
		t.Fatalf("routers after reopening: %v, want %v", got, created)
	}
}

func names(rs []api.Router) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

func TestStoppedPostgresAnswers503AndRecovers(t *testing.T) {
	pg := pgtest.Private(t)
	st, err := postgres.Open(context.Background(), pg.DSN, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := startWith(t, st)
	ctx := t.Context()
	if _, err := e.client.CreateRouter(ctx, api.RouterCreate{Name: "before"}); err != nil {
		t.Fatal(err)
	}

	pg.Stop(t)
	// A deadline shorter than the Retry-After: the client gives up after one attempt and
	// shows the controller's answer.
	for name, call := range map[string]func(context.Context) error{
		"list": func(ctx context.Context) error { _, err := e.client.ListRouters(ctx); return err },
		"create": func(ctx context.Context) error {
			_, err := e.client.CreateRouter(ctx, api.RouterCreate{Name: "down"})
			return err
		},
	} {
		short, cancel := context.WithTimeout(ctx, time.Second)
		err := call(short)
		cancel()
		var apiErr *apiclient.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Problem.Type != api.ProblemStoreUnavailable || apiErr.RetryAfter <= 0 {
			t.Fatalf("%s with PostgreSQL stopped: want 503 %s with Retry-After, got %v", name, api.ProblemStoreUnavailable, err)
		}
	}

	// A create sent during the outage succeeds once PostgreSQL is back within its deadline.
	done := make(chan error, 1)
	go func() {
		apply, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := e.client.CreateRouter(apply, api.RouterCreate{Name: "during"})
		done <- err
	}()
	time.Sleep(3 * time.Second) // the outage, not a synchronisation
	pg.Start(t)
	if err := <-done; err != nil {
		t.Fatalf("create across the outage: %v", err)
	}
	routers, err := e.client.ListRouters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := names(routers)
	slices.Sort(got) // lists are in id order
	if got := fmt.Sprint(got); got != "[before during]" {
		t.Fatalf("routers after the outage: %s, want [before during]", got)
	}
}
