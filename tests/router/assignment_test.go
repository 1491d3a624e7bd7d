package router_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/testnet"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestAssignmentAndHealth: a service matching the router's roles reaches it within 1 s of its
// creation, services for other roles never do, and the API shows what the router observes of
// each service through the customer's DNS server: resolvable, reachable, or neither.
func TestAssignmentAndHealth(t *testing.T) {
	ctx := context.Background()
	dns := dnstest.Start(t, map[string]string{"db.customer.test": "127.0.0.1", "down.customer.test": "127.0.0.1"})
	open, closed := testnet.OpenPort(t), testnet.ClosedPort(t)
	c := harness.StartController(t, "--heartbeat-interval", "500ms")
	id, key := c.NewRouter(t, "edge-1", "edge")
	r := harness.RunRouter(t, id, harness.Enrol(t, key, "--dns-server", dns.Addr), "--health-interval", "500ms")
	harness.WaitFor(t, 10*time.Second, "router connected", r.Healthy)
	assigned := func() float64 { return r.Metric("ztna_router_assigned_services") }
	if n := assigned(); n != 0 {
		t.Fatalf("%v services assigned before any exists", n)
	}

	if _, err := c.API.CreateService(ctx, api.ServiceCreate{Name: "other", Address: "other.customer.test", Port: 1, RouterRoles: []string{"hub"}}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if _, err := c.API.CreateService(ctx, api.ServiceCreate{Name: "db", Address: "db.customer.test", Port: open, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, time.Second, "matching service assigned within 1s", func() bool { return assigned() == 1 })
	t.Logf("assignment reached the router %v after the API call returned", time.Since(created).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	if n := assigned(); n != 1 {
		t.Fatalf("%v services assigned, want only the one for role edge", n)
	}

	for _, s := range []api.ServiceCreate{
		{Name: "ghost", Address: "ghost.customer.test", Port: open, RouterRoles: []string{"edge"}},
		{Name: "down", Address: "down.customer.test", Port: closed, RouterRoles: []string{"edge"}},
	} {
		if _, err := c.API.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][2]bool{"db": {true, true}, "ghost": {false, false}, "down": {true, false}}
	harness.WaitFor(t, 10*time.Second, "per-service health in the API", func() bool {
		got := map[string][2]bool{}
		for _, h := range c.GetRouter(t, id).Services {
			got[h.Name] = [2]bool{h.Resolvable, h.Reachable}
		}
		for name, w := range want {
			if g, ok := got[name]; !ok || g != w {
				return false
			}
		}
		return true
	})
	for _, h := range c.GetRouter(t, id).Services {
		t.Logf("API: %s resolvable=%v reachable=%v %s", h.Name, h.Resolvable, h.Reachable, h.Error)
	}
	if v := r.Metric(`ztna_router_service_reachable{address="db.customer.test",port="` + strconv.Itoa(open) + `",service="db"}`); v != 1 {
		t.Fatalf("reachable metric of db = %v", v)
	}
}
