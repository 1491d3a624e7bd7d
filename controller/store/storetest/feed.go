package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// testFeed: every kind of committed write produces its changes, in commit order.
func testFeed(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	sub, cancel := context.WithCancel(ctx)
	ch := s.Subscribe(sub)
	c := func(collection, op, id string) store.Change {
		return store.Change{Collection: collection, Op: op, ID: id}
	}

	r := newRouter(t, s, "r")
	expect(t, ch, c(store.Routers, store.OpCreate, r.ID))
	_, err := s.UpdateRouter(ctx, r.ID, func(r *api.Router) error { r.Cost = 3; return nil })
	must(t, err)
	expect(t, ch, c(store.Routers, store.OpUpdate, r.ID))
	online := api.RouterOnline
	old := store.Now().Add(-time.Hour)
	must(t, s.SetRouterState(ctx, r.ID, store.RouterState{Status: &online, LastSeen: &old}))
	expect(t, ch, c(store.Routers, store.OpState, r.ID))
	_, err = s.MarkStaleOffline(ctx, store.Now())
	must(t, err)
	expect(t, ch, c(store.Routers, store.OpState, r.ID))

	// A batch of status reports publishes nothing: the next change is the key's.
	must(t, s.SetRouterStates(ctx, map[string]store.RouterState{r.ID: {Status: &online, LastSeen: &old}}))

	k := newRouterKey(t, s, r.ID, time.Hour)
	expect(t, ch, c(store.Keys, store.OpCreate, k.ID))
	_, err = s.RevokeKey(ctx, k.ID)
	must(t, err)
	expect(t, ch, c(store.Keys, store.OpUpdate, k.ID))
	must(t, s.DeleteKey(ctx, k.ID))
	expect(t, ch, c(store.Keys, store.OpDelete, k.ID))
	k2 := newReenrolKey(t, s, r.ID, time.Hour) // r reported itself online above: enrolled
	_, err = s.ConsumeKey(ctx, k2.ID, time.Now(), enroller)
	must(t, err)
	expect(t, ch, c(store.Keys, store.OpCreate, k2.ID), c(store.Keys, store.OpUpdate, k2.ID), c(store.Routers, store.OpState, r.ID))

	id := &api.Identity{Name: "i"}
	tok := newToken(time.Hour)
	must(t, s.CreateIdentity(ctx, id, tok))
	expect(t, ch, c(store.Identities, store.OpCreate, id.ID), c(store.Keys, store.OpCreate, tok.ID))
	_, err = s.ConsumeKey(ctx, tok.ID, time.Now(), enroller)
	must(t, err)
	expect(t, ch, c(store.Keys, store.OpUpdate, tok.ID), c(store.Identities, store.OpUpdate, id.ID))
	_, err = s.UpdateIdentity(ctx, id.ID, func(i *api.Identity) error { i.Roles = []string{"x"}; return nil })
	must(t, err)
	expect(t, ch, c(store.Identities, store.OpUpdate, id.ID))

	sv := &api.Service{Name: "db", Address: "db.corp.example.com", Port: 5432, Protocol: api.ProtocolTCP}
	must(t, s.CreateService(ctx, sv))
	_, err = s.UpdateService(ctx, sv.ID, func(v *api.Service) error { v.Port = 5433; return nil })
	must(t, err)
	must(t, s.DeleteService(ctx, sv.ID))
	expect(t, ch, c(store.Services, store.OpCreate, sv.ID), c(store.Services, store.OpUpdate, sv.ID), c(store.Services, store.OpDelete, sv.ID))

	p := &api.ServicePolicy{Name: "p"}
	must(t, s.CreateServicePolicy(ctx, p))
	_, err = s.UpdateServicePolicy(ctx, p.ID, func(v *api.ServicePolicy) error { v.ServiceNames = []string{"db"}; return nil })
	must(t, err)
	must(t, s.DeleteServicePolicy(ctx, p.ID))
	expect(t, ch, c(store.ServicePolicies, store.OpCreate, p.ID), c(store.ServicePolicies, store.OpUpdate, p.ID), c(store.ServicePolicies, store.OpDelete, p.ID))

	must(t, s.DeleteIdentity(ctx, id.ID))
	must(t, s.DeleteRouter(ctx, r.ID))
	expect(t, ch, c(store.Identities, store.OpDelete, id.ID), c(store.Routers, store.OpDelete, r.ID))

	cancel()
	drained := time.After(deadline)
	for {
		select {
		case extra, ok := <-ch:
			if !ok {
				return
			}
			t.Fatalf("unexpected change %+v", extra)
		case <-drained:
			t.Fatal("the change feed did not close after its context ended")
		}
	}
}

