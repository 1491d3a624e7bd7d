package ztnaprovider

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/nettest"
)

// TestAccRedundantRouterModule_rolling applies examples/modules/redundant-router with two netns
// hosts serving an echo service on the host's loopback and, with a client dialling it through
// the overlay without pause (dialLoop: four dials in progress at all times, each held open a
// quarter second), applies
//
//	(a) a service added: in-place updates of both hosts only, no router restarts, the new
//	    service answers through the overlay;
//	(b) a tag change: in-place updates only (a local host keeps tags in state), no restarts;
//	(c) an image change (local hosts: the image label, and a router_binary that is another
//	    file, the local equivalent of a new image): each host is replaced by a new host with
//	    a new router, b's only after a's is online, the old ones destroyed only after both
//	    replacements are online, and each drains before it goes;
//
// and requires 0 failed dials in each. Needs root (network namespaces).
func TestAccRedundantRouterModule_rolling(t *testing.T) {
	needController(t)
	if os.Geteuid() != 0 {
		t.Skip("isolation \"netns\" needs root")
	}
	name := hostTestName("roll")
	root := t.TempDir()
	bin := hostTestBinary(t, "ztna-router")
	echoPort := nettest.Serve(t, func(c net.Conn) { io.Copy(c, c); c.Close() }).Port
	secondPort := nettest.Serve(t, func(c net.Conn) { io.Copy(c, c); c.Close() }).Port

	placement := func(image, binary string) map[string]any {
		return map[string]any{"image": image, "local": map[string]any{"state_root": root, "router_binary": binary, "isolation": "netns"}}
	}
	vars := func(image, binary string, tags map[string]string) map[string]any {
		v := map[string]any{"name": name, "roles": []string{name}, "placements": []any{placement(image, binary), placement(image, binary)}}
		if tags != nil {
			v["tags"] = tags
		}
		return v
	}
	cli := moduleCLI(t, vars("router-v1", bin, nil))
	cli.write("acc.tf", rollingServices(name, echoPort, 0))
	// The services first, so that the hosts' allowlists hold them from the start.
	cli.run(false, "apply", "-auto-approve", "-input=false", "-target=ztna_service.echo", "-target=ztna_service_policy.client")
	cli.run(false, "apply", "-auto-approve", "-input=false")
	t.Cleanup(func() { cli.run(false, "destroy", "-auto-approve", "-input=false") })

	var token string
	cli.outputJSON("identity_token", &token)
	identity := filepath.Join(t.TempDir(), "client.identity")
	if err := enrollToken(t, token, identity); err != nil {
		t.Fatal(err)
	}
	if err := waitServiceReachable(t, stateAttr(t, cli, "ztna_service.echo", "id"), 2); err != nil {
		t.Fatal(err)
	}
	dialer := startDialLoop(t, identity, net.JoinHostPort("127.0.0.1", strconv.Itoa(echoPort)))
	dialer.expectClean(t, "the first apply") // the loop works before anything changes

	var hosts []string
	cli.outputJSON("host_names", &hosts)
	pids := func() []int {
		var out []int
		for _, h := range hosts {
			p := routerProcesses(filepath.Join(root, h))
			if len(p) != 1 {
				t.Fatalf("router processes of %s: %v", h, p)
			}
			out = append(out, p[0])
		}
		return out
	}
	before := pids()

	// (a) A service is added: created in this run, it reaches the hosts' firewalls on the next.
	cli.write("acc.tf", rollingServices(name, echoPort, secondPort))
	cli.run(false, "apply", "-auto-approve", "-input=false")
	out := cli.run(false, "apply", "-auto-approve", "-input=false")
	for _, want := range []string{"module.a.ztna_router_host.this: Modifying...", "module.b.ztna_router_host.this: Modifying...", "0 added, 2 changed, 0 destroyed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the apply after adding a service lacks %q:\n%s", want, out)
		}
	}
	if now := pids(); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("routers restarted by the service change: pids %v, were %v", now, before)
	}
	if err := waitServiceReachable(t, stateAttr(t, cli, "ztna_service.second", "id"), 2); err != nil {
		t.Fatal(err)
	}
	if err := dialEcho(context.Background(), dialer.client, net.JoinHostPort("127.0.0.1", strconv.Itoa(secondPort))); err != nil {
		t.Fatalf("the added service through the overlay: %v", err)
	}
	dialer.expectClean(t, "the service change")

	// (b) A tag change: in place, no restarts.
	writeVars(t, cli, vars("router-v1", bin, map[string]string{"team": "edge"}))
	out = cli.run(false, "apply", "-auto-approve", "-input=false")
	if !strings.Contains(out, "0 added, 2 changed, 0 destroyed") {
		t.Fatalf("the tag change is not two in-place updates:\n%s", out)
	}
	if now := pids(); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("routers restarted by the tag change: pids %v, were %v", now, before)
	}
	dialer.expectClean(t, "the tag change")

	// (c) An image change: a new image label and a new router binary.
	bin2 := filepath.Join(t.TempDir(), "ztna-router-v2")
	copyFile(t, bin, bin2)
	var oldRouters []string
	cli.outputJSON("router_ids", &oldRouters)
	writeVars(t, cli, vars("router-v2", bin2, map[string]string{"team": "edge"}))
	out = cli.run(false, "apply", "-auto-approve", "-input=false")
	if !strings.Contains(out, "4 added, 2 changed, 4 destroyed") { // a router and a host per slot; the generation record
		t.Fatalf("the image change is not a replacement of both routers and hosts:\n%s", out)
	}
	checkRollingOrder(t, out)
	dialer.expectClean(t, "the image change")

	var newHosts, newRouters []string
	cli.outputJSON("host_names", &newHosts)
	cli.outputJSON("router_ids", &newRouters)
	for i := range hosts {
		if newHosts[i] == hosts[i] || newRouters[i] == oldRouters[i] {
			t.Fatalf("slot %d kept its host %s or router %s", i, hosts[i], oldRouters[i])
		}
		if _, err := os.Stat(filepath.Join(root, hosts[i])); !os.IsNotExist(err) {
			t.Errorf("the replaced host %s's state directory is left (%v)", hosts[i], err)
		}
		if _, err := apiClient(t).GetRouter(context.Background(), oldRouters[i]); err == nil {
			t.Errorf("the replaced router %s is still on the controller", oldRouters[i])
		}
		r, err := apiClient(t).GetRouter(context.Background(), newRouters[i])
		if err != nil || r.Status != api.RouterOnline {
			t.Errorf("new router %s: %+v, %v", newRouters[i], r, err)
		}
		if p := routerProcesses(filepath.Join(root, newHosts[i])); len(p) != 1 || !strings.Contains(processExe(p[0]), "ztna-router-v2") {
			t.Errorf("new host %s runs %v, not the new binary", newHosts[i], p)
		}
	}
	if out := cli.run(false, "plan", "-input=false", "-detailed-exitcode"); !strings.Contains(out, "No changes") {
		t.Fatalf("plan after the rolling upgrade is not empty:\n%s", out)
	}
	dialer.stop(t)
}

