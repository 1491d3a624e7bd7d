package controlserver_test

import (
	"context"
	"crypto"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// TestControllerBackend runs the control server over the real controller's backend: its SQLite
// store and certificate issuer.
func TestControllerBackend(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ztna.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctl, err := controller.New(controller.Config{CADir: t.TempDir(), Store: st, Token: "test-token-0123456789",
		Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}}, CertLifetime: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ca, b := ctl.CA, ctl.ControlBackend()
	r := &api.Router{Name: "edge-1", Roles: []string{"edge"}}
	if err := st.CreateRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	svc := &api.Service{Name: "db", Address: "db.customer.test", Port: 5432, Protocol: api.ProtocolTCP, PortRanges: []string{"8000-8010"}, RouterRoles: []string{"edge"}}
	if err := st.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateService(ctx, &api.Service{Name: "other", Address: "o.test", Port: 1, RouterRoles: []string{"hub"}}); err != nil {
		t.Fatal(err)
	}
	c := controltest.StartWith(t, ca, b, "", controlserver.Config{HeartbeatInterval: 100 * time.Millisecond, LastSeenInterval: 200 * time.Millisecond, FlushInterval: 20 * time.Millisecond,
		Logger: log})

	cert := controltest.RouterCertificate(t, ca, r.ID, time.Hour)
	conn, err := c.Dial(t, ca, cert)
	if err != nil {
		t.Fatal(err)
	}
	conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v2.0.0", FailureDomain: "gcp/europe-west1-b",
		Image: &control.Attestation{RouterVersion: "v2.0.0", HardeningProfile: "ztna-default"}})
	expect(t, conn, control.TypeWelcome)
	var a control.Assignment
	if err := expect(t, conn, control.TypeAssignment).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if len(a.Services) != 1 || a.Services[0].ID != svc.ID || a.Services[0].Protocol != "tcp" ||
		len(a.Services[0].PortRanges) != 1 || a.Services[0].PortRanges[0] != (control.PortRange{From: 8000, To: 8010}) {
		t.Fatalf("assignment %+v", a)
	}
	// Recorded by the liveness writer's next flush, after the welcome.
	got := waitRouter(t, st, r.ID, func(r *api.Router) bool { return r.Status == api.RouterOnline })
	if got.Status != api.RouterOnline || got.Version != "v2.0.0" || got.FailureDomain != "gcp/europe-west1-b" || got.LastSeen == nil ||
		!strings.Contains(string(got.Attestation), "ztna-default") {
		t.Fatalf("router after hello: %+v", got)
	}

	conn.Send(control.TypeHeartbeat, 0, control.Heartbeat{Services: []control.ServiceHealth{{ServiceID: svc.ID, ServiceName: "db", Resolvable: true, Error: "refused"}}})
	expect(t, conn, control.TypeHeartbeatAck)
	got = waitRouter(t, st, r.ID, func(r *api.Router) bool { return len(r.Services) > 0 })
	if len(got.Services) != 1 || got.Services[0].Name != "db" || !got.Services[0].Resolvable || got.Services[0].Reachable {
		t.Fatalf("health %+v", got.Services)
	}

	// A service change reaches the router.
	if _, err := st.UpdateService(ctx, svc.ID, func(s *api.Service) error { s.Port = 5433; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := expect(t, conn, control.TypeAssignment).Decode(&a); err != nil || a.Services[0].Port != 5433 {
		t.Fatalf("updated assignment %+v %v", a, err)
	}

	// Renewal goes through the issuer, for the router's own key.
	csr, _ := pki.NewCSR(cert.PrivateKey.(crypto.Signer), "x")
	conn.Send(control.TypeRenew, 1, control.Renew{CSR: string(csr)})
	var rn control.Renewed
	for {
		env := expect(t, conn, anyType)
		if env.Type == control.TypeRenewed {
			env.Decode(&rn)
			break
		}
	}
	leaf, err := pki.ParseCertPEM([]byte(rn.Certificate))
	if err != nil {
		t.Fatalf("renewed %+v: %v", rn, err)
	}
	if kind, id, _ := pki.Identity(leaf); kind != "router" || id != r.ID {
		t.Fatalf("renewed certificate for %s/%s", kind, id)
	}

	// Deleting the router revokes the session.
	if err := st.DeleteRouter(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	var revoked bool
	for !revoked {
		env := expect(t, conn, anyType)
		revoked = env.Type == control.TypeRevoked
	}
}

// anyType makes expect accept whatever arrives.
const anyType control.Type = ""

// waitRouter polls the store until the router satisfies ok (5 s at most) and returns it.
func waitRouter(t *testing.T, st store.Store, id string, ok func(*api.Router) bool) *api.Router {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := st.GetRouter(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("router after 5s: %+v", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