// testFeedSkipsFailedWrites: a write that fails publishes nothing.
func testFeedSkipsFailedWrites(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	// Subscribe first: a backend may deliver changes of writes committed just before a
	// subscription began, so the setup's changes are read up to a marker.
	ch := s.Subscribe(ctx)
	r := newRouter(t, s, "r")
	must(t, s.CreateIdentity(ctx, &api.Identity{Name: "i"}, newToken(time.Hour)))
	used := newRouterKey(t, s, r.ID, time.Hour)
	_, err := s.ConsumeKey(ctx, used.ID, time.Now(), enroller)
	must(t, err)
	setup := newRouter(t, s, "setup-done")
	for c := next(t, ch); c.ID != setup.ID; c = next(t, ch) {
	}
	errStop := errors.New("stop")
	for _, f := range []struct {
		name string
		do   func() error
	}{
		{"duplicate create", func() error { return s.CreateRouter(ctx, &api.Router{Name: "r"}) }},
		{"duplicate identity", func() error { return s.CreateIdentity(ctx, &api.Identity{Name: "i"}, newToken(time.Hour)) }},
		{"failing update fn", func() error {
			_, err := s.UpdateRouter(ctx, r.ID, func(*api.Router) error { return errStop })
			return err
		}},
		{"update unknown", func() error {
			_, err := s.UpdateService(ctx, store.NewID(), func(*api.Service) error { return nil })
			return err
		}},
		{"delete unknown", func() error { return s.DeleteServicePolicy(ctx, store.NewID()) }},
		{"delete unknown key", func() error { return s.DeleteKey(ctx, store.NewID()) }},
		{"key for unknown router", func() error {
			return s.CreateKey(ctx, &store.Key{Kind: api.KindRouter, SubjectID: store.NewID(), ExpiresAt: time.Now()})
		}},
		{"consume used", func() error { _, err := s.ConsumeKey(ctx, used.ID, time.Now(), otherEnroller); return err }},
		{"revoke used", func() error { _, err := s.RevokeKey(ctx, used.ID); return err }},
		{"state of unknown router", func() error { return s.SetRouterState(ctx, store.NewID(), store.RouterState{}) }},
	} {
		if err := f.do(); err == nil {
			t.Fatalf("%s succeeded", f.name)
		}
	}
	// Changes nothing either: no router is online.
	if ids, err := s.MarkStaleOffline(ctx, store.Now()); err != nil || len(ids) != 0 {
		t.Fatalf("mark stale offline: %v %v", ids, err)
	}
	marker := newRouter(t, s, "marker")
	expect(t, ch, store.Change{Collection: store.Routers, Op: store.OpCreate, ID: marker.ID})
}

// testFeedSubscribers: every subscriber gets every change; ending one subscription closes
// its channel and leaves the others alone.
func testFeedSubscribers(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	subA, cancelA := context.WithCancel(ctx)
	a, b := s.Subscribe(subA), s.Subscribe(ctx)
	r := newRouter(t, s, "r")
	want := store.Change{Collection: store.Routers, Op: store.OpCreate, ID: r.ID}
	expect(t, a, want)
	expect(t, b, want)
	cancelA()
	select {
	case _, ok := <-a:
		if ok {
			t.Fatal("change delivered after the subscription ended")
		}
	case <-time.After(deadline):
		t.Fatal("channel not closed after its context ended")
	}
	must(t, s.DeleteRouter(ctx, r.ID))
	expect(t, b, store.Change{Collection: store.Routers, Op: store.OpDelete, ID: r.ID})
}

// MaxCrossReplicaLatency is the contract for replicated backends: a change committed through
// one replica reaches the subscribers of another within this time.
const MaxCrossReplicaLatency = time.Second