// rollingServices is the root module's part around the redundant pair: the echo service on the
// host's loopback (and a second one when secondPort is not 0), a client identity and its policy.
func rollingServices(name string, echoPort, secondPort int) string {
	services := "[ztna_service.echo.name]"
	second := ""
	if secondPort != 0 {
		services = "[ztna_service.echo.name, ztna_service.second.name]"
		second = fmt.Sprintf(`
resource "ztna_service" "second" {
  name         = "%[1]s-second"
  address      = "127.0.0.1"
  port         = %[2]d
  router_roles = [%[1]q]
}
`, name, secondPort)
	}
	return second + fmt.Sprintf(`
resource "ztna_service" "echo" {
  name         = "%[1]s-echo"
  address      = "127.0.0.1"
  port         = %[2]d
  router_roles = [%[1]q]
}

resource "ztna_identity" "client" {
  name  = "%[1]s-client"
  roles = ["%[1]s-client"]
}

resource "ztna_service_policy" "client" {
  name           = "%[1]s-client"
  identity_roles = ["%[1]s-client"]
  service_names  = %[3]s
}

output "identity_token" {
  value     = ztna_identity.client.enrollment_token
  sensitive = true
}
`, name, echoPort, services)
}

// checkRollingOrder reads the apply log of the image change: host a's replacement is online
// (its create complete: ztna_router_host waits for its router) before host b's starts, and no
// old host is destroyed before both replacements are online.
func checkRollingOrder(t *testing.T, out string) {
	t.Helper()
	at := func(s string) int {
		i := strings.Index(out, s)
		if i < 0 {
			t.Fatalf("the apply log lacks %q:\n%s", s, out)
		}
		return i
	}
	aDone, bStart, bDone := at("module.a.ztna_router_host.this: Creation complete"), at("module.b.ztna_router_host.this: Creating..."), at("module.b.ztna_router_host.this: Creation complete")
	if bStart < aDone {
		t.Errorf("host b's replacement started before host a's was online:\n%s", out)
	}
	for _, h := range []string{"a", "b"} {
		if d := at("module." + h + ".ztna_router_host.this (deposed object "); d < bDone {
			t.Errorf("the old host %s was destroyed before both replacements were online:\n%s", h, out)
		}
	}
	if strings.Index(out, "module.a.ztna_router_host.this (deposed object ") < strings.Index(out, "module.b.ztna_router_host.this (deposed object ") {
		t.Errorf("the old host a went before the old host b:\n%s", out)
	}
}

