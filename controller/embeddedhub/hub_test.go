package embeddedhub_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/controller/embeddedhub"
	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ztna.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// populate creates one of each object the snapshot carries and returns the router.
func populate(t *testing.T, st store.Store) *api.Router {
	t.Helper()
	ctx := context.Background()
	r := &api.Router{Name: "edge-1", Roles: []string{"edge"}, Cost: 12}
	if err := st.CreateRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateService(ctx, &api.Service{Name: "db", Address: "db.customer.test", Port: 5432, PortRanges: []string{"6000-6010"},
		Protocol: api.ProtocolTCP, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	tok := &store.Key{SecretHash: make([]byte, 32), TTLSeconds: 60, ExpiresAt: time.Now().Add(time.Minute)}
	if err := st.CreateIdentity(ctx, &api.Identity{Name: "app", Roles: []string{"apps"}}, tok); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSnapshot(t *testing.T) {
	st := openStore(t)
	r := populate(t, st)
	if err := st.CreateServicePolicy(context.Background(), &api.ServicePolicy{Name: "p", IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	s, err := embeddedhub.Snapshot(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 1 || s.Services[0].Address != "db.customer.test" || s.Services[0].Port != 5432 ||
		len(s.Services[0].PortRanges) != 1 || s.Services[0].PortRanges[0].From != 6000 || s.Services[0].PortRanges[0].To != 6010 ||
		s.Services[0].RouterRoles[0] != "edge" {
		t.Errorf("services %+v", s.Services)
	}
	if len(s.Routers) != 1 || s.Routers[0].ID != r.ID || s.Routers[0].Cost != 12 || s.Routers[0].Roles[0] != "edge" {
		t.Errorf("routers %+v", s.Routers)
	}
	if len(s.Identities) != 1 || s.Identities[0].Roles[0] != "apps" {
		t.Errorf("identities %+v", s.Identities)
	}
	if len(s.Policies) != 1 || s.Policies[0].ServiceNames[0] != "db" || s.Policies[0].IdentityRoles[0] != "apps" {
		t.Errorf("policies %+v", s.Policies)
	}
}

func TestAffects(t *testing.T) {
	tests := []struct {
		c    store.Change
		want bool
	}{
		{store.Change{Collection: store.ServicePolicies, Op: store.OpDelete}, true},
		{store.Change{Collection: store.Identities, Op: store.OpUpdate}, true},
		{store.Change{Collection: store.Services, Op: store.OpCreate}, true},
		{store.Change{Collection: store.Routers, Op: store.OpUpdate}, true},
		{store.Change{Collection: store.All}, true},
		{store.Change{Collection: store.Routers, Op: store.OpState}, false},
		{store.Change{Collection: store.Keys, Op: store.OpCreate}, false},
		{store.Change{Collection: store.Keys, Op: store.OpUpdate}, true}, // a router enrolled again
	}
	for _, tt := range tests {
		if got := embeddedhub.Affects(tt.c); got != tt.want {
			t.Errorf("Affects(%+v) = %v", tt.c, got)
		}
	}
}

// gauge reads a gauge series from reg (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetGauge().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// hubCertificate makes a CA and the embedded hub's server certificate from it.
func hubCertificate(t *testing.T) (*pki.CA, *tls.Certificate) {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	iss, key, err := ca.IssueServer(api.KindHub, "ctl", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert
}

// TestEmbeddedFollowsTheStore: the embedded hub installs the store's snapshot when it starts
// and a new one within a second of a policy change, but not for router status reports.
func TestEmbeddedFollowsTheStore(t *testing.T) {
	st := openStore(t)
	r := populate(t, st)
	ca, cert := hubCertificate(t)
	reg := prometheus.NewRegistry()
	e := embeddedhub.New(embeddedhub.Config{Store: st, Cert: pki.NewCertSlot(cert), CA: ca.Cert, Metrics: reg})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Serve(ctx, ln)

	wait := func(what string, cond func() bool) time.Duration {
		t.Helper()
		begin := time.Now()
		for !cond() {
			if time.Since(begin) > time.Second {
				t.Fatalf("%s: not within 1s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(begin)
	}
	policies := func() float64 { return gauge(t, reg, "ztna_hub_snapshot_objects", "collection", "policies") }
	wait("initial snapshot", e.Node().HasSnapshot)
	if policies() != 0 {
		t.Fatalf("policies in the initial snapshot: %v", policies())
	}
	p := &api.ServicePolicy{Name: "p", IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}}
	if err := st.CreateServicePolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Logf("policy created → installed in %v", wait("policy in the snapshot", func() bool { return policies() == 1 }))
	if err := st.DeleteServicePolicy(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("policy deleted → gone in %v", wait("policy gone from the snapshot", func() bool { return policies() == 0 }))

	installed := gauge(t, reg, "ztna_hub_snapshot_timestamp_seconds", "", "")
	online := api.RouterOnline
	if err := st.SetRouterState(ctx, r.ID, store.RouterState{Status: &online}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := gauge(t, reg, "ztna_hub_snapshot_timestamp_seconds", "", ""); got != installed {
		t.Error("a router status report rebuilt the snapshot")
	}
}

func TestIssueHubCertificate(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	b := &embeddedhub.Backend{Store: st, CA: ca, Lifetime: time.Hour}
	edge := populate(t, st)
	h := &api.Router{Name: "hub-1", Roles: []string{api.RoleHub}}
	if err := st.CreateRouter(ctx, h); err != nil {
		t.Fatal(err)
	}
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "anything")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := b.IssueHubCertificate(ctx, h.ID, csr)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	if kind, id, err := pki.Identity(cert.Leaf); err != nil || kind != api.KindHub || id != h.ID {
		t.Fatalf("issued %s/%s (%v)", kind, id, err)
	}
	if _, err := b.IssueHubCertificate(ctx, edge.ID, csr); !errors.Is(err, embeddedhub.ErrNotHub) {
		t.Errorf("router without the hub role: %v", err)
	}
	if _, err := b.IssueHubCertificate(ctx, "ghost", csr); !errors.Is(err, issuer.ErrSubjectGone) {
		t.Errorf("unknown router: %v", err)
	}
	if _, err := b.IssueHubCertificate(ctx, h.ID, []byte("garbage")); !errors.Is(err, issuer.ErrBadCSR) {
		t.Errorf("bad CSR: %v", err)
	}
}

// TestEmbeddedFoldsChanges: 200 services created one by one cause a handful of rebuilds (one
// per FoldInterval at most, plus the first), not one per change, and the last service is in
// the snapshot the hub ends with.
func TestEmbeddedFoldsChanges(t *testing.T) {
	st := openStore(t)
	populate(t, st)
	ca, cert := hubCertificate(t)
	reg := prometheus.NewRegistry()
	e := embeddedhub.New(embeddedhub.Config{Store: st, Cert: pki.NewCertSlot(cert), CA: ca.Cert, Metrics: reg})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Serve(ctx, ln)
	builds := func() float64 { return counter(t, reg, "ztna_hub_snapshot_builds_total") }
	for builds() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	const n = 200
	start := time.Now()
	for i := range n {
		if err := st.CreateService(ctx, &api.Service{Name: fmt.Sprintf("svc-%03d", i), Address: "db.customer.test", Port: 5432,
			Protocol: api.ProtocolTCP, RouterRoles: []string{"edge"}}); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	services := func() float64 { return gauge(t, reg, "ztna_hub_snapshot_objects", "collection", "services") }
	for services() != n+1 {
		if time.Since(start) > took+5*time.Second {
			t.Fatalf("snapshot has %v services, want %d", services(), n+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rebuilds := builds() - 1
	// One window per FoldInterval while the creates ran, one more for the changes after the
	// last window closed, and one of slack for a window opening just before the loop.
	limit := float64(took/embeddedhub.FoldInterval) + 3
	t.Logf("%d creates in %v caused %v rebuilds (limit %v)", n, took.Round(time.Millisecond), rebuilds, limit)
	if rebuilds > limit || rebuilds > n/4 {
		t.Fatalf("%v rebuilds for %d creates in %v, want at most %v", rebuilds, n, took, limit)
	}
}

// counter reads a single-series counter from reg (-1 when absent).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
