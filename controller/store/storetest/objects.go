package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// testNormalisation: what a create stores regardless of what the caller filled in — server
// owned fields are reset, lists are [] rather than null, computed views are never stored.
func testNormalisation(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	r := &api.Router{Name: "r", Status: api.RouterOnline, Version: "forged"}
	must(t, s.CreateRouter(ctx, r))
	gr, err := s.GetRouter(ctx, r.ID)
	must(t, err)
	if gr.Status != api.RouterUnenrolled || gr.Roles == nil || gr.Services == nil {
		t.Errorf("new router: status %q (want unenrolled), roles %#v, services %#v (want empty, not nil)", gr.Status, gr.Roles, gr.Services)
	}

	sv := &api.Service{Name: "db", Address: "db.corp.example.com", Port: 5432, Protocol: api.ProtocolTCP,
		RouterSummary: api.RouterSummary{Total: 3}}
	must(t, s.CreateService(ctx, sv))
	gs, err := s.GetService(ctx, sv.ID)
	must(t, err)
	if gs.RouterSummary.Total != 0 || gs.PortRanges == nil || gs.RouterRoles == nil {
		t.Errorf("new service: router summary %v (computed, never stored), port_ranges %#v, router_roles %#v (want empty, not nil)", gs.RouterSummary, gs.PortRanges, gs.RouterRoles)
	}
	_, err = s.UpdateService(ctx, sv.ID, func(v *api.Service) error {
		v.RouterSummary = api.RouterSummary{Total: 7}
		return nil
	})
	must(t, err)
	if gs, _ := s.GetService(ctx, sv.ID); gs.RouterSummary.Total != 0 {
		t.Errorf("update stored the computed router summary: %v", gs.RouterSummary)
	}

	tok := newToken(time.Hour)
	tok.ExpiresAt = tok.ExpiresAt.Add(123 * time.Nanosecond) // below the store's precision
	id := &api.Identity{Name: "i", Enrolled: true, EnrollmentToken: "ztna-key-v1.secret"}
	must(t, s.CreateIdentity(ctx, id, tok))
	gi, err := s.GetIdentity(ctx, id.ID)
	must(t, err)
	if gi.Enrolled || gi.EnrollmentToken != "" || gi.Roles == nil {
		t.Errorf("new identity: enrolled %v (want false), enrollment_token %q (never stored), roles %#v", gi.Enrolled, gi.EnrollmentToken, gi.Roles)
	}
	if !gi.TokenExpiresAt.Equal(tok.ExpiresAt) || !tok.ExpiresAt.Equal(tok.ExpiresAt.Truncate(time.Microsecond)) {
		t.Errorf("token_expires_at %v, token expires %v: want equal, at microsecond precision", gi.TokenExpiresAt, tok.ExpiresAt)
	}

	p := &api.ServicePolicy{Name: "p"}
	must(t, s.CreateServicePolicy(ctx, p))
	gp, err := s.GetServicePolicy(ctx, p.ID)
	must(t, err)
	if gp.IdentityRoles == nil || gp.ServiceNames == nil {
		t.Errorf("new policy lists: %#v %#v, want empty, not nil", gp.IdentityRoles, gp.ServiceNames)
	}
}

