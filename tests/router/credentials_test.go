package router_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestRenewal: with 3-second certificates the router renews on its open control channel,
// several times, without reconnecting.
func TestRenewal(t *testing.T) {
	c := harness.StartController(t, "--cert-lifetime", "3s", "--heartbeat-interval", "500ms")
	id, key := c.NewRouter(t, "edge-1", "edge")
	state := harness.Enrol(t, key)
	first := serial(t, state)
	r := harness.RunRouter(t, id, state)
	harness.WaitFor(t, 10*time.Second, "router connected", r.Healthy)

	ok := `ztna_router_cert_renewals_total{result="ok"}`
	harness.WaitFor(t, 15*time.Second, "three renewals", func() bool { return r.Metric(ok) >= 3 })
	if n := r.Metric("ztna_router_control_reconnects_total"); n != 0 {
		t.Fatalf("%v reconnects during renewals: the control channel was dropped", n)
	}
	if got := serial(t, state); got == first {
		t.Fatal("cert.pem still holds the enrolment certificate")
	}
	if !r.Healthy() || c.GetRouter(t, id).Status != api.RouterOnline {
		t.Fatal("router not online after renewals")
	}
	t.Logf("%v renewals, 0 reconnects", r.Metric(ok))
}

func serial(t *testing.T, state string) string {
	t.Helper()
	id, err := identity.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	return id.Leaf().SerialNumber.String()
}

// TestRevocation: deleting the router in the API disconnects it within 1 s (the daemon exits
// with status 3) and its certificate is refused from then on.
func TestRevocation(t *testing.T) {
	c := harness.StartController(t, "--heartbeat-interval", "500ms")
	id, key := c.NewRouter(t, "edge-1", "edge")
	state := harness.Enrol(t, key)
	r := harness.RunRouter(t, id, state)
	harness.WaitFor(t, 10*time.Second, "router online", func() bool { return c.GetRouter(t, id).Status == api.RouterOnline })

	deleted := time.Now()
	if err := c.API.DeleteRouter(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	code, exited := r.Wait(time.Second)
	if !exited {
		t.Fatal("router still running 1s after it was deleted")
	}
	t.Logf("router exited with status %d, %v after the deletion", code, time.Since(deleted).Round(time.Millisecond))
	if code != 3 || !strings.Contains(r.Output(), "revoked") {
		t.Fatalf("exit status %d, want 3 with a revocation message:\n%s", code, r.Output())
	}

	// Its certificate is refused at the TLS handshake...
	ident, err := identity.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", c.Env["ZTNA_CONTROL_ADDR"], ident.ControlTLS())
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("control connection with the deleted router's certificate: %v", err)
	}
	// ...so a restarted router never gets its control channel back.
	again := harness.RunRouter(t, id, state)
	time.Sleep(2 * time.Second)
	if again.Healthy() {
		t.Fatal("deleted router reconnected")
	}
}
