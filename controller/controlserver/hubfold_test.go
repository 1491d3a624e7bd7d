package controlserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/embeddedhub"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

// TestStandaloneHubGetsFoldedVersions: a standalone hub's session is fed the embedded hub's
// published snapshot: 200 services created one by one reach it in a handful of versioned
// pushes (one per fold window), not one store read and push per change.
func TestStandaloneHubGetsFoldedVersions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ztna.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctl, err := controller.New(controller.Config{CADir: t.TempDir(), Store: st, Token: "test-token-0123456789",
		Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}}, CertLifetime: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &api.Router{Name: "hub-1", Roles: []string{api.RoleHub}}
	if err := st.CreateRouter(ctx, h); err != nil {
		t.Fatal(err)
	}
	published := &embeddedhub.Published{}
	e := embeddedhub.New(embeddedhub.Config{Store: st, Cert: ctl.HubCert, CA: ctl.CA.Cert, Publish: published})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ctx, ln)
	c := controltest.StartWith(t, ctl.CA, ctl.ControlBackend(), "", controlserver.Config{HeartbeatInterval: 5 * time.Second, Logger: log,
		Hubs: &embeddedhub.Backend{Store: st, CA: ctl.CA, Lifetime: time.Hour, Published: published}})
	published.Watch(c.Server.PokeHubs)
	for _, ok := published.Latest(); !ok; _, ok = published.Latest() {
		time.Sleep(5 * time.Millisecond)
	}

	conn, err := c.Dial(t, ctl.CA, controltest.RouterCertificate(t, ctl.CA, h.ID, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1", Hub: true})
	expect(t, conn, control.TypeWelcome)
	first := snapshotOf(t, expect(t, conn, control.TypeHubSnapshot))
	if first.Version == 0 {
		t.Fatal("the first snapshot is not versioned")
	}
	var mu sync.Mutex
	var last control.HubSnapshot
	go func() {
		for {
			env, err := conn.Receive()
			if err != nil {
				return
			}
			if env.Type == control.TypeHubSnapshot {
				var s control.HubSnapshot
				if env.Decode(&s) == nil {
					mu.Lock()
					if s.Version <= last.Version {
						t.Errorf("version %d after %d", s.Version, last.Version)
					}
					last = s
					mu.Unlock()
				}
			}
		}
	}()
	_, before := c.Server.Pushes()
	const n = 200
	start := time.Now()
	for i := range n {
		if err := st.CreateService(ctx, &api.Service{Name: fmt.Sprintf("svc-%03d", i), Address: "db.customer.test", Port: 5432,
			Protocol: api.ProtocolTCP, RouterRoles: []string{"edge"}}); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	for {
		mu.Lock()
		got := len(last.Services)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Since(start) > took+10*time.Second {
			t.Fatalf("the hub's last snapshot has %d services, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	reached := time.Since(start)
	_, after := c.Server.Pushes()
	limit := int64(took/embeddedhub.FoldInterval) + 3
	t.Logf("%d creates in %v: %d snapshot pushes to the standalone hub (limit %d); the last create reached it %v after the first",
		n, took.Round(time.Millisecond), after-before, limit, reached.Round(time.Millisecond))
	if after-before > limit {
		t.Fatalf("%d snapshot pushes for %d creates, want at most %d", after-before, n, limit)
	}
}
