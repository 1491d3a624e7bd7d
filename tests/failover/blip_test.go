package failover_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/failover/netcut"
)

// controllerFor starts a dev controller whose control channel and embedded hub listen on the
// host's end of ns's link, where a router inside the namespace reaches them (the edge API stays
// on loopback).
func controllerFor(t *testing.T, ns *netcut.Namespace, args ...string) *harness.Controller {
	t.Helper()
	free := func() string {
		ln := ns.HostListen(t)
		defer ln.Close()
		return ln.Addr().String()
	}
	return harness.StartController(t, append([]string{"--control-addr", free(), "--fabric-addr", free()}, args...)...)
}

// routerInside enrols a router with role edge and runs it inside ns, and waits until the
// embedded hub has its link.
func routerInside(t *testing.T, c *harness.Controller, ns *netcut.Namespace, name string, args ...string) *harness.Router {
	t.Helper()
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	id, dir := c.EnrolRouter(t, name, "edge")
	local := net.JoinHostPort(ns.NSAddr, "9100")
	argv := ns.Exec(harness.Bin("ztna-router"), append([]string{"run", "--state-dir", dir, "--local-addr", local}, args...)...)
	r := &harness.Router{Proc: harness.Start(t, ipPath, argv[1:]...), ID: id, StateDir: dir, Local: local}
	harness.WaitFor(t, 15*time.Second, "router "+name+" links to the embedded hub", func() bool { return c.RouterLinked(id) })
	return r
}

// TestBlipKeepsStreams: one router (nowhere to fail over) inside a network namespace carries 20
// echoing streams. A 2.5 s blackout between it and the hub (nftables drop: no reset, no close,
// only silence — long enough for TCP's retransmit backoff to push the first packet after it
// past the old 3 s link timeout) cuts none of them: every byte comes back and they go on. A
// 15 s blackout, beyond the 10 s default link timeout, cuts every one with an error, never a
// clean end of stream.
func TestBlipKeepsStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: integration test (real processes)")
	}
	ns := netcut.New(t)
	c := controllerFor(t, ns)
	tg := startTarget(t, ns.HostAddr)
	inside := routerInside(t, c, ns, "inside")
	cl := service(t, c, ns.HostAddr, tg.port)
	waitAssigned(t, inside)
	addr := net.JoinHostPort(ns.HostAddr, strconv.Itoa(tg.port))
	waitDialsArrive(t, cl, addr, "through the router inside the namespace", func(tag string) bool { return tg.arrivedVia(tag) != "" })

	// A stream's reads and writes may wait out the whole blackout: their deadline is beyond
	// both blackouts, so that only the fabric can end a stream.
	const opDeadline = 40 * time.Second
	stop := make(chan struct{})
	var open []*stream
	for i := range 20 {
		open = append(open, openStreamWithin(t, cl, addr, "blip-"+strconv.Itoa(i), stop, opDeadline))
	}
	rounds := func() []int {
		out := make([]int, len(open))
		for i, s := range open {
			out[i] = s.roundsDone()
		}
		return out
	}
	allPast := func(base []int, n int) func() bool {
		return func() bool {
			for i, s := range open {
				if s.roundsDone() < base[i]+n {
					return false
				}
			}
			return true
		}
	}
	harness.WaitFor(t, 20*time.Second, "every stream echoes", allPast(make([]int, len(open)), 3))

	ns.Cut(t)
	time.Sleep(2500 * time.Millisecond)
	ns.Restore(t)
	base := rounds()
	resumed := harness.WaitFor(t, 30*time.Second, "every stream echoes again after the 2.5 s blackout", func() bool {
		for _, s := range open {
			select {
			case <-s.done:
				return true // checked below
			default:
			}
		}
		return allPast(base, 3)()
	})
	cut := 0
	for _, s := range open {
		select {
		case <-s.done:
			cut++
			t.Errorf("%s cut by a 2.5 s blackout after %d intact rounds: %v", s.tag, s.rounds, s.err)
		default:
		}
	}
	t.Logf("2.5 s blackout: %d of %d streams cut; all echoing again %v after it ended", cut, len(open), resumed.Round(time.Millisecond))
	if cut > 0 {
		return
	}
	if !c.RouterLinked(inside.ID) {
		t.Errorf("the hub has no healthy link from the router after the blackout")
	}

	ns.Cut(t)
	cutAt := time.Now()
	for _, s := range open {
		select {
		case <-s.done:
		case <-time.After(time.Until(cutAt.Add(30 * time.Second))):
			t.Fatalf("%s still open 30 s into a 15 s blackout", s.tag)
		}
		switch {
		case s.err == nil:
			t.Errorf("%s ended cleanly during the blackout", s.tag)
		case errors.Is(s.err, errSilentEnd):
			t.Errorf("%s: %v", s.tag, s.err)
		case errors.Is(s.err, os.ErrDeadlineExceeded):
			t.Errorf("%s: the stream's own deadline ended it, not the link timeout: %v", s.tag, s.err)
		}
	}
	first, last := open[0].failed, open[0].failed
	for _, s := range open {
		if s.failed.Before(first) {
			first = s.failed
		}
		if s.failed.After(last) {
			last = s.failed
		}
	}
	t.Logf("blackout beyond the link timeout: every stream cut with an error %v–%v into it (first: %v)",
		first.Sub(cutAt).Round(time.Millisecond), last.Sub(cutAt).Round(time.Millisecond), open[0].err)
	if d := first.Sub(cutAt); d < 5*time.Second {
		t.Errorf("a stream was cut %v into the blackout, well before the 10 s link timeout", d.Round(time.Millisecond))
	}

	// The blackout ends after 15 s; the router links again by itself and carries new dials.
	time.Sleep(time.Until(cutAt.Add(15 * time.Second)))
	ns.Restore(t)
	relinked := harness.WaitFor(t, 30*time.Second, "the router links again after the 15 s blackout", func() bool { return c.RouterLinked(inside.ID) })
	t.Logf("linked again %v after the 15 s blackout ended", relinked.Round(time.Millisecond))
	waitDialsArrive(t, cl, addr, "after the 15 s blackout", func(tag string) bool { return tg.arrivedVia(tag) != "" })
	close(stop)
}
