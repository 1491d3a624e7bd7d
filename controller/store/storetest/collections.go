package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// collectionTests are the tests every named collection (routers, services, identities,
// service policies) passes.
type collectionTests interface {
	name() string
	crud(t *testing.T, s store.Store)
	conflicts(t *testing.T, s store.Store)
	concurrentUpdates(t *testing.T, a, b store.Store)
	createNamed(t *testing.T, s store.Store, name string)
	paging(t *testing.T, s store.Store)
}

// docOps adapts one collection of store.Store to the generic tests.
type docOps[T any] struct {
	collection string
	make       func(name string) *T
	meta       func(*T) (id, name *string, created, updated *time.Time)
	// counter is a number field that concurrentUpdates increments.
	counter func(*T) *int
	create  func(store.Store, context.Context, *T) error
	get     func(store.Store, context.Context, string) (*T, error)
	list    func(store.Store, context.Context) ([]T, error)
	update  func(store.Store, context.Context, string, func(*T) error) (*T, error)
	delete  func(store.Store, context.Context, string) error
	page    func(store.Store, context.Context, store.Page) ([]T, error)
	// roles is the role list that Page.Roles filters on.
	roles func(*T) *[]string
}

var collections = []collectionTests{
	docOps[api.Router]{
		collection: store.Routers,
		make:       func(n string) *api.Router { return &api.Router{Name: n, Roles: []string{"edge"}} },
		meta: func(v *api.Router) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		},
		counter: func(v *api.Router) *int { return &v.Cost },
		create:  store.Store.CreateRouter, get: store.Store.GetRouter, list: store.Store.ListRouters,
		update: store.Store.UpdateRouter, delete: store.Store.DeleteRouter,
		page: store.Store.PageRouters, roles: func(v *api.Router) *[]string { return &v.Roles },
	},
	docOps[api.Service]{
		collection: store.Services,
		make: func(n string) *api.Service {
			return &api.Service{Name: n, Address: n + ".corp.example.com", Port: 5432, Protocol: api.ProtocolTCP, RouterRoles: []string{"edge"}}
		},
		meta: func(v *api.Service) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		},
		counter: func(v *api.Service) *int { return &v.Port },
		create:  store.Store.CreateService, get: store.Store.GetService, list: store.Store.ListServices,
		update: store.Store.UpdateService, delete: store.Store.DeleteService,
		page: store.Store.PageServices, roles: func(v *api.Service) *[]string { return &v.RouterRoles },
	},
	docOps[api.Identity]{
		collection: store.Identities,
		make:       func(n string) *api.Identity { return &api.Identity{Name: n, Roles: []string{"runtime"}} },
		meta: func(v *api.Identity) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		},
		// Identities and policies have no number field: bump grows the name instead.
		create: func(s store.Store, ctx context.Context, v *api.Identity) error {
			return s.CreateIdentity(ctx, v, newToken(time.Hour))
		},
		get: store.Store.GetIdentity, list: store.Store.ListIdentities,
		update: store.Store.UpdateIdentity, delete: store.Store.DeleteIdentity,
		page: store.Store.PageIdentities, roles: func(v *api.Identity) *[]string { return &v.Roles },
	},
	docOps[api.ServicePolicy]{
		collection: store.ServicePolicies,
		make: func(n string) *api.ServicePolicy {
			return &api.ServicePolicy{Name: n, IdentityRoles: []string{"runtime"}, ServiceNames: []string{"db"}}
		},
		meta: func(v *api.ServicePolicy) (*string, *string, *time.Time, *time.Time) {
			return &v.ID, &v.Name, &v.CreatedAt, &v.UpdatedAt
		},
		create: store.Store.CreateServicePolicy, get: store.Store.GetServicePolicy, list: store.Store.ListServicePolicies,
		update: store.Store.UpdateServicePolicy, delete: store.Store.DeleteServicePolicy,
		page: store.Store.PageServicePolicies, roles: func(v *api.ServicePolicy) *[]string { return &v.IdentityRoles },
	},
}

func (o docOps[T]) name() string { return o.collection }

func (o docOps[T]) id(v *T) string     { id, _, _, _ := o.meta(v); return *id }
func (o docOps[T]) nameOf(v *T) string { _, n, _, _ := o.meta(v); return *n }

func (o docOps[T]) mustCreate(t *testing.T, s store.Store, name string) *T {
	t.Helper()
	v := o.make(name)
	must(t, o.create(s, ctxFor(t), v))
	return v
}

