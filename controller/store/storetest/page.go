package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// paging walks a collection page by page (limit 7 over 40 objects) while another goroutine
// creates 30 more: every object that existed before the walk is read exactly once, nothing
// is read twice, ids come in ascending order, and the name and role filters select in the
// store.
func (o docOps[T]) paging(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	before := map[string]bool{}
	blue := map[string]bool{}
	for i := range 40 {
		v := o.make(fmt.Sprintf("obj-%02d", i))
		if i%3 == 0 {
			*o.roles(v) = []string{"blue", "x"}
		}
		must(t, o.create(s, ctx, v))
		before[o.id(v)] = true
		if i%3 == 0 {
			blue[o.id(v)] = true
		}
	}

	var wg sync.WaitGroup
	wg.Add(1)
	errs := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			if err := o.create(s, ctx, o.make(fmt.Sprintf("new-%02d", i))); err != nil {
				errs <- err
				return
			}
		}
	}()
	seen := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		items, err := o.page(s, ctx, store.Page{After: after, Limit: 7})
		must(t, err)
		if len(items) > 7 {
			t.Fatalf("page of %d items, limit 7", len(items))
		}
		for i := range items {
			id := o.id(&items[i])
			if id <= after {
				t.Fatalf("id %s after cursor %s is out of order", id, after)
			}
			if seen[id] {
				t.Fatalf("id %s read twice", id)
			}
			seen[id] = true
			after = id
		}
		if len(items) < 7 {
			break
		}
		time.Sleep(time.Millisecond) // let the creator interleave with the walk
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for id := range before {
		if !seen[id] {
			t.Errorf("object %s existed throughout but was not listed", id)
		}
	}

	byName, err := o.page(s, ctx, store.Page{Limit: 100, Name: "obj-07"})
	must(t, err)
	if len(byName) != 1 || o.nameOf(&byName[0]) != "obj-07" {
		t.Errorf("name filter obj-07: got %v", o.names(byName))
	}
	got := map[string]bool{}
	after = ""
	for {
		items, err := o.page(s, ctx, store.Page{After: after, Limit: 5, Roles: []string{"nope", "blue"}})
		must(t, err)
		for i := range items {
			if !slices.Contains(*o.roles(&items[i]), "blue") {
				t.Errorf("role filter blue returned %s with roles %v", o.nameOf(&items[i]), *o.roles(&items[i]))
			}
			got[o.id(&items[i])] = true
			after = o.id(&items[i])
		}
		if len(items) < 5 {
			break
		}
	}
	if len(got) != len(blue) {
		t.Errorf("role filter blue: %d objects, want %d", len(got), len(blue))
	}
	none, err := o.page(s, ctx, store.Page{Limit: 10, Name: "obj-07", Roles: []string{"blue"}})
	must(t, err)
	if len(none) != 0 { // obj-07 does not hold blue (7 % 3 != 0)
		t.Errorf("name and role filters together: got %v, want none", o.names(none))
	}
}

func testPageKeys(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a, b := newRouter(t, s, "a"), newRouter(t, s, "b")
	var ofA []string
	for i := range 9 {
		r := a
		if i%3 == 2 {
			r = b
		}
		k := newRouterKey(t, s, r.ID, time.Hour)
		if r == a {
			ofA = append(ofA, k.ID)
		}
	}
	must(t, s.CreateIdentity(ctx, &api.Identity{Name: "i"}, newToken(time.Hour)))
	walk := func(p store.Page) []string {
		var ids []string
		for {
			keys, err := s.PageKeys(ctx, api.KindRouter, p)
			must(t, err)
			for _, k := range keys {
				if k.Kind != api.KindRouter {
					t.Errorf("key %s of kind %s in a router key page", k.ID, k.Kind)
				}
				ids = append(ids, k.ID)
				p.After = k.ID
			}
			if len(keys) < p.Limit {
				return ids
			}
		}
	}
	if all := walk(store.Page{Limit: 4}); len(all) != 9 || !slices.IsSorted(all) {
		t.Errorf("router keys: %v, want 9 in id order", all)
	}
	slices.Sort(ofA)
	if got := walk(store.Page{Limit: 2, Subject: a.ID}); !slices.Equal(got, ofA) {
		t.Errorf("keys of router a: %v, want %v", got, ofA)
	}
}

func testCount(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	c, err := s.Count(ctx)
	must(t, err)
	if c.Routers != 0 || c.Services != 0 || c.Identities != 0 || c.ServicePolicies != 0 || len(c.RoutersByStatus) != 0 {
		t.Errorf("empty store counts %+v", c)
	}
	r1, _ := newRouter(t, s, "r1"), newRouter(t, s, "r2")
	newRouter(t, s, "r3")
	online := api.RouterOnline
	must(t, s.SetRouterStates(ctx, map[string]store.RouterState{r1.ID: {Status: &online}}))
	must(t, s.CreateService(ctx, &api.Service{Name: "db", Address: "db.example.com", Port: 5432, Protocol: api.ProtocolTCP}))
	must(t, s.CreateIdentity(ctx, &api.Identity{Name: "i1"}, newToken(time.Hour)))
	must(t, s.CreateIdentity(ctx, &api.Identity{Name: "i2"}, newToken(time.Hour)))
	c, err = s.Count(context.Background())
	must(t, err)
	want := store.Counts{Routers: 3, Services: 1, Identities: 2, RoutersByStatus: map[string]int{api.RouterOnline: 1, api.RouterUnenrolled: 2}}
	if c.Routers != want.Routers || c.Services != want.Services || c.Identities != want.Identities || c.ServicePolicies != 0 ||
		fmt.Sprint(c.RoutersByStatus) != fmt.Sprint(want.RoutersByStatus) {
		t.Errorf("counts %+v, want %+v", c, want)
	}
}
