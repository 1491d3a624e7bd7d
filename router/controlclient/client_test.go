package controlclient

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
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
)

type noHealth struct{}

func (noHealth) Results() []control.ServiceHealth {
	return []control.ServiceHealth{{ServiceID: "s1", ServiceName: "db", Address: "db.test", Port: 5432, Resolvable: true}}
}

type rig struct {
	backend *controltest.Backend
	ctl     *controltest.Controller
	id      *identity.Identity
	client  *Client
	reg     *prometheus.Registry
	done    chan error
	cancel  context.CancelFunc
}

// start runs a control server and a client for router r1 (roles edge) with certificates of the
// given lifetime.
func start(t *testing.T, lifetime time.Duration) *rig {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, lifetime)
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	ctl := controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: 200 * time.Millisecond, Logger: log.With("side", "controller")})
	st := teststate.Write(t, ca, "r1", lifetime, ctl.Addr)
	id, err := identity.Load(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := &Client{
		Endpoints: []string{ctl.Addr}, Credentials: id, Targets: targets.NewSet(), Health: noHealth{},
		Metrics: metrics.New(reg), Logger: log.With("side", "router"),
		Hello: control.Hello{Version: "v9.9.9", FailureDomain: "zone-a"},
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{backend: b, ctl: ctl, id: id, client: c, reg: reg, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestConnectReportAndAssign(t *testing.T) {
	r := start(t, time.Hour)
	waitFor(t, 5*time.Second, "router online", func() bool { return r.backend.Status("r1").Online && r.client.Connected() })
	st := r.backend.Status("r1")
	if st.Hello.Version != "v9.9.9" || st.Hello.FailureDomain != "zone-a" || st.Hello.Protocol != control.ProtocolVersion {
		t.Fatalf("recorded hello %+v", st.Hello)
	}
	waitFor(t, 2*time.Second, "heartbeat with health", func() bool { return len(r.backend.Status("r1").Health) == 1 })
	waitFor(t, 2*time.Second, "initial (empty) assignment", r.client.Targets.Loaded)

	r.backend.PutService(controltest.Service{Service: control.Service{ID: "other", Address: "other.test", Port: 1}, RouterRoles: []string{"hub"}})
	created := time.Now()
	r.backend.PutService(controltest.Service{Service: control.Service{ID: "db", Name: "db", Address: "db.test", Port: 5432}, RouterRoles: []string{"edge"}})
	waitFor(t, time.Second, "assignment of a matching service", func() bool { return r.client.Targets.Allowed("db.test", 5432) })
	t.Logf("assignment arrived %v after the service was created", time.Since(created).Round(time.Millisecond))
	if r.client.Targets.Allowed("other.test", 1) {
		t.Fatal("a service for other roles was assigned")
	}
	if got := metricValue(t, r.reg, "ztna_router_assigned_services"); got != 1 {
		t.Fatalf("assigned services metric %v", got)
	}
}

// metricValue returns the value of a registered single-series gauge or counter.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestRenewalsKeepTheSession(t *testing.T) {
	r := start(t, 2*time.Second)
	waitFor(t, 5*time.Second, "router online", r.client.Connected)
	first := r.id.Leaf().SerialNumber
	// 2 s certificates renewed at two thirds: at least three renewals in 5 s. Had a renewal failed
	// or the session dropped, the certificate would expire and the controller would close it.
	time.Sleep(5 * time.Second)
	if n := r.backend.Issued(); n < 3 {
		t.Fatalf("%d renewals in 5s, want at least 3", n)
	}
	if r.id.Leaf().SerialNumber.Cmp(first) == 0 {
		t.Fatal("certificate never replaced")
	}
	if got := metricValue(t, r.reg, "ztna_router_control_reconnects_total"); got != 0 {
		t.Fatalf("%v reconnects during renewals, want 0", got)
	}
	if !r.client.Connected() || !r.backend.Status("r1").Online {
		t.Fatal("session lost")
	}
}

func TestRevocation(t *testing.T) {
	r := start(t, time.Hour)
	waitFor(t, 5*time.Second, "router online", r.client.Connected)
	deleted := time.Now()
	r.backend.DeleteRouter("r1")
	select {
	case err := <-r.done:
		if !errors.Is(err, ErrRevoked) {
			t.Fatalf("Run returned %v, want ErrRevoked", err)
		}
		t.Logf("router disconnected %v after deletion", time.Since(deleted).Round(time.Millisecond))
		r.done <- err // for the cleanup
	case <-time.After(time.Second):
		t.Fatal("router not disconnected within 1s of deletion")
	}
	if time.Since(deleted) > time.Second {
		t.Fatal("too slow")
	}
	// The certificate is refused from then on, at the TLS handshake.
	c, err := tls.Dial("tcp", r.ctl.Addr, r.id.ControlTLS())
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("reconnect with the revoked certificate: err = %v, want the controller's bad certificate alert", err)
	}
}

func TestReconnectsAfterControllerRestart(t *testing.T) {
	r := start(t, time.Hour)
	waitFor(t, 5*time.Second, "router online", r.client.Connected)
	r.ctl.Stop()
	waitFor(t, 2*time.Second, "router notices the controller is gone", func() bool { return !r.client.Connected() })
	// Same address, fresh server state: the router must come back by itself.
	r.ctl = controltest.Start(t, r.backend, r.ctl.Addr, controlserver.Config{HeartbeatInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	took := waitFor(t, 5*time.Second, "router reconnects", func() bool { return r.client.Connected() && r.backend.Status("r1").Online })
	t.Logf("reconnected %v after the controller restarted", took.Round(time.Millisecond))
}