// testRouterState: SetRouterState changes only the fields it is given and leaves updated_at
// (an operator edit time) alone.
func testRouterState(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	r := &api.Router{Name: "r"}
	must(t, s.CreateRouter(ctx, r))
	online, version, domain := api.RouterOnline, "1.2.3", "aws/eu-west-1/eu-west-1a"
	seen := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.FixedZone("CET", 3600))
	health := []api.ServiceHealth{{Name: "db", Resolvable: true, Reachable: false, Error: "refused", CheckedAt: seen.UTC()}}
	att := json.RawMessage(`{"image_id":"ami-1","builder":"packer"}`)
	must(t, s.SetRouterState(ctx, r.ID, store.RouterState{Status: &online, LastSeen: &seen, Version: &version,
		FailureDomain: &domain, Health: &health, Attestation: att}))
	got, err := s.GetRouter(ctx, r.ID)
	must(t, err)
	if got.Status != online || got.Version != version || got.FailureDomain != domain ||
		got.LastSeen == nil || !got.LastSeen.Equal(seen) || got.LastSeen.Location() != time.UTC {
		t.Fatalf("state not recorded: %+v (last_seen %v, want %v in UTC)", got, got.LastSeen, seen)
	}
	if len(got.Services) != 1 || got.Services[0].Name != "db" || got.Services[0].Error != "refused" || !got.Services[0].CheckedAt.Equal(seen) {
		t.Fatalf("health not recorded: %+v", got.Services)
	}
	if !sameJSON(t, got.Attestation, att) {
		t.Fatalf("attestation %s, want %s", got.Attestation, att)
	}
	if !got.UpdatedAt.Equal(r.UpdatedAt) {
		t.Fatalf("a router report moved updated_at from %v to %v", r.UpdatedAt, got.UpdatedAt)
	}

	// Only the version: everything else stays.
	v2 := "1.2.4"
	must(t, s.SetRouterState(ctx, r.ID, store.RouterState{Version: &v2}))
	got2, _ := s.GetRouter(ctx, r.ID)
	if got2.Version != v2 || got2.Status != online || got2.FailureDomain != domain || len(got2.Services) != 1 ||
		!sameJSON(t, got2.Attestation, att) || !got2.LastSeen.Equal(seen) {
		t.Fatalf("partial state update lost fields: %+v", got2)
	}
	if err := s.SetRouterState(ctx, store.NewID(), store.RouterState{Version: &v2}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state of an unknown router: %v, want ErrNotFound", err)
	}
}

func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("stored JSON %q: %v", a, err)
	}
	must(t, json.Unmarshal(b, &vb))
	return reflect.DeepEqual(va, vb)
}

// testMarkStaleOffline: only routers recorded online whose last report is older than the
// cut-off (or absent) go offline.
func testMarkStaleOffline(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	cutoff := store.Now()
	old, fresh := cutoff.Add(-time.Minute), cutoff.Add(time.Minute)
	// Within a millisecond of the cut-off: a store that pre-selects candidates with less
	// precision must still decide these exactly.
	justBefore, justAfter := cutoff.Add(-time.Microsecond), cutoff.Add(time.Millisecond)
	online, offline := api.RouterOnline, api.RouterOffline
	mk := func(name string, st store.RouterState) string {
		r := &api.Router{Name: name}
		must(t, s.CreateRouter(ctx, r))
		if st.Status != nil {
			must(t, s.SetRouterState(ctx, r.ID, st))
		}
		return r.ID
	}
	stale := mk("stale", store.RouterState{Status: &online, LastSeen: &old})
	never := mk("never-seen", store.RouterState{Status: &online})
	alive := mk("alive", store.RouterState{Status: &online, LastSeen: &fresh})
	edgeStale := mk("stale-by-a-microsecond", store.RouterState{Status: &online, LastSeen: &justBefore})
	edgeAlive := mk("alive-by-a-millisecond", store.RouterState{Status: &online, LastSeen: &justAfter})
	down := mk("down", store.RouterState{Status: &offline, LastSeen: &old})
	unenrolled := mk("unenrolled", store.RouterState{})

	ids, err := s.MarkStaleOffline(ctx, cutoff)
	must(t, err)
	slices.Sort(ids)
	want := []string{stale, never, edgeStale}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("marked %v, want %v (stale, never-seen, stale by a microsecond)", ids, want)
	}
	for id, st := range map[string]string{stale: offline, never: offline, edgeStale: offline, edgeAlive: online, alive: online, down: offline, unenrolled: api.RouterUnenrolled} {
		if r, _ := s.GetRouter(ctx, id); r.Status != st {
			t.Errorf("router %s is %q, want %q", r.Name, r.Status, st)
		}
	}
	if ids, err := s.MarkStaleOffline(ctx, cutoff); err != nil || len(ids) != 0 {
		t.Fatalf("second pass marked %v (%v), want none", ids, err)
	}
}

