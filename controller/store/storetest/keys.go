package storetest

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/regkey"
)

// newToken is an identity enrolment token as the API builds it (the store fills the rest).
func newToken(ttl time.Duration) *store.Key {
	return &store.Key{SecretHash: regkey.Hash(regkey.NewSecret()), TTLSeconds: int(ttl.Seconds()), ExpiresAt: time.Now().Add(ttl)}
}

func newRouterKey(t *testing.T, s store.Store, routerID string, ttl time.Duration) *store.Key {
	t.Helper()
	return createRouterKey(t, s, routerID, ttl, false)
}

// newReenrolKey is a router key created with AllowReenrollment: it may enrol the router
// again while it is enrolled.
func newReenrolKey(t *testing.T, s store.Store, routerID string, ttl time.Duration) *store.Key {
	t.Helper()
	return createRouterKey(t, s, routerID, ttl, true)
}

func createRouterKey(t *testing.T, s store.Store, routerID string, ttl time.Duration, reenrol bool) *store.Key {
	t.Helper()
	k := newToken(ttl)
	k.Kind, k.SubjectID, k.AllowReenrollment = api.KindRouter, routerID, reenrol
	must(t, s.CreateKey(ctxFor(t), k))
	return k
}

func newRouter(t *testing.T, s store.Store, name string) *api.Router {
	t.Helper()
	r := &api.Router{Name: name}
	must(t, s.CreateRouter(ctxFor(t), r))
	return r
}

// testReferences: keys name existing subjects of their own kind, and go with them.
func testReferences(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	r1, r2 := newRouter(t, s, "r1"), newRouter(t, s, "r2")
	id := &api.Identity{Name: "i"}
	tok := newToken(time.Hour)
	must(t, s.CreateIdentity(ctx, id, tok))

	var re *store.ReferenceError
	for _, c := range []struct {
		kind, subject, field string
	}{
		{api.KindRouter, store.NewID(), "router_id"},
		{api.KindIdentity, store.NewID(), "identity_id"},
		{api.KindRouter, id.ID, "router_id"},     // an identity is no router
		{api.KindIdentity, r1.ID, "identity_id"}, // and the other way round
	} {
		k := newToken(time.Hour)
		k.Kind, k.SubjectID = c.kind, c.subject
		if err := s.CreateKey(ctx, k); !errors.As(err, &re) || re.Field != c.field || re.Value != c.subject {
			t.Errorf("%s key for %s: %v, want *ReferenceError on %s", c.kind, c.subject, err, c.field)
		}
	}
	if err := s.CreateKey(ctx, &store.Key{Kind: "bogus", SubjectID: r1.ID, ExpiresAt: time.Now()}); err == nil {
		t.Error("a key of unknown kind was accepted")
	}
	if keys, _ := s.ListKeys(ctx, api.KindRouter); len(keys) != 0 {
		t.Fatalf("refused keys were stored: %+v", keys)
	}

	k1, k2 := newRouterKey(t, s, r1.ID, time.Hour), newRouterKey(t, s, r2.ID, time.Hour)
	must(t, s.DeleteRouter(ctx, r1.ID))
	if _, err := s.GetKey(ctx, k1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the key of a deleted router: %v, want ErrNotFound", err)
	}
	if _, err := s.GetKey(ctx, k2.ID); err != nil {
		t.Errorf("deleting r1 took r2's key: %v", err)
	}
	must(t, s.DeleteIdentity(ctx, id.ID))
	if _, err := s.GetKey(ctx, tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the token of a deleted identity: %v, want ErrNotFound", err)
	}
}

