package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/storetest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/regkey"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCRUDAndConflicts(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "z.db"))
	r := &api.Router{Name: "edge-1", Roles: []string{"a"}}
	if err := s.CreateRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.ID == "" || r.Status != api.RouterUnenrolled || r.CreatedAt.IsZero() {
		t.Fatalf("create did not fill fields: %+v", r)
	}
	var ce *store.ConflictError
	if err := s.CreateRouter(ctx, &api.Router{Name: "edge-1"}); !errors.As(err, &ce) || ce.Field != "name" {
		t.Fatalf("duplicate name: %v", err)
	}
	other := &api.Router{Name: "edge-2"}
	s.CreateRouter(ctx, other)
	if _, err := s.UpdateRouter(ctx, other.ID, func(r *api.Router) error { r.Name = "edge-1"; return nil }); !errors.As(err, &ce) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	got, err := s.UpdateRouter(ctx, r.ID, func(r *api.Router) error { r.Roles = []string{"b"}; r.ID = "evil"; return nil })
	if err != nil || got.ID != r.ID || got.Roles[0] != "b" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if _, err := s.GetRouter(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	if err := s.DeleteRouter(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	var re *store.ReferenceError
	if err := s.CreateKey(ctx, &store.Key{Kind: api.KindRouter, SubjectID: "nope", ExpiresAt: time.Now()}); !errors.As(err, &re) {
		t.Fatalf("key for unknown router: %v", err)
	}
	lst, _ := s.ListRouters(ctx)
	if len(lst) != 2 || lst[0].Name != "edge-1" {
		t.Fatalf("list: %+v", lst)
	}
}

func newKey(t *testing.T, s *Store, routerID string, ttl time.Duration) (*store.Key, string) {
	t.Helper()
	secret := regkey.NewSecret()
	k := &store.Key{Kind: api.KindRouter, SubjectID: routerID, SecretHash: regkey.Hash(secret), TTLSeconds: int(ttl.Seconds()), ExpiresAt: time.Now().Add(ttl)}
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k, secret
}

func TestConsumeKeyOnceUnderContention(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "z.db"))
	r := &api.Router{Name: "r"}
	s.CreateRouter(ctx, r)
	k, _ := newKey(t, s, r.ID, time.Hour)
	var wins, used atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ConsumeKey(ctx, k.ID, time.Now(), []byte{byte(i)})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrKeyUsed):
				used.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || used.Load() != 49 {
		t.Fatalf("wins=%d used=%d, want 1 and 49", wins.Load(), used.Load())
	}
	got, _ := s.GetRouter(ctx, r.ID)
	if got.Status != api.RouterOffline {
		t.Fatalf("router status after enrolment = %q, want offline", got.Status)
	}
}

func TestKeyStates(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "z.db"))
	r := &api.Router{Name: "r"}
	s.CreateRouter(ctx, r)
	expired, _ := newKey(t, s, r.ID, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, err := s.ConsumeKey(ctx, expired.ID, time.Now(), []byte("enroller")); !errors.Is(err, store.ErrKeyExpired) {
		t.Fatalf("expired: %v", err)
	}
	revoked, _ := newKey(t, s, r.ID, time.Hour)
	if _, err := s.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeKey(ctx, revoked.ID, time.Now(), []byte("enroller")); !errors.Is(err, store.ErrKeyRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := s.ConsumeKey(ctx, "unknown", time.Now(), []byte("enroller")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	used, _ := newKey(t, s, r.ID, time.Hour)
	s.ConsumeKey(ctx, used.ID, time.Now(), []byte("enroller"))
	if _, err := s.RevokeKey(ctx, used.ID); !errors.Is(err, store.ErrKeyUsed) {
		t.Fatalf("revoke used: %v", err)
	}
	if err := s.DeleteRouter(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.ListKeys(ctx, api.KindRouter); len(keys) != 0 {
		t.Fatalf("router's keys survived its deletion: %d", len(keys))
	}
}

func TestIdentityTokenAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "z.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tok := &store.Key{SecretHash: regkey.Hash(regkey.NewSecret()), ExpiresAt: time.Now().Add(time.Hour)}
	id := &api.Identity{Name: "runtime"}
	if err := s.CreateIdentity(ctx, id, tok); err != nil {
		t.Fatal(err)
	}
	if tok.SubjectID != id.ID || tok.Kind != api.KindIdentity || !id.TokenExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("token not linked: %+v %+v", tok, id)
	}
	if _, err := s.ConsumeKey(ctx, tok.ID, time.Now(), []byte("enroller")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, path)
	got, err := s2.GetIdentity(ctx, id.ID)
	if err != nil || !got.Enrolled {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	// A duplicate name must not leave a token behind.
	if err := s2.CreateIdentity(ctx, &api.Identity{Name: "runtime"}, &store.Key{ExpiresAt: time.Now()}); err == nil {
		t.Fatal("duplicate identity accepted")
	}
	if keys, _ := s2.ListKeys(ctx, api.KindIdentity); len(keys) != 1 {
		t.Fatalf("%d identity tokens, want 1", len(keys))
	}
}

func TestChangeFeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := open(t, filepath.Join(t.TempDir(), "z.db"))
	ch := s.Subscribe(ctx)
	r := &api.Router{Name: "r"}
	s.CreateRouter(ctx, r)
	online := api.RouterOnline
	s.SetRouterState(ctx, r.ID, store.RouterState{Status: &online})
	sv := &api.Service{Name: "db", Address: "db.example.com", Port: 5432, Protocol: "tcp"}
	s.CreateService(ctx, sv)
	s.DeleteRouter(ctx, r.ID)
	want := []store.Change{
		{Collection: store.Routers, Op: store.OpCreate, ID: r.ID},
		{Collection: store.Routers, Op: store.OpState, ID: r.ID},
		{Collection: store.Services, Op: store.OpCreate, ID: sv.ID},
		{Collection: store.Routers, Op: store.OpDelete, ID: r.ID},
	}
	for i, w := range want {
		select {
		case got := <-ch:
			if got != w {
				t.Fatalf("change %d = %+v, want %+v", i, got, w)
			}
		case <-time.After(time.Second):
			t.Fatalf("change %d not delivered within 1s", i)
		}
	}
	cancel()
	for range ch {
	}
}

func TestFeedNeverBlocksWriters(t *testing.T) { storetest.FeedNeverBlocksWriters(t) }

func TestFeedFoldsStatusReports(t *testing.T) { storetest.FeedFoldsStatusReports(t) }

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "z.db")
	s := open(t, path)
	if _, err := s.w.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "upgrade the controller") {
		t.Fatalf("newer schema: %v", err)
	}
}
