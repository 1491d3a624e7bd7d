package controlclient

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/internal/teststate"
	"github.com/ztna/ztna/router/metrics"
	"github.com/ztna/ztna/router/targets"
)

// TestHubMode: a router saying hello as a hub hands the welcome's fabric list and every hub
// snapshot to its callbacks, and gets its hub certificate through Certify.
func TestHubMode(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "h1", Name: "hub-1", Roles: []string{api.RoleHub}})
	hubs := controltest.NewHubs(b)
	fabric := []string{"127.0.0.1:1", "127.0.0.1:2"}
	ctl := controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: 200 * time.Millisecond, Hubs: hubs, Fabric: fabric, Logger: log})
	id, err := identity.Load(teststate.Write(t, ca, "h1", time.Hour, ctl.Addr).Dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var gotHubs []string
	var snaps []control.HubSnapshot
	c := &Client{Endpoints: []string{ctl.Addr}, Credentials: id, Targets: targets.NewSet(), Health: noHealth{},
		Metrics: metrics.New(prometheus.NewRegistry()), Logger: log, Hello: control.Hello{Version: "v1", Hub: true},
		OnHubs:        func(h []string) { mu.Lock(); gotHubs = h; mu.Unlock() },
		OnHubSnapshot: func(s control.HubSnapshot) { mu.Lock(); snaps = append(snaps, s); mu.Unlock() },
	}
	csr, err := id.CSR()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Certify(context.Background(), control.CertKindHub, csr); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Certify before connecting: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, 5*time.Second, "first snapshot", func() bool { mu.Lock(); defer mu.Unlock(); return len(snaps) == 1 })
	mu.Lock()
	if !slices.Equal(gotHubs, fabric) {
		t.Errorf("OnHubs got %v, want %v", gotHubs, fabric)
	}
	mu.Unlock()
	hubs.SetSnapshot(control.HubSnapshot{Identities: []control.HubIdentity{{ID: "i1", Roles: []string{"apps"}}}})
	waitFor(t, time.Second, "snapshot after a change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(snaps) == 2 && snaps[1].Identities[0].ID == "i1"
	})

	chain, err := c.Certify(ctx, control.CertKindHub, csr)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertPEM(chain)
	if err != nil {
		t.Fatal(err)
	}
	if kind, rid, err := pki.Identity(leaf); err != nil || kind != api.KindHub || rid != "h1" {
		t.Fatalf("Certify issued %s/%s (%v)", kind, rid, err)
	}
	// A refusal (here of an unknown kind) comes back as an error.
	if _, err := c.Certify(ctx, "controller", csr); err == nil {
		t.Fatal("a certificate of kind controller was issued")
	}
}
