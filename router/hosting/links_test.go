package hosting_test

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/router/hosting"
	"github.com/ztna/ztna/router/targets"
)

// startHub serves a hub that knows router r1 and returns it with its address.
func startHub(t *testing.T, p *fabrictest.PKI, ctx context.Context) (*hub.Hub, string) {
	t.Helper()
	h := hub.New(hub.Config{Credentials: p.Credentials(api.KindHub, "h")})
	h.Update(hub.Snapshot{Routers: []hub.Router{{ID: "r1"}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.Serve(ctx, ln)
	return h, ln.Addr().String()
}

func linked(h *hub.Hub) bool {
	return slices.ContainsFunc(h.Routers(), func(r hub.RouterStatus) bool { return r.ID == "r1" && r.Healthy })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFollowsTheHubList: the router links to the enrolled hubs, moves to the list the controller
// names, and keeps its hubs when handed an empty list.
func TestFollowsTheHubList(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := fabrictest.New(t)
	a, addrA := startHub(t, p, ctx)
	b, addrB := startHub(t, p, ctx)
	creds := p.Credentials(api.KindRouter, "r1")
	l := hosting.NewLinks(hosting.LinksConfig{Cert: creds.Cert, CA: creds.CA, Hubs: []string{addrA, addrA, ""},
		Dialer: &targets.Dialer{Targets: targets.NewSet(), Resolver: net.DefaultResolver}})
	if got := l.Hubs(); !slices.Equal(got, []string{addrA}) {
		t.Fatalf("Hubs() = %v after dedupe", got)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, "link to the enrolled hub", func() bool { return linked(a) })

	l.SetHubs([]string{addrB})
	waitFor(t, "link moves to the hub the controller names", func() bool { return linked(b) && !linked(a) })
	l.SetHubs(nil)
	time.Sleep(100 * time.Millisecond)
	if !linked(b) || !slices.Equal(l.Hubs(), []string{addrB}) {
		t.Fatal("an empty hub list dropped the router's links")
	}
	l.SetHubs([]string{addrA, addrB})
	waitFor(t, "links to both hubs", func() bool { return linked(a) && linked(b) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// refusingListener drops every connection it accepts while refuse is set (the router's link
// attempt fails in the TLS handshake, as against a hub that is still starting), counting them.
type refusingListener struct {
	net.Listener
	refuse  atomic.Bool
	refused atomic.Int32
}

func (l *refusingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.refuse.Load() {
			return c, err
		}
		c.Close()
		l.refused.Add(1)
	}
}

// TestRelinksAtOnceWhenTheHubsAreListedAgain: a router whose hub kept refusing is backing off
// for 1.6–3.2 s after the sixth attempt; when the control channel's welcome lists the hubs again
// (SetHubs with the same list), it redials at once instead of waiting that out.
func TestRelinksAtOnceWhenTheHubsAreListedAgain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := fabrictest.New(t)
	h := hub.New(hub.Config{Credentials: p.Credentials(api.KindHub, "h")})
	h.Update(hub.Snapshot{Routers: []hub.Router{{ID: "r1"}}})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &refusingListener{Listener: inner}
	ln.refuse.Store(true)
	go h.Serve(ctx, ln)
	addr := inner.Addr().String()
	creds := p.Credentials(api.KindRouter, "r1")
	l := hosting.NewLinks(hosting.LinksConfig{Cert: creds.Cert, CA: creds.CA, Hubs: []string{addr},
		Dialer: &targets.Dialer{Targets: targets.NewSet(), Resolver: net.DefaultResolver}})
	go l.Run(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for ln.refused.Load() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d link attempts in 20 s", ln.refused.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln.refuse.Store(false)
	told := time.Now()
	l.SetHubs([]string{addr})
	for !linked(h) {
		if time.Since(told) > time.Second {
			t.Fatalf("not linked %v after the hubs were listed again (the backoff alone would take at least 1.6 s)", time.Since(told).Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("linked %v after the hubs were listed again", time.Since(told).Round(time.Millisecond))
}
