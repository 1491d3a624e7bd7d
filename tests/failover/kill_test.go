package failover_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/failover/openloop"
)

// TestRouterKilledMidLoad: two routers host one service; while identities keep dialing new
// streams and long-lived streams echo through both routers, one router is killed with SIGKILL.
// No new dial fails later than 1 s after the kill (the hub retries setups on the survivor);
// every long-lived stream on the survivor completes byte-exact and ends cleanly; every stream on
// the dead router fails with an error, never a clean end of stream.
func TestRouterKilledMidLoad(t *testing.T) {
	c := harness.StartController(t)
	// Each router resolves the service name to its own target address, so the target can tell
	// which router carried a stream.
	const name = "db.customer.test"
	ips := map[string]string{"edge-1": "127.0.0.1", "edge-2": "127.0.0.2"}
	tg := startTarget(t, ips["edge-1"], ips["edge-2"])
	routers := map[string]*harness.Router{}
	for _, r := range []string{"edge-1", "edge-2"} {
		dns := dnstest.Start(t, map[string]string{name: ips[r]})
		routers[r] = c.StartRouter(t, r, []string{"edge"}, "--dns-server", dns.Addr)
	}
	cl := service(t, c, name, tg.port)
	waitAssigned(t, routers["edge-1"], routers["edge-2"])
	addr := net.JoinHostPort(name, strconv.Itoa(tg.port))

	// Static costs steer half the long-lived streams to each router, then make the router about
	// to be killed the preferred one for new dials.
	const streams = 16
	stop := make(chan struct{})
	var dead, survivor []*stream
	for _, phase := range []struct {
		costs map[string]int
		onto  string
		into  *[]*stream
	}{
		{map[string]int{"edge-1": 0, "edge-2": 1000}, "edge-1", &dead},
		{map[string]int{"edge-1": 1000, "edge-2": 0}, "edge-2", &survivor},
	} {
		prefer(t, c, cl, addr, tg, routers, phase.costs, ips[phase.onto])
		for i := range streams / 2 {
			s := openStream(t, cl, addr, phase.onto+"-stream-"+strconv.Itoa(i), stop)
			harness.WaitFor(t, 10*time.Second, s.tag+" reaches the target", func() bool { return tg.arrivedVia(s.tag) != "" })
			if via := tg.arrivedVia(s.tag); via != ips[phase.onto] {
				t.Fatalf("%s arrived via %s, not %s (the cheaper router)", s.tag, via, phase.onto)
			}
			*phase.into = append(*phase.into, s)
		}
	}
	prefer(t, c, cl, addr, tg, routers, map[string]int{"edge-1": 0, "edge-2": 50}, ips["edge-1"])

	ctx, cancel := context.WithCancel(context.Background())
	collect := dialLoad(ctx, cl, addr, 20*time.Millisecond)
	time.Sleep(time.Second)
	killed := time.Now()
	routers["edge-1"].Kill()
	time.Sleep(4 * time.Second)
	cancel()
	recs := collect()
	close(stop)
	for _, s := range append(dead, survivor...) {
		<-s.done
	}

	o := openloop.Summarize(recs, killed, time.Second)
	t.Logf("new dials: %d in total, %d failed (%d in Dial, the others set up on the killed router just before it died; first error: %v), longest time without a successful dial after the kill: %v",
		o.Probes, o.Failed, o.InDial, o.FirstErr, o.Gap.Round(time.Millisecond))
	if o.Late > 0 {
		t.Errorf("%d new dials that began more than 1 s after the kill failed (first error: %v)", o.Late, o.FirstErr)
	}
	if o.Gap > time.Second {
		t.Errorf("no new dial succeeded for %v after the kill; the target is 1 s", o.Gap.Round(time.Millisecond))
	}
	for _, s := range survivor {
		if s.err != nil {
			t.Errorf("%s on the surviving router: %v after %d intact rounds", s.tag, s.err, s.rounds)
		}
	}
	var detect time.Duration
	for _, s := range dead {
		switch {
		case s.err == nil:
			t.Errorf("%s on the killed router completed %d rounds after its router was killed", s.tag, s.rounds)
		case errors.Is(s.err, errSilentEnd):
			t.Errorf("%s on the killed router: %v", s.tag, s.err)
		default:
			detect = max(detect, s.failed.Sub(killed))
		}
	}
	if detect > 5*time.Second {
		t.Errorf("streams on the killed router failed only %v after the kill", detect)
	}
	t.Logf("long-lived streams: %d on the survivor intact, %d on the killed router failed with an error within %v (e.g. %v)",
		len(survivor), len(dead), detect.Round(time.Millisecond), firstStreamErr(dead))
}

func firstStreamErr(ss []*stream) error {
	for _, s := range ss {
		if s.err != nil {
			return fmt.Errorf("%s: %w", s.tag, s.err)
		}
	}
	return nil
}

// prefer sets the routers' static costs (by name) and waits until new dials arrive via the
// target address ip.
func prefer(t *testing.T, c *harness.Controller, cl *client.Client, addr string, tg *target, routers map[string]*harness.Router, costs map[string]int, ip string) {
	t.Helper()
	byID := map[string]int{}
	for name, cost := range costs {
		byID[routers[name].ID] = cost
	}
	setCosts(t, c, byID)
	waitDialsArrive(t, cl, addr, "via "+ip, func(tag string) bool { return tg.arrivedVia(tag) == ip })
}
