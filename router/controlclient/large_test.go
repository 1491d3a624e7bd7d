package controlclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/internal/teststate"
	"github.com/ztna/ztna/router/metrics"
	"github.com/ztna/ztna/router/targets"
)

// failing reports n services unreachable, each with an error message.
type failing int

func (n failing) Results() []control.ServiceHealth {
	out := make([]control.ServiceHealth, n)
	for i := range out {
		out[i] = control.ServiceHealth{ServiceID: fmt.Sprintf("svc-%05d", i), ServiceName: fmt.Sprintf("service-%05d", i),
			Address: fmt.Sprintf("host-%05d.customer.example", i), Port: 5432, Resolvable: true,
			Error: fmt.Sprintf("dial tcp 10.20.%d.%d:5432: connect: connection refused", i/256, i%256), CheckedAt: time.Now().UTC()}
	}
	return out
}

// startLarge runs a control server and a client for router id with the health source.
func startLarge(t *testing.T, b *controltest.Backend, hubs *controltest.Hubs, id string, health HealthSource, hello control.Hello, onSnap func(control.HubSnapshot)) (*Client, *prometheus.Registry) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctl := controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: time.Second, Hubs: hubs, Logger: log.With("side", "controller")})
	ident, err := identity.Load(teststate.Write(t, b.CA, id, time.Hour, ctl.Addr).Dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := &Client{Endpoints: []string{ctl.Addr}, Credentials: ident, Targets: targets.NewSet(), Health: health,
		Metrics: metrics.New(reg), Logger: log.With("side", "router"), Hello: hello, OnHubSnapshot: onSnap}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, reg
}

// TestLargeAssignmentAndHeartbeat: a router hosting 20,000 services gets its assignment (about
// 3 MB, three frames' worth) and its heartbeat with 5,000 failing services (about 1.2 MB)
// reaches the controller, on one session that stays up.
func TestLargeAssignmentAndHeartbeat(t *testing.T) {
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	svcs := make([]controltest.Service, 20000)
	for i := range svcs {
		svcs[i] = controltest.Service{Service: control.Service{ID: fmt.Sprintf("svc-%05d", i), Name: fmt.Sprintf("service-%05d", i),
			Address: fmt.Sprintf("host-%05d.customer.example", i), Port: 5432, PortRanges: []control.PortRange{{From: 8000, To: 8010}}, Protocol: "tcp"},
			RouterRoles: []string{"edge"}}
	}
	b.PutServices(svcs...)
	c, reg := startLarge(t, b, nil, "r1", failing(5000), control.Hello{Version: "v1"}, nil)

	waitFor(t, 30*time.Second, "assignment of 20,000 services", func() bool { return c.Targets.Allowed("host-19999.customer.example", 8005) })
	if !c.Targets.Allowed("host-00000.customer.example", 5432) {
		t.Fatal("the first service is missing")
	}
	waitFor(t, 30*time.Second, "heartbeat with 5,000 failing services", func() bool { return len(b.Status("r1").Health) == 5000 })
	if h := b.Status("r1").Health[4999]; h.Reachable || !strings.Contains(h.Error, "connection refused") {
		t.Fatalf("last health %+v", h)
	}
	if got := metricValue(t, reg, "ztna_router_control_reconnects_total"); got != 0 {
		t.Fatalf("%v reconnects", got)
	}
}

// TestLargeHubSnapshot: a standalone hub's 20 MB snapshot arrives whole.
func TestLargeHubSnapshot(t *testing.T) {
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "h1", Name: "hub-1", Roles: []string{api.RoleHub}})
	hubs := controltest.NewHubs(b)
	var snap control.HubSnapshot
	for i := 0; i < 45000; i++ {
		snap.Services = append(snap.Services, control.HubService{Service: control.Service{ID: fmt.Sprintf("svc-%05d", i), Name: fmt.Sprintf("service-%05d", i),
			Address: fmt.Sprintf("host-%05d.customer.example", i), Port: 5432, Protocol: "tcp"}, RouterRoles: []string{"edge", fmt.Sprintf("team-%d", i%100)}})
		snap.Routers = append(snap.Routers, control.HubRouter{ID: fmt.Sprintf("router-%026d", i), Roles: []string{"edge", fmt.Sprintf("team-%d", i%100)}, Cost: 5})
		snap.Identities = append(snap.Identities, control.HubIdentity{ID: fmt.Sprintf("identity-%026d", i), Roles: []string{fmt.Sprintf("apps-%d", i%100)}})
		snap.Policies = append(snap.Policies, control.HubPolicy{IdentityRoles: []string{fmt.Sprintf("apps-%d", i%100)}, ServiceNames: []string{fmt.Sprintf("service-%05d", i)}})
	}
	hubs.SetSnapshot(snap)
	var mu sync.Mutex
	var got []control.HubSnapshot
	startLarge(t, b, hubs, "h1", failing(0), control.Hello{Version: "v1", Hub: true}, func(s control.HubSnapshot) { mu.Lock(); got = append(got, s); mu.Unlock() })
	waitFor(t, 60*time.Second, "a 20 MB snapshot", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })
	s := got[0]
	if len(s.Services) != 45000 || len(s.Routers) != 45000 || len(s.Identities) != 45000 || len(s.Policies) != 45000 ||
		s.Policies[44999].ServiceNames[0] != "service-44999" {
		t.Fatalf("snapshot of %d services, %d routers, %d identities, %d policies", len(s.Services), len(s.Routers), len(s.Identities), len(s.Policies))
	}
}