// testReadOthersWrites: what one store writes, another open on the same database reads.
func testReadOthersWrites(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	r := &api.Router{Name: "r", Roles: []string{"x"}}
	must(t, a.CreateRouter(ctx, r))
	got, err := b.GetRouter(ctx, r.ID)
	must(t, err)
	if got.Name != "r" || got.Roles[0] != "x" {
		t.Fatalf("other store read %+v", got)
	}
	_, err = b.UpdateRouter(ctx, r.ID, func(r *api.Router) error { r.Roles = []string{"y"}; return nil })
	must(t, err)
	if got, _ := a.GetRouter(ctx, r.ID); got.Roles[0] != "y" {
		t.Fatalf("update through the other store not visible: %+v", got)
	}
	var ce *store.ConflictError
	if err := b.CreateRouter(ctx, &api.Router{Name: "r"}); !errors.As(err, &ce) {
		t.Fatalf("name taken through the other store: %v, want *ConflictError", err)
	}
	must(t, a.DeleteRouter(ctx, r.ID))
	if _, err := b.GetRouter(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted through the other store: %v, want ErrNotFound", err)
	}
}

// testPersistence: everything survives closing the store and opening the database again.
func testPersistence(t *testing.T, open func(*testing.T) store.Store) {
	ctx := ctxFor(t)
	s := open(t)
	r := &api.Router{Name: "r", Roles: []string{"edge"}, Cost: 7}
	must(t, s.CreateRouter(ctx, r))
	k := newRouterKey(t, s, r.ID, time.Hour)
	spare := newReenrolKey(t, s, r.ID, time.Hour) // r is enrolled by k below: this key re-enrols it
	_, err := s.ConsumeKey(ctx, k.ID, time.Now(), enroller)
	must(t, err)
	sv := &api.Service{Name: "db", Address: "10.0.0.5", Port: 5432, Protocol: api.ProtocolTCP, RouterRoles: []string{"edge"}}
	must(t, s.CreateService(ctx, sv))
	tok := newToken(time.Hour)
	id := &api.Identity{Name: "i", Roles: []string{"runtime"}}
	must(t, s.CreateIdentity(ctx, id, tok))
	p := &api.ServicePolicy{Name: "p", IdentityRoles: []string{"runtime"}, ServiceNames: []string{"db"}}
	must(t, s.CreateServicePolicy(ctx, p))
	must(t, s.Close())

	s2 := open(t)
	gr, err := s2.GetRouter(ctx, r.ID)
	must(t, err)
	if gr.Name != "r" || gr.Cost != 7 || gr.Status != api.RouterOffline || !gr.CreatedAt.Equal(r.CreatedAt) {
		t.Fatalf("router after restart: %+v", gr)
	}
	if gk, err := s2.GetKey(ctx, k.ID); err != nil || gk.State(time.Now()) != api.KeyUsed {
		t.Fatalf("used key after restart: %+v %v", gk, err)
	}
	// A key issued before the restart still works, once.
	if _, err := s2.ConsumeKey(ctx, spare.ID, time.Now(), enroller); err != nil {
		t.Fatalf("key issued before the restart: %v", err)
	}
	if _, err := s2.ConsumeKey(ctx, spare.ID, time.Now(), otherEnroller); !errors.Is(err, store.ErrKeyUsed) {
		t.Fatalf("second use after restart: %v, want ErrKeyUsed", err)
	}
	if gs, err := s2.GetService(ctx, sv.ID); err != nil || gs.Address != "10.0.0.5" {
		t.Fatalf("service after restart: %+v %v", gs, err)
	}
	if gi, err := s2.GetIdentity(ctx, id.ID); err != nil || gi.Roles[0] != "runtime" {
		t.Fatalf("identity after restart: %+v %v", gi, err)
	}
	if gt, err := s2.GetKey(ctx, tok.ID); err != nil || gt.SubjectID != id.ID {
		t.Fatalf("identity token after restart: %+v %v", gt, err)
	}
	if gp, err := s2.GetServicePolicy(ctx, p.ID); err != nil || gp.ServiceNames[0] != "db" {
		t.Fatalf("policy after restart: %+v %v", gp, err)
	}
}

