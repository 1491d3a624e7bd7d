package failover_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/failover/openloop"
)

// controllerDown is how long the controller stays dead in TestControllerKilledHeadless: 15 s in
// make test (nothing in the hub depends on the duration), or $ZTNA_FAILOVER_CONTROLLER_DOWN
// (e.g. 60s, the target) when set.
func controllerDown(t *testing.T) time.Duration {
	v := os.Getenv("ZTNA_FAILOVER_CONTROLLER_DOWN")
	if v == "" {
		return 15 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("ZTNA_FAILOVER_CONTROLLER_DOWN=%q: want a positive duration such as 60s", v)
	}
	return d
}

// TestControllerKilledHeadless: two routers host a service; a client that knows only a
// standalone hub (`ztna-router run --hub`) dials new streams continuously while long-lived
// streams echo. The controller is killed with SIGKILL and stays down: not one dial fails and
// every long-lived stream stays byte-exact. When the controller is restarted on its data
// directory, both routers and the hub reconnect by themselves: the API shows all three online
// and the routers are linked to the controller's embedded hub again.
func TestControllerKilledHeadless(t *testing.T) {
	down := controllerDown(t)
	hubAddr := harness.FreeAddr(t)
	c := harness.StartController(t, "--hub", hubAddr)
	hubID, hubDir := c.EnrolRouter(t, "hub-1", "hub")
	hub := harness.RunRouter(t, hubID, hubDir, "--hub", "--listen", hubAddr)
	tg := startTarget(t, "127.0.0.1")
	routers := []*harness.Router{c.StartRouter(t, "edge-1", []string{"edge"}), c.StartRouter(t, "edge-2", []string{"edge"})}
	for _, r := range routers {
		harness.WaitFor(t, 15*time.Second, "router "+r.ID+" links to the standalone hub", func() bool {
			return hub.Metric(`ztna_hub_router_link_count{healthy="true",router="`+r.ID+`"}`) == 1
		})
	}
	cl := service(t, c, "127.0.0.1", tg.port, hubAddr) // this client knows only the standalone hub
	waitAssigned(t, routers...)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tg.port))
	waitDialsArrive(t, cl, addr, "through the standalone hub", func(tag string) bool { return tg.arrivedVia(tag) != "" })

	stop := make(chan struct{})
	var open []*stream
	for i := range 8 {
		open = append(open, openStream(t, cl, addr, "stream-"+strconv.Itoa(i), stop))
	}
	ctx, cancel := context.WithCancel(context.Background())
	collect := dialLoad(ctx, cl, addr, 50*time.Millisecond)
	time.Sleep(time.Second)
	killed := time.Now()
	c.Proc.Kill()
	time.Sleep(down)
	cancel()
	recs := collect()
	o := openloop.Summarize(recs, killed, 0)
	t.Logf("controller down %v: %d new dials, %d failed (first error: %v), longest time without a successful dial: %v",
		down, o.Probes, o.Failed, o.FirstErr, o.Gap.Round(time.Millisecond))
	if o.Failed > 0 {
		t.Errorf("%d of %d dials failed with the controller down (first error: %v)", o.Failed, o.Probes, o.FirstErr)
	}

	restarted := time.Now()
	c.Restart(t, "--hub", hubAddr)
	for _, id := range []string{hubID, routers[0].ID, routers[1].ID} {
		harness.WaitFor(t, 30*time.Second, id+" online in the API after the restart", func() bool {
			got, err := c.API.GetRouter(context.Background(), id)
			return err == nil && got.Status == api.RouterOnline
		})
	}
	for _, r := range routers {
		harness.WaitFor(t, 30*time.Second, "router "+r.ID+" links to the restarted controller's hub", func() bool { return c.RouterLinked(r.ID) })
	}
	t.Logf("after the restart, hub and routers online and linked within %v", time.Since(restarted).Round(time.Millisecond))

	close(stop)
	for _, s := range open {
		<-s.done
		if s.err != nil {
			t.Errorf("%s (opened before the controller died): %v after %d intact rounds", s.tag, s.err, s.rounds)
		}
	}
	for i := range 20 {
		if err := probe(cl, addr, "after-"+strconv.Itoa(i)); err != nil {
			t.Fatalf("dial %d after the restart: %v", i, err)
		}
	}
}

// TestControllerRestartRelinksAtOnce: a router's link to the controller's embedded hub is down
// for as long as the controller, 20 s, long enough for the router's link retries to back off to
// several seconds. When the controller is back, the router redials its hubs as soon as its
// control channel is up (the welcome lists them): the first dial through the embedded hub
// succeeds within 1 s of the control channel being back, not when the backoff comes round.
func TestControllerRestartRelinksAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: integration test (real processes)")
	}
	c := harness.StartController(t)
	tg := startTarget(t, "127.0.0.1")
	r := c.StartRouter(t, "edge-1", []string{"edge"})
	cl := service(t, c, "127.0.0.1", tg.port) // knows only the embedded hub
	waitAssigned(t, r)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tg.port))
	waitDialsArrive(t, cl, addr, "through the embedded hub", func(tag string) bool { return tg.arrivedVia(tag) != "" })

	c.Proc.Kill()
	harness.WaitFor(t, 15*time.Second, "the router notices its control channel is down", func() bool {
		return r.Metric("ztna_router_control_connected") == 0
	})
	time.Sleep(20 * time.Second)

	// Watch the control channel and dial through the embedded hub from before the restart on,
	// so that neither moment is missed while Restart waits for the API.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	controlBack := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			if r.Metric("ztna_router_control_connected") == 1 {
				controlBack <- time.Now()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	dialed := make(chan time.Time, 1)
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			if probe(cl, addr, "restart-"+strconv.Itoa(i)) == nil {
				dialed <- time.Now()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	restarted := time.Now()
	c.Restart(t)
	var back, first time.Time
	select {
	case back = <-controlBack:
	case <-ctx.Done():
		t.Fatal("the router's control channel is not back 60 s after the restart")
	}
	select {
	case first = <-dialed:
	case <-ctx.Done():
		t.Fatal("no dial through the embedded hub succeeded within 60 s of the restart")
	}
	t.Logf("after the restart: control channel back in %v, first dial through the embedded hub %v after that",
		back.Sub(restarted).Round(time.Millisecond), first.Sub(back).Round(time.Millisecond))
	if d := first.Sub(back); d > time.Second {
		t.Errorf("the first dial through the embedded hub succeeded %v after the control channel was back; the target is 1 s", d.Round(time.Millisecond))
	}
}