func (o docOps[T]) crud(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	before := store.Now()
	a := o.mustCreate(t, s, "alpha")
	id, _, created, updated := o.meta(a)
	if *id == "" || created.IsZero() || !created.Equal(*updated) || created.Before(before) {
		t.Fatalf("create did not assign id and timestamps: id=%q created=%v updated=%v", *id, *created, *updated)
	}
	if created.Location() != time.UTC || !created.Equal(created.Truncate(time.Microsecond)) {
		t.Fatalf("created_at %v is not UTC with microsecond precision", *created)
	}
	got, err := o.get(s, ctx, *id)
	must(t, err)
	_, gname, gcreated, gupdated := o.meta(got)
	if o.id(got) != *id || *gname != "alpha" || !gcreated.Equal(*created) || !gupdated.Equal(*updated) {
		t.Fatalf("get returned %+v, created %+v", got, a)
	}
	b := o.mustCreate(t, s, "bravo")
	c := o.mustCreate(t, s, "charlie")

	list, err := o.list(s, ctx)
	must(t, err)
	if names := o.names(list); fmt.Sprint(names) != "[alpha bravo charlie]" {
		t.Fatalf("list = %v, want creation order [alpha bravo charlie]", names)
	}

	time.Sleep(2 * time.Millisecond) // updated_at must visibly move
	up, err := o.update(s, ctx, *id, func(v *T) error {
		vid, name, _, _ := o.meta(v)
		*name = "alpha-2"
		*vid = "someone-else" // ignored: the id is not the caller's to change
		return nil
	})
	must(t, err)
	_, uname, ucreated, uupdated := o.meta(up)
	if o.id(up) != *id || *uname != "alpha-2" || !ucreated.Equal(*created) || !uupdated.After(*updated) {
		t.Fatalf("update returned id=%q name=%q created=%v updated=%v; want id %q, name alpha-2, created kept, updated after %v",
			o.id(up), *uname, *ucreated, *uupdated, *id, *updated)
	}
	if got, err := o.get(s, ctx, *id); err != nil || o.nameOf(got) != "alpha-2" {
		t.Fatalf("get after update: %v %v", got, err)
	}

	// An error from fn aborts the update and comes back as is.
	errStop := errors.New("stop")
	if _, err := o.update(s, ctx, *id, func(v *T) error {
		_, name, _, _ := o.meta(v)
		*name = "never"
		return errStop
	}); err != errStop {
		t.Fatalf("update whose fn fails returned %v, want that error as is", err)
	}
	if got, _ := o.get(s, ctx, *id); o.nameOf(got) != "alpha-2" {
		t.Fatalf("failed update changed the name to %q", o.nameOf(got))
	}

	unknown := store.NewID()
	for what, err := range map[string]error{
		"get":    func() error { _, err := o.get(s, ctx, unknown); return err }(),
		"update": func() error { _, err := o.update(s, ctx, unknown, func(*T) error { return nil }); return err }(),
		"delete": o.delete(s, ctx, unknown),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of an unknown id: %v, want ErrNotFound", what, err)
		}
	}

	must(t, o.delete(s, ctx, o.id(b)))
	if _, err := o.get(s, ctx, o.id(b)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if err := o.delete(s, ctx, o.id(b)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	list, _ = o.list(s, ctx)
	if names := o.names(list); fmt.Sprint(names) != "[alpha-2 charlie]" || o.id(&list[1]) != o.id(c) {
		t.Fatalf("list after delete = %v", names)
	}
	// A deleted name is free again.
	o.mustCreate(t, s, "bravo")
}

func (o docOps[T]) names(list []T) []string {
	out := []string{}
	for i := range list {
		out = append(out, o.nameOf(&list[i]))
	}
	return out
}

func (o docOps[T]) conflicts(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := o.mustCreate(t, s, "taken")
	b := o.mustCreate(t, s, "other")
	var ce *store.ConflictError
	if err := o.create(s, ctx, o.make("taken")); !errors.As(err, &ce) || ce.Field != "name" || ce.Value != "taken" {
		t.Fatalf("create with a taken name: %v, want *ConflictError on name", err)
	}
	if _, err := o.update(s, ctx, o.id(b), func(v *T) error {
		_, name, _, _ := o.meta(v)
		*name = "taken"
		return nil
	}); !errors.As(err, &ce) || ce.Field != "name" {
		t.Fatalf("rename onto a taken name: %v, want *ConflictError", err)
	}
	if got, _ := o.get(s, ctx, o.id(b)); o.nameOf(got) != "other" {
		t.Fatalf("a refused rename changed the name to %q", o.nameOf(got))
	}
	// Renaming to its own name is no conflict.
	if _, err := o.update(s, ctx, o.id(a), func(*T) error { return nil }); err != nil {
		t.Fatalf("update keeping the name: %v", err)
	}
	if list, _ := o.list(s, ctx); len(list) != 2 {
		t.Fatalf("%d objects after refused writes, want 2", len(list))
	}
	// Names are unique per collection only.
	for _, other := range collections {
		if other.name() == o.collection {
			continue
		}
		other.createNamed(t, s, "taken")
	}
}

func (o docOps[T]) createNamed(t *testing.T, s store.Store, name string) { o.mustCreate(t, s, name) }

// concurrentUpdates runs read-modify-write updates of one object through two stores at once;
// none may be lost.
func (o docOps[T]) concurrentUpdates(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	v := o.mustCreate(t, a, "contended")
	id := o.id(v)
	const n = 20
	race(n, func(i int) {
		if _, err := o.get(pick(i, a, b), ctx, id); err != nil {
			t.Error(err)
		}
	}, func(i int) {
		if _, err := o.update(pick(i, a, b), ctx, id, func(v *T) error { o.bump(v); return nil }); err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	})
	got, err := o.get(b, ctx, id)
	must(t, err)
	if c := o.count(got); c != o.count(v)+n {
		t.Fatalf("after %d concurrent increments the count is %d, want %d: updates were lost", n, c, o.count(v)+n)
	}
}

// bump and count increment and read the counter, or — for types without a number field — the
// length of the name (appending one character).
func (o docOps[T]) bump(v *T) {
	if o.counter != nil {
		*o.counter(v)++
		return
	}
	_, name, _, _ := o.meta(v)
	*name += "x"
}

func (o docOps[T]) count(v *T) int {
	if o.counter != nil {
		return *o.counter(v)
	}
	return len(o.nameOf(v))
}