// testKeys: what CreateKey assigns and what reads return.
func testKeys(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	r := newRouter(t, s, "r")
	in := newToken(90 * time.Minute)
	in.Kind, in.SubjectID = api.KindRouter, r.ID
	in.ExpiresAt = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", -7200))
	before := store.Now()
	must(t, s.CreateKey(ctx, in))
	if in.ID == "" || in.CreatedAt.Before(before) || in.CreatedAt.Location() != time.UTC ||
		!in.ExpiresAt.Equal(time.Date(2031, 5, 6, 9, 8, 9, 123456000, time.UTC)) || in.ExpiresAt.Location() != time.UTC {
		t.Fatalf("create assigned id %q created %v expires %v; want an id, now, and expiry in UTC at microsecond precision", in.ID, in.CreatedAt, in.ExpiresAt)
	}
	got, err := s.GetKey(ctx, in.ID)
	must(t, err)
	if got.ID != in.ID || got.Kind != api.KindRouter || got.SubjectID != r.ID || !bytes.Equal(got.SecretHash, in.SecretHash) ||
		got.TTLSeconds != 5400 || !got.ExpiresAt.Equal(in.ExpiresAt) || !got.CreatedAt.Equal(in.CreatedAt) ||
		got.Revoked || got.UsedAt != nil || got.State(time.Now()) != api.KeyUnused {
		t.Fatalf("read back %+v, created %+v", got, in)
	}
	second := newRouterKey(t, s, r.ID, time.Hour)
	must(t, s.CreateIdentity(ctx, &api.Identity{Name: "i"}, newToken(time.Hour)))
	keys, err := s.ListKeys(ctx, api.KindRouter)
	must(t, err)
	if len(keys) != 2 || keys[0].ID != in.ID || keys[1].ID != second.ID {
		t.Fatalf("router keys %+v, want the two, oldest first", keys)
	}
	if toks, _ := s.ListKeys(ctx, api.KindIdentity); len(toks) != 1 || toks[0].Kind != api.KindIdentity {
		t.Fatalf("identity keys %+v, want the one token", toks)
	}
	must(t, s.DeleteKey(ctx, in.ID))
	if _, err := s.GetKey(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted key: %v", err)
	}
	if err := s.DeleteKey(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete deleted key: %v", err)
	}
	if _, err := s.RevokeKey(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown key: %v", err)
	}
}

