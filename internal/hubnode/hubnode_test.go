package hubnode_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/hubnode"
)

func snapshot(routers ...string) control.HubSnapshot {
	s := control.HubSnapshot{
		Services:   []control.HubService{{Service: control.Service{ID: "s1", Name: "db", Address: "db.test", Port: 5432}, RouterRoles: []string{"edge"}}},
		Identities: []control.HubIdentity{{ID: "i1", Roles: []string{"apps"}}},
		Policies:   []control.HubPolicy{{IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}}},
	}
	for _, r := range routers {
		s.Routers = append(s.Routers, control.HubRouter{ID: r, Roles: []string{"edge"}, Cost: 7})
	}
	return s
}

func TestConvert(t *testing.T) {
	got := hubnode.Convert(snapshot("r1"))
	if len(got.Services) != 1 || got.Services[0].Name != "db" || got.Services[0].Port != 5432 || got.Services[0].RouterRoles[0] != "edge" ||
		len(got.Routers) != 1 || got.Routers[0].ID != "r1" || got.Routers[0].Cost != 7 ||
		got.Identities[0].ID != "i1" || got.Policies[0].ServiceNames[0] != "db" {
		t.Fatalf("Convert = %+v", got)
	}
}

// serve runs a node on loopback and returns it with its address.
func serve(t *testing.T, p *fabrictest.PKI, reg prometheus.Registerer) (*hubnode.Node, string) {
	t.Helper()
	n := hubnode.New(hub.Config{Credentials: p.Credentials(api.KindHub, "h"), Metrics: reg})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go n.Serve(ctx, ln)
	return n, ln.Addr().String()
}

func link(p *fabrictest.PKI, addr, kind, id string) (*fabric.Link, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := fabric.Dial(ctx, addr, fabric.LinkConfig{Credentials: p.Credentials(kind, id)})
	if err != nil {
		return nil, err
	}
	// TLS 1.3 reports a refused client certificate on the first read, not in the handshake.
	select {
	case <-l.Done():
		return nil, l.Err()
	case <-time.After(300 * time.Millisecond):
		return l, nil
	}
}

// TestAdmission: a router or identity is admitted only while the snapshot lists it.
func TestAdmission(t *testing.T) {
	p := fabrictest.New(t)
	n, addr := serve(t, p, nil)
	if _, err := link(p, addr, api.KindRouter, "r1"); err == nil {
		t.Fatal("router admitted before any snapshot")
	}
	n.Update(snapshot("r1"))
	if !n.HasSnapshot() {
		t.Fatal("HasSnapshot false after Update")
	}
	for _, peer := range [][2]string{{api.KindRouter, "r1"}, {api.KindIdentity, "i1"}} {
		l, err := link(p, addr, peer[0], peer[1])
		if err != nil {
			t.Fatalf("%s/%s refused: %v", peer[0], peer[1], err)
		}
		l.Close()
	}
	for _, peer := range [][2]string{{api.KindRouter, "r2"}, {api.KindIdentity, "i2"}} {
		if _, err := link(p, addr, peer[0], peer[1]); err == nil {
			t.Fatalf("%s/%s admitted though the snapshot does not list it", peer[0], peer[1])
		}
	}
	n.Update(snapshot()) // r1 deleted at the controller
	if _, err := link(p, addr, api.KindRouter, "r1"); err == nil {
		t.Fatal("deleted router admitted")
	}
}

// TestMetrics: a linked router's health, RTT, load and static cost are exported.
func TestMetrics(t *testing.T) {
	p := fabrictest.New(t)
	reg := prometheus.NewRegistry()
	n, addr := serve(t, p, reg)
	n.Update(snapshot("r1"))
	l, err := link(p, addr, api.KindRouter, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(5 * time.Second)
	want := `
# HELP ztna_hub_router_link_count Links from a router to this hub, by health (healthy: the router answered within three keepalive intervals).
# TYPE ztna_hub_router_link_count gauge
ztna_hub_router_link_count{healthy="false",router="r1"} 0
ztna_hub_router_link_count{healthy="true",router="r1"} 1
# HELP ztna_hub_router_static_cost_milliseconds Operator-set static cost of a linked router (from the snapshot), added to RTT and load when routing.
# TYPE ztna_hub_router_static_cost_milliseconds gauge
ztna_hub_router_static_cost_milliseconds{router="r1"} 7
# HELP ztna_hub_router_streams Streams open to a router over its links; its load, part of its routing cost.
# TYPE ztna_hub_router_streams gauge
ztna_hub_router_streams{router="r1"} 0
# HELP ztna_hub_snapshot_objects Objects in the policy snapshot in use.
# TYPE ztna_hub_snapshot_objects gauge
ztna_hub_snapshot_objects{collection="identities"} 1
ztna_hub_snapshot_objects{collection="policies"} 1
ztna_hub_snapshot_objects{collection="routers"} 1
ztna_hub_snapshot_objects{collection="services"} 1
`
	names := []string{"ztna_hub_router_link_count", "ztna_hub_router_static_cost_milliseconds", "ztna_hub_router_streams", "ztna_hub_snapshot_objects"}
	for {
		err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The RTT appears once a keepalive came back.
	for !exported(t, reg, "ztna_hub_router_rtt_seconds") {
		if time.Now().After(deadline) {
			t.Fatal("no RTT exported for the healthy link")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exported(t *testing.T, reg *prometheus.Registry, name string) bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}