// dialLoop keeps dialLoopWorkers dials to a target through the overlay in progress all the
// time; each connects, echoes 32 random bytes, holds the connection dialHold, echoes again and
// closes. A router stopped without draining cuts the dials it carries. Measured: with dials of
// a few milliseconds, held 0.5 s or held 3 s, the test also passed with the routers' drain off
// (--drain 0): by the time an old router stops, the hubs have sent every new dial to the new,
// less loaded links and the old dials have ended. The order is what this test checks; the drain
// is checked by router/hosting's TestDrain.
type dialLoop struct {
	client *client.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	dials    int
	failures []string
	longest  time.Duration
}

const (
	dialLoopWorkers = 4
	// Under the routers' 5 s drain; long enough that the old routers still carry dials when
	// they stop (the hubs send new dials to the new routers, whose links carry less load).
	dialHold = 3 * time.Second
)

func startDialLoop(t *testing.T, identity, target string) *dialLoop {
	t.Helper()
	id, err := client.LoadIdentity(identity, client.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(id.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &dialLoop{client: c, cancel: cancel}
	for range dialLoopWorkers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				dctx, done := context.WithTimeout(ctx, 20*time.Second)
				err := dialEchoHold(dctx, c, target, dialHold)
				done()
				if ctx.Err() != nil {
					return
				}
				d.mu.Lock()
				d.dials++
				d.longest = max(d.longest, time.Since(start))
				if err != nil {
					d.failures = append(d.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				d.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { d.stop(t); c.Close() })
	return d
}

// expectClean fails the test if any dial failed since the last call, logs the counts and
// starts counting afresh.
func (d *dialLoop) expectClean(t *testing.T, during string) {
	t.Helper()
	// Dials begun after the change count too: wait for a round of them.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		d.mu.Lock()
		n := d.dials
		d.mu.Unlock()
		if n >= 2*dialLoopWorkers {
			break
		}
	}
	d.mu.Lock()
	dials, failures, longest := d.dials, d.failures, d.longest
	d.dials, d.failures, d.longest = 0, nil, 0
	d.mu.Unlock()
	t.Logf("during %s: %d dials, %d failed, longest %s", during, dials, len(failures), longest.Round(time.Millisecond))
	if dials == 0 {
		t.Fatalf("no dial completed during %s", during)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d dials failed during %s:\n%s", len(failures), dials, during, strings.Join(failures, "\n"))
	}
}

func (d *dialLoop) stop(*testing.T) {
	d.cancel()
	d.wg.Wait()
}

func dialEcho(ctx context.Context, c *client.Client, target string) error {
	return dialEchoHold(ctx, c, target, 0)
}

// dialEchoHold dials target, echoes 32 random bytes and, when hold is not 0, waits hold and
// echoes again.
func dialEchoHold(ctx context.Context, c *client.Client, target string, hold time.Duration) error {
	conn, err := c.Dial(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	for i := 0; i < 2; i++ {
		msg := make([]byte, 32)
		rand.Read(msg)
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil {
			return fmt.Errorf("read the echo: %w", err)
		}
		if string(got) != string(msg) {
			return errors.New("the echo differs from what was sent")
		}
		if hold == 0 || i == 1 {
			return nil
		}
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func processExe(pid int) string {
	exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return exe
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeVars(t *testing.T, cli *terraformCLI, vars map[string]any) {
	t.Helper()
	b, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	cli.write("terraform.tfvars.json", string(b))
}