// testKeyStates: ConsumeKey against every state a key can be in; a refused key changes
// nothing.
func testKeyStates(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const ttl = time.Hour
	for _, c := range []struct {
		name    string
		revoke  bool
		use     bool
		at      time.Duration // when ConsumeKey runs, after creation (retry: after the first use)
		retry   bool          // the second ConsumeKey repeats the first's public key
		wantErr error
	}{
		{name: "unused", at: 0},
		{name: "just before expiry", at: ttl - time.Microsecond},
		{name: "at expiry", at: ttl, wantErr: store.ErrKeyExpired},
		{name: "after expiry", at: 2 * ttl, wantErr: store.ErrKeyExpired},
		{name: "revoked", revoke: true, wantErr: store.ErrKeyRevoked},
		{name: "revoked and expired", revoke: true, at: 2 * ttl, wantErr: store.ErrKeyRevoked},
		{name: "used", use: true, wantErr: store.ErrKeyUsed},
		{name: "used and expired", use: true, at: 2 * ttl, wantErr: store.ErrKeyUsed},
		// A retry of the enrolment that used the key (its reply lost) gets the key back...
		{name: "retried by the same public key", use: true, retry: true, at: store.EnrolmentRetryWindow - time.Second},
		// ...but only for store.EnrolmentRetryWindow after its use.
		{name: "retried too late", use: true, retry: true, at: store.EnrolmentRetryWindow, wantErr: store.ErrKeyUsed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRouter(t, s, "r-"+store.NewID()[:8])
			k := newRouterKey(t, s, r.ID, ttl)
			if c.revoke {
				rk, err := s.RevokeKey(ctx, k.ID)
				must(t, err)
				if !rk.Revoked || rk.State(time.Now()) != api.KeyRevoked {
					t.Fatalf("revoke returned %+v", rk)
				}
			}
			if c.use {
				_, err := s.ConsumeKey(ctx, k.ID, k.CreatedAt, enroller)
				must(t, err)
			}
			before, _ := s.GetKey(ctx, k.ID)
			beforeRouter, _ := s.GetRouter(ctx, r.ID)
			now := k.ExpiresAt.Add(c.at - ttl)
			if c.retry {
				now = before.UsedAt.Add(c.at) // the window runs from the first use
			}
			by := otherEnroller
			if c.retry || !c.use {
				by = enroller
			}
			got, err := s.ConsumeKey(ctx, k.ID, now, by)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("consume: %v, want %v", err, c.wantErr)
				}
				after, _ := s.GetKey(ctx, k.ID)
				afterRouter, _ := s.GetRouter(ctx, r.ID)
				if !sameKey(before, after) || afterRouter.Status != beforeRouter.Status {
					t.Fatalf("a refused consume changed state: key %+v -> %+v, router %q -> %q", before, after, beforeRouter.Status, afterRouter.Status)
				}
				return
			}
			must(t, err)
			want := now.UTC().Truncate(time.Microsecond)
			if c.retry { // the retry is the first use: nothing changes
				want = *before.UsedAt
				if after, _ := s.GetKey(ctx, k.ID); !sameKey(before, after) || !bytes.Equal(after.UsedBy, enroller) {
					t.Fatalf("a retried enrolment changed the key: %+v -> %+v", before, after)
				}
			}
			if got.UsedAt == nil || !got.UsedAt.Equal(want) || got.ID != k.ID || got.SubjectID != r.ID {
				t.Fatalf("consume returned %+v, want used at %v", got, want)
			}
			stored, _ := s.GetKey(ctx, k.ID)
			if stored.UsedAt == nil || !stored.UsedAt.Equal(want) || stored.State(now) != api.KeyUsed {
				t.Fatalf("stored key %+v, want used at %v", stored, want)
			}
			if gr, _ := s.GetRouter(ctx, r.ID); gr.Status != api.RouterOffline {
				t.Fatalf("router after enrolment is %q, want offline", gr.Status)
			}
			if _, err := s.RevokeKey(ctx, k.ID); !errors.Is(err, store.ErrKeyUsed) {
				t.Fatalf("revoke a used key: %v, want ErrKeyUsed", err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if _, err := s.ConsumeKey(ctx, store.NewID(), time.Now(), enroller); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("consume unknown key: %v, want ErrNotFound", err)
		}
	})
	t.Run("online router stays online", func(t *testing.T) {
		// Re-enrolling a router that is connected must not mark it offline.
		r := newRouter(t, s, "r-online")
		online := api.RouterOnline
		must(t, s.SetRouterState(ctx, r.ID, store.RouterState{Status: &online}))
		k := newReenrolKey(t, s, r.ID, ttl)
		_, err := s.ConsumeKey(ctx, k.ID, time.Now(), enroller)
		must(t, err)
		if gr, _ := s.GetRouter(ctx, r.ID); gr.Status != api.RouterOnline {
			t.Fatalf("status %q, want online", gr.Status)
		}
	})
}

func sameKey(a, b *store.Key) bool {
	return a.ID == b.ID && a.Revoked == b.Revoked && a.AllowReenrollment == b.AllowReenrollment && (a.UsedAt == nil) == (b.UsedAt == nil) &&
		(a.UsedAt == nil || a.UsedAt.Equal(*b.UsedAt)) && a.ExpiresAt.Equal(b.ExpiresAt) && bytes.Equal(a.UsedBy, b.UsedBy)
}

