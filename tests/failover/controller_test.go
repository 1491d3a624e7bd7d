package failover_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestControllerRestartReconnects: the controller (API, control channel and embedded hub) is
// killed with SIGKILL while an identity dials through two routers, stays down for 10 s, and is
// restarted on the same data directory: both routers link to its hub again and show online in
// the API, and the same SDK client dials through them again, all without being touched.
//
// What this does not show: dials succeeding while the controller is down. The only hub here
// is the controller's embedded one; that needs a standalone hub (`ztna-router run --hub`), which
// ztna-router does not have yet.
func TestControllerRestartReconnects(t *testing.T) {
	c := harness.StartController(t)
	tg := startTarget(t, "127.0.0.1")
	r1 := c.StartRouter(t, "edge-1", []string{"edge"})
	r2 := c.StartRouter(t, "edge-2", []string{"edge"})
	cl := service(t, c, "127.0.0.1", tg.port)
	waitAssigned(t, r1, r2)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tg.port))
	if err := probe(cl, addr, "before"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	collect := dialLoad(ctx, cl, addr, 50*time.Millisecond)
	time.Sleep(time.Second)
	c.Proc.Kill()
	killed := time.Now()
	time.Sleep(10 * time.Second)
	for _, r := range []*harness.Router{r1, r2} {
		if r.Exited() {
			t.Fatalf("router %s exited while the controller was down:\n%s", r.ID, r.Output())
		}
	}
	restarted := time.Now()
	c.Proc = harness.Start(t, "ztna-controller", "dev", "--data-dir", c.Dir)
	for _, r := range []*harness.Router{r1, r2} {
		harness.WaitFor(t, 30*time.Second, "router "+r.ID+" links to the restarted controller's hub", func() bool { return c.RouterLinked(r.ID) })
		harness.WaitFor(t, 30*time.Second, "router "+r.ID+" online in the API", func() bool {
			got, err := c.API.GetRouter(context.Background(), r.ID)
			return err == nil && got.Status == api.RouterOnline
		})
	}
	back := time.Since(restarted)
	var served time.Time
	harness.WaitFor(t, 30*time.Second, "the client dials again", func() bool {
		ok := probe(cl, addr, "after") == nil
		served = time.Now()
		return ok
	})
	cancel()
	recs := collect()
	for i := range 20 {
		if err := probe(cl, addr, "after-"+strconv.Itoa(i)); err != nil {
			t.Fatalf("dial %d after the restart: %v", i, err)
		}
	}
	failed, _, _, _, _ := outage(recs, killed, 0)
	t.Logf("controller down %v; after its restart both routers were linked and online within %v, the client dialed again after %v; %d of %d dials during the outage failed (no hub while the controller is down)",
		restarted.Sub(killed).Round(time.Millisecond), back.Round(time.Millisecond), served.Sub(restarted).Round(time.Millisecond), failed, len(recs))
}
