package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

func newTestController(t *testing.T) *Controller {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(Config{CADir: dir, Store: st, Token: "0123456789abcdef0123", Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}},
		CertLifetime: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestControlBackend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newTestController(t)
	b := c.ControlBackend()
	changes := b.Subscribe(ctx)
	next := func() controlserver.Change {
		t.Helper()
		select {
		case ch := <-changes:
			return ch
		case <-time.After(time.Second):
			t.Fatal("no change within 1s")
		}
		return controlserver.Change{}
	}

	r := &api.Router{Name: "edge-a", Roles: []string{"customer-a"}}
	c.Store.CreateRouter(ctx, r)
	if ch := next(); ch.RouterID != r.ID {
		t.Fatalf("router create: %+v", ch)
	}
	c.Store.CreateService(ctx, &api.Service{Name: "db", Address: "db.example.com", Port: 5432, PortRanges: []string{"7000-7002"}, Protocol: "tcp", RouterRoles: []string{"customer-a"}})
	c.Store.CreateService(ctx, &api.Service{Name: "api", Address: "10.0.0.1", Port: 443, Protocol: "tcp", RouterRoles: []string{"customer-b"}})
	if ch := next(); ch.RouterID != "" {
		t.Fatalf("service change should concern every router: %+v", ch)
	}
	next()

	svcs, err := b.ServicesForRoles(ctx, []string{"customer-a"})
	if err != nil || len(svcs) != 1 || svcs[0].Name != "db" || !svcs[0].HasPort(7001) || svcs[0].HasPort(7003) {
		t.Fatalf("ServicesForRoles: %+v %v", svcs, err)
	}

	at := time.Now().UTC().Truncate(time.Microsecond)
	// A hello and a later heartbeat, coalesced into one report as the liveness writer does.
	if err := b.RecordStatus(ctx, []controlserver.Status{{RouterID: r.ID, Online: true, At: at,
		Hello:  &control.Hello{Version: "1.2.3", FailureDomain: "aws/eu-west-1/a", Image: &control.Attestation{RouterVersion: "1.2.3", BaseImage: "debian-12"}},
		Health: []control.ServiceHealth{{ServiceName: "db", Resolvable: true, Reachable: false, Error: "refused", CheckedAt: at}}, HealthSet: true}}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Store.GetRouter(ctx, r.ID)
	if got.Status != api.RouterOnline || got.Version != "1.2.3" || got.FailureDomain != "aws/eu-west-1/a" || len(got.Services) != 1 || got.Services[0].Error != "refused" || !got.LastSeen.Equal(at) || len(got.Attestation) == 0 {
		t.Fatalf("router after hello and heartbeat: %+v", got)
	}
	select {
	case ch := <-changes:
		t.Fatalf("status writes must not wake the control channel: %+v", ch)
	case <-time.After(100 * time.Millisecond):
	}
	if err := b.MarkStaleOffline(ctx, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Store.GetRouter(ctx, r.ID); got.Status != api.RouterOffline {
		t.Fatalf("stale router still %q", got.Status)
	}

	key, _ := pki.GenerateKey()
	csr, _ := pki.NewCSR(key, "x")
	chain, err := b.IssueRouterCertificate(ctx, r.ID, csr)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pki.ParseCertPEM(chain)
	if kind, id, _ := pki.Identity(leaf); kind != "router" || id != r.ID || time.Until(leaf.NotAfter) > time.Minute {
		t.Fatalf("renewed certificate %s/%s until %v", kind, id, leaf.NotAfter)
	}

	c.Store.DeleteRouter(ctx, r.ID)
	if ch := next(); ch.RouterID != r.ID {
		t.Fatalf("router delete: %+v", ch)
	}
	if _, err := b.Router(ctx, r.ID); !errors.Is(err, controlserver.ErrRouterNotFound) {
		t.Fatalf("deleted router: %v", err)
	}
	if _, err := b.IssueRouterCertificate(ctx, r.ID, csr); err == nil {
		t.Fatal("issued a certificate for a deleted router")
	}
	if err := c.Issuer.Authorize(api.KindRouter, r.ID); err == nil {
		t.Fatal("a deleted router's certificate is still authorised")
	}
	if err := b.RecordStatus(ctx, []controlserver.Status{{RouterID: r.ID, At: time.Now()}}); err != nil {
		t.Fatalf("offline after delete: %v", err)
	}
}