// testRetryAfterReenrolment: once a subject enrolled again with another key, a retry of its
// earlier enrolment (same key, same public key, within the window) is refused: it would issue
// a certificate newer than the enrolment that replaced it.
func testRetryAfterReenrolment(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	r := newRouter(t, s, "r-"+store.NewID()[:8])
	first, second := newRouterKey(t, s, r.ID, time.Hour), newReenrolKey(t, s, r.ID, time.Hour)
	now := time.Now()
	_, err := s.ConsumeKey(ctx, first.ID, now, enroller)
	must(t, err)
	if _, err := s.ConsumeKey(ctx, first.ID, now.Add(time.Second), enroller); err != nil {
		t.Fatalf("retry before re-enrolment: %v", err)
	}
	_, err = s.ConsumeKey(ctx, second.ID, now.Add(2*time.Second), otherEnroller)
	must(t, err)
	if _, err := s.ConsumeKey(ctx, first.ID, now.Add(3*time.Second), enroller); !errors.Is(err, store.ErrKeyUsed) {
		t.Fatalf("retry of the superseded enrolment: %v, want ErrKeyUsed", err)
	}
	if k, _ := s.GetKey(ctx, first.ID); k.RetryOf(enroller, now.Add(3*time.Second)) {
		t.Fatal("the superseded key still answers retries")
	}
	if _, err := s.ConsumeKey(ctx, second.ID, now.Add(4*time.Second), otherEnroller); err != nil {
		t.Fatalf("retry of the latest enrolment: %v", err)
	}
}

// testIdentityToken: an identity and its enrolment token are created together (or not at
// all), and consuming the token enrols the identity.
func testIdentityToken(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	tok := newToken(time.Hour)
	tok.Kind, tok.SubjectID = api.KindRouter, "ignored" // the store sets both
	id := &api.Identity{Name: "runtime", Roles: []string{"apps"}}
	must(t, s.CreateIdentity(ctx, id, tok))
	if tok.ID == "" || tok.SubjectID != id.ID || tok.Kind != api.KindIdentity || tok.CreatedAt.IsZero() || !id.TokenExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("token not linked: %+v, identity %+v", tok, id)
	}
	stored, err := s.GetKey(ctx, tok.ID)
	must(t, err)
	if stored.Kind != api.KindIdentity || stored.SubjectID != id.ID {
		t.Fatalf("stored token %+v", stored)
	}
	if gi, _ := s.GetIdentity(ctx, id.ID); gi.TokenTTLSeconds != tok.TTLSeconds {
		t.Fatalf("stored token_ttl_seconds %d, want the token's %d", gi.TokenTTLSeconds, tok.TTLSeconds)
	}
	_, err = s.ConsumeKey(ctx, tok.ID, time.Now(), enroller)
	must(t, err)
	if gi, _ := s.GetIdentity(ctx, id.ID); !gi.Enrolled {
		t.Fatal("consuming the token did not enrol the identity")
	}
	if _, err := s.ConsumeKey(ctx, tok.ID, time.Now(), otherEnroller); !errors.Is(err, store.ErrKeyUsed) {
		t.Fatalf("second use of the token: %v, want ErrKeyUsed", err)
	}
	// A refused identity leaves no token behind.
	var ce *store.ConflictError
	if err := s.CreateIdentity(ctx, &api.Identity{Name: "runtime"}, newToken(time.Hour)); !errors.As(err, &ce) {
		t.Fatalf("duplicate identity: %v, want *ConflictError", err)
	}
	if toks, _ := s.ListKeys(ctx, api.KindIdentity); len(toks) != 1 {
		t.Fatalf("%d identity tokens after a refused create, want 1", len(toks))
	}
}