// testCrossReplicaFeed: writes through a reach b's subscribers (and a's own) quickly,
// deletes included. It logs the latency distribution.
func testCrossReplicaFeed(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	onA, onB := a.Subscribe(ctx), b.Subscribe(ctx)
	const n = 100
	lat := make([]time.Duration, 0, n)
	for i := range n {
		sv := &api.Service{Name: fmt.Sprintf("svc-%d", i), Address: "10.1.2.3", Port: 80, Protocol: api.ProtocolTCP}
		start := time.Now()
		must(t, a.CreateService(ctx, sv))
		c := next(t, onB)
		lat = append(lat, time.Since(start))
		if c != (store.Change{Collection: store.Services, Op: store.OpCreate, ID: sv.ID}) {
			t.Fatalf("replica b saw %+v, want the create of %s", c, sv.ID)
		}
		// The change reached b after the commit: b reads the object.
		if _, err := b.GetService(ctx, sv.ID); err != nil {
			t.Fatalf("b was told about %s but cannot read it: %v", sv.ID, err)
		}
		expect(t, onA, c)
	}
	slices.Sort(lat)
	t.Logf("write on replica a -> subscriber on replica b (%d writes, incl. the commit): p50 %v, p90 %v, p99 %v, max %v",
		n, lat[n/2], lat[n*9/10], lat[n*99/100], lat[n-1])
	if lat[n-1] > MaxCrossReplicaLatency {
		t.Fatalf("slowest change took %v to cross replicas, want under %v", lat[n-1], MaxCrossReplicaLatency)
	}
	r := newRouter(t, a, "r")
	must(t, a.DeleteRouter(ctx, r.ID))
	expect(t, onB, store.Change{Collection: store.Routers, Op: store.OpCreate, ID: r.ID}, store.Change{Collection: store.Routers, Op: store.OpDelete, ID: r.ID})
}

// testCrossReplicaOrder: while both replicas write, both replicas' subscribers see the same
// changes in the same (commit) order.
func testCrossReplicaOrder(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	onA, onB := a.Subscribe(ctx), b.Subscribe(ctx)
	const each = 25
	var wg sync.WaitGroup
	for i, s := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if err := s.CreateRouter(ctx, &api.Router{Name: fmt.Sprintf("r-%d-%d", i, j)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var seenA, seenB []store.Change
	for range 2 * each {
		seenA = append(seenA, next(t, onA))
		seenB = append(seenB, next(t, onB))
	}
	if !slices.Equal(seenA, seenB) {
		t.Fatalf("replicas saw different orders:\na: %v\nb: %v", seenA, seenB)
	}
	list, _ := a.ListRouters(ctx)
	if len(list) != 2*each {
		t.Fatalf("%d routers, want %d", len(list), 2*each)
	}
}

// FeedNeverBlocksWriters checks store.Feed itself: a subscriber that never reads does not
// block Publish, and learns it fell behind (10,000 object changes) through a Change with
// Collection All.
func FeedNeverBlocksWriters(t *testing.T) {
	var f store.Feed
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.Subscribe(ctx) // not read until the end
	done := make(chan struct{})
	go func() {
		for i := range 10000 {
			f.Publish(store.Change{Collection: store.Services, Op: store.OpUpdate, ID: fmt.Sprint(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	for timeout := time.After(5 * time.Second); ; {
		select {
		case c := <-ch:
			if c.Collection == store.All {
				return
			}
		case <-timeout:
			t.Fatal("no resync change after the subscriber fell behind")
		}
	}
}

// FeedFoldsStatusReports checks store.Feed itself: 100,000 status reports of 5,000 routers
// queued for a subscriber that does not read take one entry per router (per batch) and never overflow
// into a resync, and an object change published after them is delivered after them.
func FeedFoldsStatusReports(t *testing.T) {
	var f store.Feed
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.Subscribe(ctx) // not read until the end
	const routers = 5000
	for i := range 20 * routers {
		f.Publish(store.Change{Collection: store.Routers, Op: store.OpState, ID: fmt.Sprint(i % routers)})
	}
	f.Publish(store.Change{Collection: store.Services, Op: store.OpCreate, ID: "s1"})
	states := 0
	for timeout := time.After(10 * time.Second); ; {
		select {
		case c := <-ch:
			switch {
			case c.Collection == store.All:
				t.Fatalf("a resync after %d status reports: status reports overflowed the queue", states)
			case c.Op == store.OpState:
				states++
			case c.Collection == store.Services:
				// One per router in the batch the feed was delivering when the subscriber
				// stopped reading, and one per router queued behind it.
				if states > 2*routers {
					t.Fatalf("%d status reports delivered, want at most two per router (%d)", states, 2*routers)
				}
				t.Logf("%d status reports of %d routers delivered as %d", 20*routers, routers, states)
				return
			}
		case <-timeout:
			t.Fatalf("the service change never came (%d status reports delivered)", states)
		}
	}
}
