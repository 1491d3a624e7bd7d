package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/preflight"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// TestLearnedHubHeadlessRestart: a router enrolled while the controller listed only its
// embedded hub learns a standalone hub from the welcome once the controller lists it, saves it
// (hubs.json), and `status` and `preflight` report and check it. Then the router and the
// controller are killed and the router restarted while the controller stays down: it links to
// the learned hub by itself, and a client that knows only that hub dials the service through it.
func TestLearnedHubHeadlessRestart(t *testing.T) {
	ctx := context.Background()
	c := harness.StartController(t)
	id, dir := c.EnrolRouter(t, "edge-1", "edge")
	hubID, hubDir := c.EnrolRouter(t, "hub-1", "hub")
	hubAddr := harness.FreeAddr(t)
	c.Restart(t, "--hub", hubAddr)
	hub := harness.RunRouter(t, hubID, hubDir, "--hub", "--listen", hubAddr)
	echoPort := stack.Serve(t, stack.Echo)
	echo := net.JoinHostPort("127.0.0.1", strconv.Itoa(echoPort))
	if _, err := c.API.CreateService(ctx, api.ServiceCreate{Name: "db", Address: "127.0.0.1", Port: echoPort, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.API.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "apps-db", IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	_, file := c.NewIdentity(t, "app", "apps")
	cl := harness.Client(t, file, hubAddr) // knows only the standalone hub

	var enrolled api.EnrolledConfig
	if raw, err := os.ReadFile(filepath.Join(dir, "config.json")); err != nil || json.Unmarshal(raw, &enrolled) != nil || slices.Contains(enrolled.Fabric, hubAddr) {
		t.Fatalf("config.json lists %v (%v); the standalone hub must be unknown at enrolment", enrolled.Fabric, err)
	}
	r := harness.RunRouter(t, id, dir)
	linked := func(r *harness.Router) func() bool {
		return func() bool { return hub.Metric(`ztna_hub_router_link_count{healthy="true",router="`+r.ID+`"}`) == 1 }
	}
	harness.WaitFor(t, 15*time.Second, "router links to the hub it learned", linked(r))
	learned, err := daemon.LearnedHubs(dir, enrolled)
	if err != nil || !slices.Contains(learned, hubAddr) {
		t.Fatalf("%s: %v (%v), want %s in it", daemon.HubsFile, learned, err, hubAddr)
	}
	harness.WaitFor(t, 10*time.Second, "a dial through the standalone hub", func() bool { return echoDial(cl, echo) == nil })

	out, code := harness.Run(t, "ztna-router", "status", "--state-dir", dir, "--local-addr", r.Local, "--json")
	var st struct {
		Fabric         []string `json:"fabric"`
		LearnedControl []string `json:"learned_control"`
		LearnedFabric  []string `json:"learned_fabric"`
		Daemon         struct{ Running bool }
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !slices.Equal(st.Fabric, enrolled.Fabric) ||
		!slices.Equal(st.LearnedFabric, learned) || !st.Daemon.Running {
		t.Fatalf("status --json (exit %d):\n%s", code, out)
	}
	out, code = harness.Run(t, "ztna-router", "status", "--state-dir", dir, "--local-addr", r.Local)
	if code != 0 || !strings.Contains(out, "hubs") || !strings.Contains(out, hubAddr+" (learned from the controller; instead of the enrolled: "+enrolled.Fabric[0]+")") {
		t.Fatalf("status (exit %d) does not show the learned hubs:\n%s", code, out)
	}
	t.Logf("status:\n%s", out)
	out, code = harness.Run(t, "ztna-router", "preflight", "--state-dir", dir, "--json", "--timeout", "3s")
	var rep preflight.Report
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil || code != 0 || !rep.OK {
		t.Fatalf("preflight (exit %d, %v):\n%s", code, err, out)
	}
	checked := map[string]string{} // "tls addr (plane)" → source
	for _, res := range rep.Results {
		checked[res.Check+" "+res.Target] = res.Source
	}
	controlSource := preflight.SourceEnrolled // the router saves a control list only when it differs from the enrolled one
	if len(st.LearnedControl) > 0 {
		controlSource = preflight.SourceLearned
	}
	for target, source := range map[string]string{
		hubAddr + " (fabric)":              preflight.SourceLearned,
		enrolled.Control[0] + " (control)": controlSource,
	} {
		if got, ok := checked[preflight.CheckTLS+" "+target]; !ok || got != source {
			t.Errorf("preflight: TLS check of %s has source %q (checked: %v), want %q", target, got, ok, source)
		}
	}

	r.Proc.Kill()
	c.Proc.Kill()
	restarted := time.Now()
	r = harness.RunRouter(t, id, dir)
	harness.WaitFor(t, 15*time.Second, "restarted router links to the learned hub with the controller down", func() bool {
		return r.Metric("ztna_router_hub_links") == 1 && linked(r)()
	})
	took := harness.WaitFor(t, 10*time.Second, "a dial through the standalone hub with the controller down", func() bool { return echoDial(cl, echo) == nil })
	t.Logf("controller down: restarted router serves through the learned hub %v after its start (dial ok after %v of retries)",
		time.Since(restarted).Round(time.Millisecond), took.Round(time.Millisecond))
}

// echoDial dials addr through the overlay and checks one echo.
func echoDial(cl *client.Client, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := cl.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "ping"); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if string(got) != "ping" {
		return fmt.Errorf("echo %q", got)
	}
	return nil
}