// testReissueIdentityToken: a reissued token revokes the identity's earlier unused token
// (a used one stays used), is linked to the same identity, moves TokenExpiresAt, and enrols
// once; an unknown identity is ErrNotFound and gets no token.
func testReissueIdentityToken(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	id := &api.Identity{Name: "runtime", Roles: []string{"apps"}}
	first := newToken(time.Hour)
	must(t, s.CreateIdentity(ctx, id, first))
	used := newToken(time.Hour)
	_, err := s.ReissueIdentityToken(ctx, id.ID, used)
	must(t, err)
	_, err = s.ConsumeKey(ctx, used.ID, time.Now(), enroller)
	must(t, err)

	next := newToken(2 * time.Hour)
	next.Kind, next.SubjectID = api.KindRouter, "ignored" // the store sets both
	got, err := s.ReissueIdentityToken(ctx, id.ID, next)
	must(t, err)
	if next.ID == "" || next.ID == first.ID || next.SubjectID != id.ID || next.Kind != api.KindIdentity || next.CreatedAt.IsZero() {
		t.Fatalf("reissued token not linked: %+v", next)
	}
	if got.ID != id.ID || !got.TokenExpiresAt.Equal(next.ExpiresAt) || !got.Enrolled || got.EnrollmentToken != "" {
		t.Fatalf("identity after reissue %+v, want same id, token_expires_at %s, still enrolled", got, next.ExpiresAt)
	}
	if gi, _ := s.GetIdentity(ctx, id.ID); !gi.TokenExpiresAt.Equal(next.ExpiresAt) || gi.TokenTTLSeconds != next.TTLSeconds {
		t.Fatalf("stored token_expires_at %s, token_ttl_seconds %d, want %s, %d", gi.TokenExpiresAt, gi.TokenTTLSeconds, next.ExpiresAt, next.TTLSeconds)
	}
	states := map[string]string{first.ID: api.KeyRevoked, used.ID: api.KeyUsed, next.ID: api.KeyUnused}
	for kid, want := range states {
		k, err := s.GetKey(ctx, kid)
		must(t, err)
		if st := k.State(time.Now()); st != want {
			t.Errorf("token %s: state %s, want %s", kid, st, want)
		}
	}
	if _, err := s.ConsumeKey(ctx, first.ID, time.Now(), enroller); !errors.Is(err, store.ErrKeyRevoked) {
		t.Fatalf("earlier token after reissue: %v, want ErrKeyRevoked", err)
	}
	_, err = s.ConsumeKey(ctx, next.ID, time.Now(), enroller)
	must(t, err)
	if _, err := s.ConsumeKey(ctx, next.ID, time.Now(), otherEnroller); !errors.Is(err, store.ErrKeyUsed) {
		t.Fatalf("second use of the reissued token: %v, want ErrKeyUsed", err)
	}

	if _, err := s.ReissueIdentityToken(ctx, "nosuchidentity", newToken(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reissue for an unknown identity: %v, want ErrNotFound", err)
	}
	if toks, _ := s.ListKeys(ctx, api.KindIdentity); len(toks) != 3 {
		t.Fatalf("%d identity tokens, want 3 (nothing for the unknown identity)", len(toks))
	}
}

// contenders is how many callers race for keys.
const contenders = 50

// testConsumeKeyOnce: of many concurrent uses of one key, spread over the stores given
// (replicas), exactly one succeeds and every other is told the key is used.
func testConsumeKeyOnce(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	r := newRouter(t, a, "r")
	k := newRouterKey(t, a, r.ID, time.Hour)
	var wins, used atomic.Int32
	race(contenders, func(i int) {
		if _, err := pick(i, a, b).GetKey(ctx, k.ID); err != nil {
			t.Error(err)
		}
	}, func(i int) {
		_, err := pick(i, a, b).ConsumeKey(ctx, k.ID, time.Now(), enrollerN(i))
		switch {
		case err == nil:
			wins.Add(1)
		case errors.Is(err, store.ErrKeyUsed):
			used.Add(1)
		default:
			t.Errorf("consume: %v", err)
		}
	})
	if wins.Load() != 1 || used.Load() != contenders-1 {
		t.Fatalf("%d succeeded and %d were told the key is used; want 1 and %d", wins.Load(), used.Load(), contenders-1)
	}
	if gr, _ := b.GetRouter(ctx, r.ID); gr.Status != api.RouterOffline {
		t.Fatalf("router status after enrolment %q, want offline", gr.Status)
	}
}

// testConsumeManyKeys: concurrent uses of distinct keys all succeed.
func testConsumeManyKeys(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	keys := make([]*store.Key, contenders)
	for i := range keys {
		r := newRouter(t, a, "r-"+store.NewID()[:10])
		keys[i] = newRouterKey(t, a, r.ID, time.Hour)
	}
	race(contenders, func(i int) {
		if _, err := pick(i, a, b).GetKey(ctx, keys[i].ID); err != nil {
			t.Error(err)
		}
	}, func(i int) {
		if _, err := pick(i, a, b).ConsumeKey(ctx, keys[i].ID, time.Now(), enroller); err != nil {
			t.Errorf("consume key %d: %v", i, err)
		}
	})
	list, _ := b.ListRouters(ctx)
	for _, r := range list {
		if r.Status != api.RouterOffline {
			t.Errorf("router %s is %q after enrolment, want offline", r.Name, r.Status)
		}
	}
}

// EnrolRouter records an enrolment of the router at the given time: a registration key
// created for it (allowed to re-enrol it) and used then (what the enrol endpoint stores), so
// tests can supersede a router's earlier certificates without running an enrolment.
func EnrolRouter(t *testing.T, s store.Store, routerID string, at time.Time) {
	t.Helper()
	k := newReenrolKey(t, s, routerID, time.Hour)
	if _, err := s.ConsumeKey(ctxFor(t), k.ID, at, []byte(k.ID)); err != nil {
		t.Fatal(err)
	}
}

// testReenrolment: an enrolled router is enrolled again only by a key created with
// AllowReenrollment, or once after an operator reset (Router.ReenrollmentAllowed); any other
// valid key is refused with ErrRouterEnrolled and stays unused, and the lost-reply retry of
// the enrolment that holds the router still works.
func testReenrolment(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	// Subscribed before the first write: a replicated feed may deliver a write's change after
	// a later Subscribe.
	changes := s.Subscribe(ctx)
	r := newRouter(t, s, "r-"+store.NewID()[:8])
	first, stray, reenrol := newRouterKey(t, s, r.ID, time.Hour), newRouterKey(t, s, r.ID, time.Hour), newReenrolKey(t, s, r.ID, time.Hour)
	expect(t, changes, store.Change{Collection: store.Routers, Op: store.OpCreate, ID: r.ID}, store.Change{Collection: store.Keys, Op: store.OpCreate, ID: first.ID},
		store.Change{Collection: store.Keys, Op: store.OpCreate, ID: stray.ID}, store.Change{Collection: store.Keys, Op: store.OpCreate, ID: reenrol.ID})
	if k, _ := s.GetKey(ctx, reenrol.ID); k == nil || !k.AllowReenrollment {
		t.Fatalf("key created with AllowReenrollment reads back %+v", k)
	}
	if k, _ := s.GetKey(ctx, stray.ID); k == nil || k.AllowReenrollment {
		t.Fatalf("key created without AllowReenrollment reads back %+v", k)
	}
	now := time.Now()
	if _, err := s.ConsumeKey(ctx, first.ID, now, enroller); err != nil {
		t.Fatalf("first enrolment of a new router: %v", err)
	}
	expect(t, changes, store.Change{Collection: store.Keys, Op: store.OpUpdate, ID: first.ID}, store.Change{Collection: store.Routers, Op: store.OpState, ID: r.ID})

	if _, err := s.ConsumeKey(ctx, stray.ID, now.Add(time.Second), otherEnroller); !errors.Is(err, store.ErrRouterEnrolled) {
		t.Fatalf("a key without the intent for an enrolled router: %v, want ErrRouterEnrolled", err)
	}
	if k, _ := s.GetKey(ctx, stray.ID); k.State(now) != api.KeyUnused || len(k.UsedBy) != 0 {
		t.Fatalf("the refused key is %s (used_by %x), want unused", k.State(now), k.UsedBy)
	}
	if k, _ := s.GetKey(ctx, first.ID); !k.RetryOf(enroller, now.Add(2*time.Second)) {
		t.Fatal("the refused enrolment cleared the holding key's used_by")
	}
	if _, err := s.ConsumeKey(ctx, first.ID, now.Add(2*time.Second), enroller); err != nil {
		t.Fatalf("retry of the enrolment that holds the router (lost reply): %v", err)
	}
	select {
	case c := <-changes:
		t.Fatalf("a refused enrolment or a retry published %+v", c)
	case <-time.After(50 * time.Millisecond):
	}

	if _, err := s.ConsumeKey(ctx, reenrol.ID, now.Add(3*time.Second), otherEnroller); err != nil {
		t.Fatalf("a key with AllowReenrollment: %v", err)
	}
	expect(t, changes, store.Change{Collection: store.Keys, Op: store.OpUpdate, ID: reenrol.ID}, store.Change{Collection: store.Routers, Op: store.OpState, ID: r.ID})

	// The operator's reset admits the next enrolment, whatever its key, and only that one.
	if _, err := s.UpdateRouter(ctx, r.ID, func(v *api.Router) error { v.ReenrollmentAllowed = true; return nil }); err != nil {
		t.Fatal(err)
	}
	next(t, changes)
	if gr, _ := s.GetRouter(ctx, r.ID); !gr.ReenrollmentAllowed {
		t.Fatal("the reset does not read back")
	}
	if _, err := s.ConsumeKey(ctx, stray.ID, now.Add(4*time.Second), enrollerN(3)); err != nil {
		t.Fatalf("a key without the intent after an operator reset: %v", err)
	}
	if gr, _ := s.GetRouter(ctx, r.ID); gr.ReenrollmentAllowed || gr.Status == api.RouterUnenrolled {
		t.Fatalf("after the admitted enrolment the router is %q with reenrollment_allowed %v; want enrolled, reset spent", gr.Status, gr.ReenrollmentAllowed)
	}
	late := newRouterKey(t, s, r.ID, time.Hour)
	if _, err := s.ConsumeKey(ctx, late.ID, now.Add(5*time.Second), enrollerN(4)); !errors.Is(err, store.ErrRouterEnrolled) {
		t.Fatalf("a second key after the reset was spent: %v, want ErrRouterEnrolled", err)
	}
	// Key state errors come first: a used key stays "used", not "router enrolled".
	if _, err := s.ConsumeKey(ctx, first.ID, now.Add(6*time.Second), enrollerN(5)); !errors.Is(err, store.ErrKeyUsed) {
		t.Fatalf("a used key for an enrolled router: %v, want ErrKeyUsed", err)
	}
}

// testFirstEnrolmentOnce: of many keys without the intent racing to enrol one new router,
// spread over the stores given (replicas), exactly one enrols it; every other is refused as
// ErrRouterEnrolled and left unused.
func testFirstEnrolmentOnce(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	r := newRouter(t, a, "r-"+store.NewID()[:8])
	keys := make([]*store.Key, contenders)
	for i := range keys {
		keys[i] = newRouterKey(t, a, r.ID, time.Hour)
	}
	var wins, refused atomic.Int32
	race(contenders, func(i int) {
		if _, err := pick(i, a, b).GetKey(ctx, keys[i].ID); err != nil {
			t.Error(err)
		}
	}, func(i int) {
		_, err := pick(i, a, b).ConsumeKey(ctx, keys[i].ID, time.Now(), enrollerN(i))
		switch {
		case err == nil:
			wins.Add(1)
		case errors.Is(err, store.ErrRouterEnrolled):
			refused.Add(1)
		default:
			t.Errorf("consume: %v", err)
		}
	})
	if wins.Load() != 1 || refused.Load() != contenders-1 {
		t.Fatalf("%d enrolled and %d were refused; want 1 and %d", wins.Load(), refused.Load(), contenders-1)
	}
	list, _ := b.ListKeys(ctx, api.KindRouter)
	used := 0
	for _, k := range list {
		if k.SubjectID == r.ID && k.UsedAt != nil {
			used++
		}
	}
	if used != 1 {
		t.Fatalf("%d keys of the router are used, want 1", used)
	}
}
