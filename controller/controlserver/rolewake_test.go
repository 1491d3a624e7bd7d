package controlserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

// TestServiceChangeWakesOnlyItsRoles: over the real controller's backend (SQLite, the role
// index), creating, updating and deleting a service for role a pushes to the routers holding a
// and to no router of role b; moving it to role b pushes to both (it left a, it joined b).
func TestServiceChangeWakesOnlyItsRoles(t *testing.T) {
	ctx := context.Background()
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
	c := controltest.StartWith(t, ctl.CA, ctl.ControlBackend(), "", controlserver.Config{HeartbeatInterval: 5 * time.Second, Logger: log})

	const perRole = 5
	conns := map[string][]*control.Conn{}
	for _, role := range []string{"a", "b"} {
		for i := range perRole {
			r := &api.Router{Name: fmt.Sprintf("%s-%d", role, i), Roles: []string{role}}
			if err := st.CreateRouter(ctx, r); err != nil {
				t.Fatal(err)
			}
			conn, err := c.Dial(t, ctl.CA, controltest.RouterCertificate(t, ctl.CA, r.ID, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1"})
			expect(t, conn, control.TypeWelcome)
			expect(t, conn, control.TypeAssignment)
			conns[role] = append(conns[role], conn)
		}
	}
	pushes := func() int64 { n, _ := c.Server.Pushes(); return n }
	step := func(what string, change func(), roles map[string]int) {
		t.Helper()
		before := pushes()
		change()
		start := time.Now()
		want := int64(0)
		for role, n := range roles {
			for _, conn := range conns[role] {
				var a control.Assignment
				if err := expect(t, conn, control.TypeAssignment).Decode(&a); err != nil || len(a.Services) != n {
					t.Fatalf("%s: router of role %s got %d services (%v), want %d", what, role, len(a.Services), err, n)
				}
				want++
			}
		}
		took := time.Since(start)
		time.Sleep(300 * time.Millisecond) // pushes to uninvolved routers would have happened by now
		got := pushes() - before
		t.Logf("%s: %d pushes, the last %v after the change", what, got, took.Round(time.Millisecond))
		if got != want {
			t.Fatalf("%s: %d pushes, want %d (only the routers whose assignment changed)", what, got, want)
		}
	}
	svc := &api.Service{Name: "db", Address: "db.customer.test", Port: 5432, Protocol: api.ProtocolTCP, RouterRoles: []string{"a"}}
	step("create for role a", func() {
		if err := st.CreateService(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}, map[string]int{"a": 1})
	step("update for role a", func() {
		if _, err := st.UpdateService(ctx, svc.ID, func(s *api.Service) error { s.Port = 5433; return nil }); err != nil {
			t.Fatal(err)
		}
	}, map[string]int{"a": 1})
	step("move from role a to b", func() {
		if _, err := st.UpdateService(ctx, svc.ID, func(s *api.Service) error { s.RouterRoles = []string{"b"}; return nil }); err != nil {
			t.Fatal(err)
		}
	}, map[string]int{"a": 0, "b": 1})
	step("delete for role b", func() {
		if err := st.DeleteService(ctx, svc.ID); err != nil {
			t.Fatal(err)
		}
	}, map[string]int{"b": 0})
}
