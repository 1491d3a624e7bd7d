package controlserver_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

var fabricAddrs = []string{"hub-a.example:80", "hub-b.example:80"}

// hubRig is a control server with hub support, router r1 (role edge) and h1 (role hub).
type hubRig struct {
	*controltest.Backend
	hubs *controltest.Hubs
	snap control.HubSnapshot
}

// setPolicies replaces the snapshot's policies.
func (h *hubRig) setPolicies(p ...control.HubPolicy) {
	h.snap.Policies = p
	h.hubs.SetSnapshot(h.snap)
}

func hubSetup(t *testing.T) (*hubRig, *controltest.Controller) {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	b := controltest.NewBackend(ca, time.Hour)
	h := &hubRig{Backend: b, hubs: controltest.NewHubs(b)}
	h.snap = control.HubSnapshot{Services: []control.HubService{{Service: control.Service{ID: "s1", Name: "db", Address: "db.test", Port: 5432}, RouterRoles: []string{"edge"}}},
		Routers:    []control.HubRouter{{ID: "r1", Roles: []string{"edge"}, Cost: 5}},
		Identities: []control.HubIdentity{{ID: "i1", Roles: []string{"apps"}}}}
	h.hubs.SetSnapshot(h.snap)
	h.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	h.PutRouter(controlserver.Router{ID: "h1", Name: "hub-1", Roles: []string{api.RoleHub}})
	c := controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: time.Second, Hubs: h.hubs, Fabric: fabricAddrs,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	return h, c
}

// dialAs opens a control connection as router id and sends hello.
func dialAs(t *testing.T, h *hubRig, c *controltest.Controller, id string, hub bool) *control.Conn {
	t.Helper()
	conn, err := c.Dial(t, h.CA, controltest.RouterCertificate(t, h.CA, id, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1", Hub: hub}); err != nil {
		t.Fatal(err)
	}
	return conn
}

func snapshotOf(t *testing.T, env control.Envelope) control.HubSnapshot {
	t.Helper()
	var s control.HubSnapshot
	if err := env.Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHubSessionGetsSnapshots: a router with the hub role saying hello as a hub gets the fabric
// list in its welcome, the snapshot before its assignment, and a new snapshot right after a
// policy change — which routers that are not hubs never see.
func TestHubSessionGetsSnapshots(t *testing.T) {
	h, c := hubSetup(t)
	hub := dialAs(t, h, c, "h1", true)
	var w control.Welcome
	if err := expect(t, hub, control.TypeWelcome).Decode(&w); err != nil || !slices.Equal(w.Fabric, fabricAddrs) {
		t.Fatalf("welcome %+v (%v), want fabric %v", w, err, fabricAddrs)
	}
	if s := snapshotOf(t, expect(t, hub, control.TypeHubSnapshot)); len(s.Services) != 1 || s.Routers[0].Cost != 5 || s.Identities[0].ID != "i1" || len(s.Policies) != 0 {
		t.Fatalf("first snapshot %+v", s)
	}
	expect(t, hub, control.TypeAssignment)

	router := dialAs(t, h, c, "r1", false)
	expect(t, router, control.TypeWelcome)
	expect(t, router, control.TypeAssignment)

	begin := time.Now()
	h.setPolicies(control.HubPolicy{IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}})
	s := snapshotOf(t, expect(t, hub, control.TypeHubSnapshot))
	if len(s.Policies) != 1 || s.Policies[0].ServiceNames[0] != "db" {
		t.Fatalf("snapshot after the policy change: %+v", s)
	}
	t.Logf("policy change reached the hub in %v", time.Since(begin))

	// The plain router hears nothing about it (a heartbeat ack is the next thing it gets).
	router.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: time.Now()})
	expect(t, router, control.TypeHeartbeatAck)

	// An unchanged snapshot is not sent again: after a no-op change, the next message is the ack.
	h.setPolicies(s.Policies...)
	time.Sleep(100 * time.Millisecond)
	hub.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: time.Now()})
	expect(t, hub, control.TypeHeartbeatAck)
}

// TestHubCertificate: a hub session gets ztna://hub/<its id> for its CSR; a router that is not a
// hub asking for one is refused, and so is an unknown certificate kind.
func TestHubCertificate(t *testing.T) {
	h, c := hubSetup(t)
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "hub")
	if err != nil {
		t.Fatal(err)
	}
	hub := dialAs(t, h, c, "h1", true)
	expect(t, hub, control.TypeWelcome)
	expect(t, hub, control.TypeHubSnapshot)
	expect(t, hub, control.TypeAssignment)
	hub.Send(control.TypeRenew, 3, control.Renew{CSR: string(csr), Kind: control.CertKindHub})
	var r control.Renewed
	if env := expect(t, hub, control.TypeRenewed); env.ID != 3 || env.Decode(&r) != nil || r.Error != "" {
		t.Fatalf("renewed %d %s", env.ID, env.Body)
	}
	cert, err := pki.TLSCertificate([]byte(r.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	if kind, id, err := pki.Identity(cert.Leaf); err != nil || kind != api.KindHub || id != "h1" {
		t.Fatalf("hub certificate names %s/%s (%v)", kind, id, err)
	}

	router := dialAs(t, h, c, "r1", false)
	expect(t, router, control.TypeWelcome)
	expect(t, router, control.TypeAssignment)
	for _, kind := range []string{control.CertKindHub, "controller"} {
		router.Send(control.TypeRenew, 4, control.Renew{CSR: string(csr), Kind: kind})
		var r control.Renewed
		if env := expect(t, router, control.TypeRenewed); env.Decode(&r) != nil || r.Error == "" || r.Certificate != "" {
			t.Fatalf("kind %s: renewed %s", kind, env.Body)
		}
	}
}

// TestHubRoleRequired: hello as a hub without the hub role is refused naming the fix, and a hub
// whose role is taken away is disconnected.
func TestHubRoleRequired(t *testing.T) {
	h, c := hubSetup(t)
	conn := dialAs(t, h, c, "r1", true)
	var e control.Error
	if err := expect(t, conn, control.TypeError).Decode(&e); err != nil || !strings.Contains(e.Message, `lacks the role "hub"`) {
		t.Fatalf("error %q (%v)", e.Message, err)
	}

	hub := dialAs(t, h, c, "h1", true)
	expect(t, hub, control.TypeWelcome)
	expect(t, hub, control.TypeHubSnapshot)
	expect(t, hub, control.TypeAssignment)
	h.PutRouter(controlserver.Router{ID: "h1", Name: "hub-1", Roles: []string{"edge"}})
	last := closedWithin(t, hub, 2*time.Second)
	if last.Type != control.TypeError || last.Decode(&e) != nil || !strings.Contains(e.Message, "lacks the role") {
		t.Fatalf("last message before close: %s %s", last.Type, last.Body)
	}
}

// TestHubsRefusedWithoutBackend: a controller without a hub backend refuses hub sessions.
func TestHubsRefusedWithoutBackend(t *testing.T) {
	b, c := setup(t)
	conn, err := c.Dial(t, b.CA, controltest.RouterCertificate(t, b.CA, "r1", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Hub: true})
	var e control.Error
	if err := expect(t, conn, control.TypeError).Decode(&e); err != nil || !strings.Contains(e.Message, "does not serve standalone hubs") {
		t.Fatalf("error %q (%v)", e.Message, err)
	}
}
