package failover_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/failover/netcut"
	"github.com/ztna/ztna/tests/failover/openloop"
)

// TestRouterCutOffSilently: two routers host one service, the preferred one inside its own
// network namespace (veth to the host). Its packets start being dropped (nftables, nothing is
// reset) while identities keep dialing: new dials succeed on the other router within 3 s, while
// the silent router's link stays open, unhealthy, for the cut's 5 s (within the link timeout).
// When the cut is lifted its link is healthy again, the API shows it online, and it carries the
// service alone once the other router is killed.
func TestRouterCutOffSilently(t *testing.T) {
	ns := netcut.New(t)
	c := controllerFor(t, ns)
	tg := startTarget(t, ns.HostAddr)
	inside := routerInside(t, c, ns, "inside")
	id := inside.ID
	outside := c.StartRouter(t, "outside", []string{"edge"})
	cl := service(t, c, ns.HostAddr, tg.port)
	waitAssigned(t, inside, outside)
	addr := net.JoinHostPort(ns.HostAddr, strconv.Itoa(tg.port))
	fromInside := func(tag string) bool { return tg.arrivedFrom(tag) == ns.NSAddr }
	// The router about to be cut off is the preferred one.
	setCosts(t, c, map[string]int{outside.ID: 50})
	waitDialsArrive(t, cl, addr, "from the router inside the namespace", fromInside)

	ctx, cancel := context.WithCancel(context.Background())
	collect := dialLoad(ctx, cl, addr, 20*time.Millisecond)
	time.Sleep(time.Second)
	cut := time.Now()
	ns.Cut(t)
	time.Sleep(5 * time.Second)
	cancel()
	recs := collect()
	o := openloop.Summarize(recs, cut, 3*time.Second)
	t.Logf("new dials: %d in total, %d failed (%d in Dial; first error: %v), longest time without a successful dial after the cut: %v",
		o.Probes, o.Failed, o.InDial, o.FirstErr, o.Gap.Round(time.Millisecond))
	if o.Late > 0 {
		t.Errorf("%d new dials that began more than 3 s after the cut failed (first error: %v)", o.Late, o.FirstErr)
	}
	if o.Gap > 3*time.Second {
		t.Errorf("no new dial succeeded for %v after the cut; the target is 3 s", o.Gap.Round(time.Millisecond))
	}
	if c.RouterLinked(id) {
		t.Errorf("the hub still counts a healthy link from the cut-off router 5 s after the cut")
	}
	// Unhealthy (no new streams) is not closed (streams cut): 5 s is within the link timeout.
	if n := c.Metric(`ztna_hub_router_link_count{healthy="false",router="` + id + `"}`); n != 1 {
		t.Errorf("the hub has %v unhealthy links from the cut-off router 5 s after the cut, want 1: the link timeout is 10 s", n)
	}

	restored := time.Now()
	ns.Restore(t)
	relinked := harness.WaitFor(t, 30*time.Second, "the router's link is healthy again after the cut is lifted", func() bool { return c.RouterLinked(id) })
	harness.WaitFor(t, 30*time.Second, "the API shows the router online", func() bool {
		r, err := c.API.GetRouter(context.Background(), id)
		return err == nil && r.Status == api.RouterOnline
	})
	t.Logf("after the cut was lifted: fabric link back in %v, online in the API after %v", relinked.Round(time.Millisecond), time.Since(restored).Round(time.Millisecond))

	// Only the rejoined router is left: it carries every new dial.
	outside.Kill()
	waitDialsArrive(t, cl, addr, "from the rejoined router", fromInside)
	for i := range 20 {
		tag := "after-" + strconv.Itoa(i)
		if err := probe(cl, addr, tag); err != nil {
			t.Fatalf("dial %d through the rejoined router: %v", i, err)
		}
		if !fromInside(tag) {
			t.Fatalf("dial %d arrived from %q, not the rejoined router", i, tg.arrivedFrom(tag))
		}
	}
}
