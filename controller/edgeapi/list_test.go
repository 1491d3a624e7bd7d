package edgeapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

// TestListPages lists 230 routers a page at a time while 40 more are created: the client
// follows next_cursor and sees every router that existed throughout exactly once; a list
// without limit is the first page of the default size; filters and the service's routers
// page through the store; bad limits, cursors and unknown filters are 400s naming them.
func TestListPages(t *testing.T) {
	e := start(t)
	ctx, c := context.Background(), e.client
	before := map[string]bool{}
	blue := 0
	for i := range 230 {
		in := api.RouterCreate{Name: fmt.Sprintf("edge-%03d", i)}
		if i%4 == 0 {
			in.Roles = []string{"blue"}
			blue++
		}
		r, err := c.CreateRouter(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		before[r.ID] = true
	}

	first, err := c.ListRouters(ctx, apiclient.FirstPageOnly())
	if err != nil || len(first) != api.DefaultListLimit {
		t.Fatalf("list without limit: %d routers, %v; want the first page of %d", len(first), err, api.DefaultListLimit)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 40 {
			if _, err := c.CreateRouter(ctx, api.RouterCreate{Name: fmt.Sprintf("new-%03d", i), Roles: []string{"blue"}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	all, err := c.ListRouters(ctx, apiclient.PageSize(9))
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.ID] {
			t.Errorf("router %s listed twice", r.Name)
		}
		seen[r.ID] = true
	}
	for id := range before {
		if !seen[id] {
			t.Errorf("router %s existed throughout but was not listed", id)
		}
	}

	if got, err := c.ListRouters(ctx, apiclient.Filter("name", "edge-007")); err != nil || len(got) != 1 || got[0].Name != "edge-007" {
		t.Errorf("name filter: %v %v", got, err)
	}
	if got, err := c.ListRouters(ctx, apiclient.Filter("role", "blue"), apiclient.PageSize(13)); err != nil || len(got) != blue+40 {
		t.Errorf("role filter: %d routers, %v; want %d", len(got), err, blue+40)
	}

	svc, err := c.CreateService(ctx, api.ServiceCreate{Name: "db", Address: "db.example.com", Port: 5432, RouterRoles: []string{"blue"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := svc.RouterSummary; s.Total != blue+40 || s.Unenrolled != blue+40 || s.Online != 0 || s.FailureDomains == nil {
		t.Errorf("service summary %+v, want %d unenrolled routers", s, blue+40)
	}
	routes, err := c.ServiceRouters(ctx, svc.ID, apiclient.PageSize(7))
	if err != nil || len(routes) != blue+40 {
		t.Errorf("service routers: %d, %v; want %d", len(routes), err, blue+40)
	}
	if svcs, err := c.ListServices(ctx, apiclient.Filter("role", "blue")); err != nil || len(svcs) != 1 || svcs[0].RouterSummary.Total != blue+40 {
		t.Errorf("services with role blue: %+v %v", svcs, err)
	}

	for _, tc := range []struct{ query, field string }{
		{"limit=1001", "limit"},
		{"limit=0", "limit"},
		{"limit=ten", "limit"},
		{"cursor=not-a-cursor", "cursor"},
		{"tenant=acme", "tenant"},
		{"name=", "name"},
		{"role=a&role=b", "role"},
	} {
		code, p := e.raw(t, http.MethodGet, "/v1/routers?"+tc.query, testToken, "")
		if code != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("?%s: %d %+v, want 400 naming %s", tc.query, code, p, tc.field)
		}
	}
	if code, p := e.raw(t, http.MethodGet, "/v1/registration-keys?role=x", testToken, ""); code != http.StatusBadRequest || p.Errors[0].Field != "role" {
		t.Errorf("keys filtered by role: %d %+v, want 400 naming role", code, p)
	}
}
