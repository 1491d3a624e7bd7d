package controlclient

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/internal/teststate"
	"github.com/ztna/ztna/router/metrics"
	"github.com/ztna/ztna/router/targets"
	"github.com/ztna/ztna/router/testnet"
)

func TestValidEndpoints(t *testing.T) {
	tests := []struct {
		name, wantErr string
		in, want      []string
	}{
		{name: "replicas", in: []string{"ctrl-a.example:6262", "10.0.0.2:6262", "[fd00::1]:6262"},
			want: []string{"ctrl-a.example:6262", "10.0.0.2:6262", "[fd00::1]:6262"}},
		{name: "duplicates dropped", in: []string{"a:1", "b:2", "a:1"}, want: []string{"a:1", "b:2"}},
		{name: "no port", in: []string{"a:1", "ctrl.example"}, wantErr: `"ctrl.example"`},
		{name: "port out of range", in: []string{"a:65536"}, wantErr: "not host:port"},
		{name: "named port", in: []string{"a:https"}, wantErr: "not host:port"},
		{name: "no host", in: []string{":6262"}, wantErr: "not host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidEndpoints(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	r := newRotation("router-1", []string{"a:1"}, []string{"a:1"})
	if got := []string{r.pick(), r.pick()}; !slices.Equal(got, []string{"a:1", "a:1"}) {
		t.Fatalf("one endpoint: dialled %v", got)
	}
	if r.replace([]string{"a:1"}, "a:1") {
		t.Fatal("the same list counted as a change")
	}
	// Learned on a session with a:1: the next attempt goes to the endpoint after a:1 in the
	// router's own order, then round.
	learned := []string{"b:2", "a:1", "c:3"}
	if !r.replace(learned, "a:1") {
		t.Fatal("a new list not counted as a change")
	}
	order := Preference("router-1", learned)
	i := slices.Index(order, "a:1")
	want := []string{order[(i+1)%3], order[(i+2)%3], order[i]}
	if got := []string{r.pick(), r.pick(), r.pick()}; !slices.Equal(got, want) {
		t.Fatalf("dialled %v after learning on a:1, want %v (order %v)", got, want, order)
	}
	// A list without the enrolled endpoint keeps it last, as a fallback.
	r.replace([]string{"d:4"}, "c:3")
	if !slices.Equal(r.list, []string{"d:4", "a:1"}) {
		t.Fatalf("list %v, want the pushed one then the fallback", r.list)
	}
}

// TestPreferenceSpreadsRouters: each router's order is its own and stable (the same whatever
// order the controller lists its replicas in), and a fleet's first choices split evenly.
func TestPreferenceSpreadsRouters(t *testing.T) {
	replicas := []string{"ctrl-a:6262", "ctrl-b:6262"}
	first := map[string]int{}
	const n = 2000
	for i := range n {
		seed := fmt.Sprintf("router-%d", i)
		p := Preference(seed, replicas)
		if q := Preference(seed, []string{replicas[1], replicas[0]}); !slices.Equal(p, q) {
			t.Fatalf("%s: order %v depends on the listed order (%v)", seed, p, q)
		}
		if !slices.Equal(p, Preference(seed, replicas)) {
			t.Fatalf("%s: order not stable", seed)
		}
		first[p[0]]++
	}
	for _, r := range replicas {
		if share := float64(first[r]) / n; share < 0.45 || share > 0.55 {
			t.Errorf("%s is the first choice of %.1f %% of routers, want about half (%v)", r, 100*share, first)
		}
	}
	// A third replica takes about a third, and moves only routers to itself.
	three := append(slices.Clone(replicas), "ctrl-c:6262")
	for i := range n {
		seed := fmt.Sprintf("router-%d", i)
		if p2, p3 := Preference(seed, replicas)[0], Preference(seed, three)[0]; p3 != p2 && p3 != "ctrl-c:6262" {
			t.Fatalf("%s moved from %s to %s when ctrl-c was added", seed, p2, p3)
		}
	}
}

// TestLearnsEndpointsFromWelcome: a router that knows only replica A learns replica B from A's
// welcome, hands the list to OnEndpoints, and reconnects to B once A is gone. A list with a
// mistake is ignored.
func TestLearnsEndpointsFromWelcome(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	addrA := "127.0.0.1:" + strconv.Itoa(testnet.ClosedPort(t))
	cfg := func(endpoints ...string) controlserver.Config {
		return controlserver.Config{HeartbeatInterval: 200 * time.Millisecond, Control: endpoints, Logger: log.With("side", "controller")}
	}
	ctlB := controltest.Start(t, b, "", cfg("127.0.0.1:0", "bad entry"))
	ctlA := controltest.Start(t, b, addrA, cfg(addrA, ctlB.Addr))
	id, err := identity.Load(teststate.Write(t, ca, "r1", time.Hour, addrA).Dir)
	if err != nil {
		t.Fatal(err)
	}
	learned := make(chan []string, 10)
	c := &Client{
		Endpoints: []string{addrA}, Fallback: []string{addrA}, Credentials: id, Targets: targets.NewSet(), Health: noHealth{},
		Metrics: metrics.New(prometheus.NewRegistry()), Logger: log.With("side", "router"), Hello: control.Hello{Version: "v1"},
		OnEndpoints: func(l []string) { learned <- l },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, 5*time.Second, "router connected to A", func() bool { return slices.Contains(ctlA.Server.Connected(), "r1") })
	select {
	case got := <-learned:
		if want := []string{addrA, ctlB.Addr}; !slices.Equal(got, want) {
			t.Fatalf("learned %v, want %v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnEndpoints not called after A's welcome")
	}

	ctlA.Stop()
	stopped := time.Now()
	waitFor(t, 5*time.Second, "router connected to B", func() bool { return c.Connected() && slices.Contains(ctlB.Server.Connected(), "r1") })
	t.Logf("on B %v after A stopped", time.Since(stopped).Round(time.Millisecond))
	select {
	case got := <-learned:
		t.Fatalf("B's list with a bad entry was taken: %v", got)
	case <-time.After(300 * time.Millisecond):
	}
}
