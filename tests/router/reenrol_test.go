package router_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestReenrolmentSupersedes: a router enrolled again with a new registration key (its host was
// lost, say) leaves the old host's certificate without a control session — the old daemon is
// revoked (status 3) and, restarted, revoked again — and without a fabric link, while the
// re-enrolled router stays connected throughout.
func TestReenrolmentSupersedes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a controller and routers")
	}
	c := harness.StartController(t, "--heartbeat-interval", "500ms")
	id, key := c.NewRouter(t, "edge-1", "edge")
	oldState := harness.Enrol(t, key)
	old := harness.RunRouter(t, id, oldState)
	harness.WaitFor(t, 10*time.Second, "the first enrolment's router linked", func() bool { return old.Healthy() && c.RouterLinked(id) })

	// Certificate times are whole seconds, and supersession allows one of slack: the new
	// enrolment must come two seconds after the old certificate's issuance to be later for sure.
	oldIdent, err := identity.Load(oldState)
	if err != nil {
		t.Fatal(err)
	}
	issued := pki.IssuedAt(oldIdent.Leaf())
	harness.WaitFor(t, 5*time.Second, "two seconds past the old certificate", func() bool { return time.Since(issued) > 2*time.Second })

	k2, err := c.API.CreateRegistrationKey(context.Background(), api.RegistrationKeyCreate{RouterID: id, AllowReenrollment: true})
	if err != nil {
		t.Fatal(err)
	}
	newState := harness.Enrol(t, k2.Key)
	code, exited := old.Wait(10 * time.Second)
	if !exited || code != 3 || !strings.Contains(old.Output(), "enrolled again") {
		t.Fatalf("old router after the re-enrolment: exited %v status %d, want 3 (revoked: enrolled again):\n%s", exited, code, old.Output())
	}
	cur := harness.RunRouter(t, id, newState)
	harness.WaitFor(t, 10*time.Second, "the re-enrolled router linked", func() bool { return cur.Healthy() && c.RouterLinked(id) })

	// The old certificate again: revoked, and the re-enrolled router is not kicked off.
	again := harness.RunRouter(t, id, oldState)
	if code, exited := again.Wait(10 * time.Second); !exited || code != 3 {
		t.Fatalf("restarted old router: exited %v status %d, want 3:\n%s", exited, code, again.Output())
	}
	// On the fabric: refused right after the handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := fabric.Dial(ctx, c.Env["ZTNA_FABRIC_ADDR"], fabric.LinkConfig{Credentials: fabric.Credentials{Cert: oldIdent.Slot(), CA: oldIdent.CA}})
	if err == nil {
		select {
		case <-l.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the old certificate holds a fabric link after the re-enrolment")
		}
	}
	// Status reaches the API with the controller's next flush (250 ms).
	harness.WaitFor(t, 2*time.Second, "the re-enrolled router online in the API", func() bool { return c.GetRouter(t, id).Status == api.RouterOnline })
	if !cur.Healthy() || !c.RouterLinked(id) {
		t.Fatal("the re-enrolled router lost its session or link")
	}
	if n := cur.Metric("ztna_router_control_reconnects_total"); n != 0 {
		t.Fatalf("the re-enrolled router reconnected %v times: an old certificate's session kicked it off", n)
	}
}