// testRouterStates: a batch records each router's fields as SetRouterState would, leaves
// routers outside it alone, and skips a router that no longer exists instead of failing.
func testRouterStates(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a, b, other := &api.Router{Name: "a"}, &api.Router{Name: "b"}, &api.Router{Name: "other"}
	for _, r := range []*api.Router{a, b, other} {
		must(t, s.CreateRouter(ctx, r))
	}
	online, offline, version := api.RouterOnline, api.RouterOffline, "2.0.0"
	seen := store.Now()
	health := []api.ServiceHealth{{Name: "db", Resolvable: true, Reachable: true, CheckedAt: seen}}
	must(t, s.SetRouterStates(ctx, map[string]store.RouterState{
		a.ID:          {Status: &online, LastSeen: &seen, Version: &version, Health: &health},
		b.ID:          {Status: &offline, LastSeen: &seen},
		store.NewID(): {Status: &online, LastSeen: &seen}, // deleted meanwhile
	}))
	ga, err := s.GetRouter(ctx, a.ID)
	must(t, err)
	if ga.Status != online || ga.Version != version || ga.LastSeen == nil || !ga.LastSeen.Equal(seen) || len(ga.Services) != 1 {
		t.Fatalf("router a after the batch: %+v", ga)
	}
	gb, err := s.GetRouter(ctx, b.ID)
	must(t, err)
	if gb.Status != offline || gb.LastSeen == nil || !gb.LastSeen.Equal(seen) {
		t.Fatalf("router b after the batch: %+v", gb)
	}
	if !ga.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("a router report moved updated_at from %v to %v", a.UpdatedAt, ga.UpdatedAt)
	}
	go2, err := s.GetRouter(ctx, other.ID)
	must(t, err)
	if go2.Status != api.RouterUnenrolled || go2.LastSeen != nil {
		t.Fatalf("router outside the batch changed: %+v", go2)
	}

	// A refresh of status and last_seen alone (a store may set them in place) keeps the rest.
	later := seen.Add(1500 * time.Microsecond)
	must(t, s.SetRouterStates(ctx, map[string]store.RouterState{a.ID: {Status: &online, LastSeen: &later}}))
	ga2, err := s.GetRouter(ctx, a.ID)
	must(t, err)
	want := *ga
	want.LastSeen = &later
	if !reflect.DeepEqual(*ga2, want) {
		t.Fatalf("router a after a status refresh:\n got %+v\nwant %+v", *ga2, want)
	}
	must(t, s.SetRouterStates(ctx, nil))
}

// testLatestEnrolment: the time of the latest used key of that subject, zero before any.
func testLatestEnrolment(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	r, other := &api.Router{Name: "r"}, &api.Router{Name: "other"}
	must(t, s.CreateRouter(ctx, r))
	must(t, s.CreateRouter(ctx, other))
	if at, err := s.LatestEnrolment(ctx, api.KindRouter, r.ID); err != nil || !at.IsZero() {
		t.Fatalf("never enrolled: %v, %v; want zero", at, err)
	}
	first := store.Now().Add(-time.Hour)
	second := first.Add(30 * time.Minute)
	EnrolRouter(t, s, r.ID, first)
	EnrolRouter(t, s, r.ID, second)
	EnrolRouter(t, s, other.ID, second.Add(time.Minute))
	newRouterKey(t, s, r.ID, time.Hour) // unused: not an enrolment
	at, err := s.LatestEnrolment(ctx, api.KindRouter, r.ID)
	must(t, err)
	if !at.Equal(second) {
		t.Fatalf("latest enrolment %v, want %v", at, second)
	}
	if want := latestOf(t, s, r.ID); !at.Equal(want) {
		t.Fatalf("LatestEnrolment %v disagrees with LatestEnrolments %v", at, want)
	}
}

// latestOf is store.LatestEnrolments' answer for one router.
func latestOf(t *testing.T, s store.Store, id string) time.Time {
	t.Helper()
	all, err := store.LatestEnrolments(ctxFor(t), s, api.KindRouter)
	must(t, err)
	return all[id]
}
