package processes_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/router/hubmode"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// TestStandaloneHub: `ztna-router run --hub` (a router with the role hub) gets its hub
// certificate and the policy snapshot over the control channel; the edge router links to it as
// well as to the embedded hub; a client that knows only the standalone hub dials through it;
// policy changes reach it within a second, also cutting the streams a deleted policy allowed;
// and with the controller killed it still admits new dials for what it knows.
func TestStandaloneHub(t *testing.T) {
	hubAddr := harness.FreeAddr(t)
	c := harness.StartController(t, "--hub", hubAddr)
	hubID, hubDir := c.EnrolRouter(t, "hub-1", "hub")
	hub := harness.RunRouter(t, hubID, hubDir, "--hub", "--listen", hubAddr)

	port := stack.Serve(t, stack.Echo)
	s := &site{c: c}
	s.router = c.StartRouter(t, "edge-1", []string{"edge"})
	if _, err := c.API.CreateService(context.Background(), api.ServiceCreate{Name: "db", Address: "127.0.0.1", Port: port, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	harness.WaitFor(t, 10*time.Second, "edge router links to the standalone hub", func() bool {
		return hub.Metric(`ztna_hub_router_link_count{healthy="true",router="`+s.router.ID+`"}`) == 1
	})
	harness.WaitFor(t, 5*time.Second, "router assignment", func() bool { return s.router.Metric("ztna_router_assigned_services") == 1 })
	for _, f := range []string{hubmode.KeyFile, hubmode.SnapshotFile} {
		if fi, err := os.Stat(filepath.Join(hubDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v (mode %v), want 0600", f, err, fi.Mode().Perm())
		}
	}

	_, file := c.NewIdentity(t, "app", "apps")
	cl := harness.Client(t, file, hubAddr) // this client knows only the standalone hub
	if err := dialErr(cl, target); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("before the policy: %v, want not authorized", err)
	}
	policy := s.allow(t)
	within(t, time.Second, "policy created → first dial through the standalone hub", func() bool { return dialErr(cl, target) == nil })

	conn := stack.Dial(t, cl, target)
	for range 100 {
		if err := echoOnce(conn, []byte("through the standalone hub")); err != nil {
			t.Fatal(err)
		}
	}
	if got := hub.Metric(`ztna_hub_dials_total{result="ok"}`); got < 2 {
		t.Errorf("standalone hub counted %v successful dials", got)
	}

	if err := c.API.DeleteServicePolicy(context.Background(), policy); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "policy deleted → standalone hub refuses", func() bool {
		return errors.Is(dialErr(cl, target), client.ErrNotAuthorized)
	})
	// The standalone hub also cut the stream the deleted policy had allowed.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); !errors.Is(err, e2e.ErrTruncated) {
		t.Fatalf("stream after its policy was deleted: %v, want ErrTruncated", err)
	}
	s.allow(t)
	within(t, time.Second, "policy created again → dials pass", func() bool { return dialErr(cl, target) == nil })
	conn = stack.Dial(t, cl, target)

	// Headless: the controller dies; the hub keeps admitting dials it knows, and the stream
	// opened earlier keeps flowing.
	c.Proc.Kill()
	for i := range 20 {
		if err := dialErr(cl, target); err != nil {
			t.Fatalf("dial %d with the controller down: %v", i, err)
		}
	}
	if err := echoOnce(conn, []byte("still here")); err != nil {
		t.Fatalf("established stream with the controller down: %v", err)
	}

	// A hub restarted while the controller is still down serves from its saved certificate and
	// snapshot.
	hub.Kill()
	hub = harness.RunRouter(t, hubID, hubDir, "--hub", "--listen", hubAddr)
	took := harness.WaitFor(t, 15*time.Second, "dial through the restarted hub, controller down", func() bool { return dialErr(cl, target) == nil })
	t.Logf("restarted hub carried a new dial %v after its restart, with the controller down", took.Round(time.Millisecond))
}

// TestRouterLearnsHubsFromTheController: a router enrolled when the controller listed only its
// embedded hub links to a standalone hub the controller lists later (welcome over the control
// channel), without re-enrolling.
func TestRouterLearnsHubsFromTheController(t *testing.T) {
	c := harness.StartController(t)
	edge := c.StartRouter(t, "edge-1", []string{"edge"})
	hubID, hubDir := c.EnrolRouter(t, "hub-1", "hub")

	hubAddr := harness.FreeAddr(t)
	c.Restart(t, "--hub", hubAddr)
	hub := harness.RunRouter(t, hubID, hubDir, "--hub", "--listen", hubAddr)
	took := harness.WaitFor(t, 15*time.Second, "enrolled router links to the newly listed hub", func() bool {
		return hub.Metric(`ztna_hub_router_link_count{healthy="true",router="`+edge.ID+`"}`) == 1
	})
	t.Logf("linked to the new hub %v after it started", took.Round(time.Millisecond))
	if !c.RouterLinked(edge.ID) {
		t.Error("the router dropped its link to the embedded hub")
	}
}

// TestHubNeedsTheHubRole: a router without the role hub run with --hub is refused a snapshot
// and a certificate, and its log says what to do; once the operator adds the role, it starts
// serving by itself.
func TestHubNeedsTheHubRole(t *testing.T) {
	hubAddr := harness.FreeAddr(t)
	c := harness.StartController(t, "--hub", hubAddr)
	id, dir := c.EnrolRouter(t, "not-yet-a-hub", "edge")
	hub := harness.RunRouter(t, id, dir, "--hub", "--listen", hubAddr)
	harness.WaitFor(t, 10*time.Second, "the refusal in the hub's log", func() bool {
		return strings.Contains(hub.Output(), `lacks the role \"hub\": add the role to router`)
	})
	if got := hub.Metric("ztna_hub_cert_expiry_timestamp_seconds"); got != 0 {
		t.Fatalf("hub certificate expiry %v before the role was granted", got)
	}
	roles := []string{"edge", "hub"}
	if _, err := c.API.UpdateRouter(context.Background(), id, api.RouterUpdate{Roles: &roles}); err != nil {
		t.Fatal(err)
	}
	took := harness.WaitFor(t, 40*time.Second, "hub serving after the role was granted", func() bool {
		return hub.Metric("ztna_hub_cert_expiry_timestamp_seconds") > 0
	})
	t.Logf("serving %v after the role was granted (control-channel reconnect backoff)", took.Round(time.Millisecond))
}
