package replicas

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// replica is one running `ztna-controller run`.
type replica struct {
	name                           string
	proc                           *harness.Proc
	edge, control, fabric, metrics string // host:port
	fingerprint                    string
	api                            *apiclient.Client
}

// cluster is replicas sharing one fresh database, secret and admin token.
type cluster struct {
	dir, dsn, secretFile, tokenFile string
	replicas                        []*replica
}

// newCluster sets up n replicas (ctrl-a, ctrl-b, ...) on a fresh database without starting them.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterOn(t, n, pgtest.NewDatabase(t))
}

// newClusterOn is newCluster on the database named by dsn.
func newClusterOn(t *testing.T, n int, dsn string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{dir: dir, dsn: dsn,
		secretFile: writeFile(t, dir, "ca-secret", "test-ca-secret-0123456789abcdefghijklmnopqrstuvwxyz\n"),
		tokenFile:  writeFile(t, dir, "token", "replica-admin-token-0123456789\n")}
	addrs := freeAddrs(t, 4*n)
	for i := range n {
		a := addrs[4*i:]
		c.replicas = append(c.replicas, &replica{name: fmt.Sprintf("ctrl-%c", 'a'+i), edge: a[0], control: a[1], fabric: a[2], metrics: a[3]})
	}
	return c
}

// freeAddrs returns n distinct loopback addresses that were just free (held open together, so
// that no two are the same port).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// startReplicas starts n replicas on one fresh database at the same time (so they race to
// migrate it and to create the network CA) and waits until every API answers. Each replica
// advertises itself first and then the others, so what it enrols connects to it first.
func startReplicas(t *testing.T, n int) []*replica {
	t.Helper()
	c := newCluster(t, n)
	for i, r := range c.replicas {
		c.launch(t, r, append([]*replica{r}, append(slices.Clone(c.replicas[:i]), c.replicas[i+1:]...)...))
	}
	for _, r := range c.replicas {
		r.waitReady(t)
	}
	return c.replicas
}

// launch starts replica r (`ztna-controller run`) advertising the endpoints of advertise, in
// that order.
func (c *cluster) launch(t *testing.T, r *replica, advertise []*replica) {
	t.Helper()
	list := func(f func(*replica) string) string {
		var out []string
		for _, o := range advertise {
			out = append(out, strconv.Quote(f(o)))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	cfg := writeFile(t, c.dir, r.name+".yaml", fmt.Sprintf(`name: %s
data_dir: %s
listen: {edge: %q, control: %q, fabric: %q, metrics: %q}
advertise:
  edge: %s
  control: %s
  fabric: %s
hosts: ["127.0.0.1"]
store: {driver: postgres, dsn: %q, ca_secret_file: %q}
token_file: %q
heartbeat_interval: 200ms
log: {format: json, level: info}
`, r.name, filepath.Join(c.dir, r.name), r.edge, r.control, r.fabric, r.metrics,
		list(func(o *replica) string { return "https://" + o.edge }),
		list(func(o *replica) string { return o.control }),
		list(func(o *replica) string { return o.fabric }),
		c.dsn, c.secretFile, c.tokenFile))
	r.proc = harness.Start(t, "ztna-controller", "run", "--config", cfg)
}

// waitReady waits until a launched replica has started and its API answers.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	harness.WaitFor(t, 60*time.Second, r.name+" starts", func() bool {
		r.fingerprint = startedFingerprint(r.proc.Output())
		return r.fingerprint != "" || r.proc.Exited()
	})
	if r.proc.Exited() {
		t.Fatalf("%s exited:\n%s", r.name, r.proc.Output())
	}
	var err error
	r.api, err = apiclient.New("https://"+r.edge, "replica-admin-token-0123456789", r.fingerprint, apiclient.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.api.CloseIdleConnections)
	harness.WaitFor(t, 20*time.Second, r.name+" API answers", func() bool {
		_, err := r.api.ListRouters(context.Background())
		return err == nil
	})
}

// startedFingerprint finds the CA fingerprint in the "controller started" log line.
func startedFingerprint(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var line struct {
			Msg         string `json:"msg"`
			Fingerprint string `json:"ca_fingerprint"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "controller started" {
			return line.Fingerprint
		}
	}
	return ""
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// enrolRouter creates a router through one replica, mints its key through another (whose
// endpoints the key and so the router's configuration list first), enrols and runs it.
func enrolRouter(t *testing.T, via, keyFrom *replica, name string, roles ...string) *harness.Router {
	t.Helper()
	ctx := context.Background()
	r, err := via.api.CreateRouter(ctx, api.RouterCreate{Name: name, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyFrom.api.CreateRegistrationKey(ctx, api.RegistrationKeyCreate{RouterID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	return harness.RunRouter(t, r.ID, harness.Enrol(t, k.Key))
}

// controlSessions counts the established control-channel connections a replica has accepted
// (from the kernel's socket table: the replica's side of a connection has the listen port).
func controlSessions(t *testing.T, r *replica) int {
	t.Helper()
	_, portText, _ := strings.Cut(r.control, ":")
	port, _ := strconv.Atoi(portText)
	raw, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" { // 01: ESTABLISHED
			continue
		}
		_, local, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(local, 16, 16); err == nil && int(p) == port {
			n++
		}
	}
	return n
}

func connected(r *harness.Router) bool { return r.Metric("ztna_router_control_connected") == 1 }

func assigned(r *harness.Router) float64 { return r.Metric("ztna_router_assigned_services") }

// createService creates a service hosted by role through rep and returns how long until
// router sees one more assigned service.
func createService(t *testing.T, rep *replica, router *harness.Router, name, role string) time.Duration {
	t.Helper()
	before := assigned(router)
	start := time.Now()
	if _, err := rep.api.CreateService(context.Background(), api.ServiceCreate{
		Name: name, Address: "127.0.0.1", Port: 5432, Protocol: api.ProtocolTCP, RouterRoles: []string{role},
	}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "service "+name+" reaches router "+router.ID, func() bool { return assigned(router) == before+1 })
	return time.Since(start)
}

// maxPropagation is the target: a change made through one replica reaches routers connected
// to another within a second.
const maxPropagation = time.Second

func TestReplicas(t *testing.T) {
	rs := startReplicas(t, 2)
	a, b := rs[0], rs[1]
	if a.fingerprint != b.fingerprint {
		t.Fatalf("replicas sign with different CAs: %s and %s", a.fingerprint, b.fingerprint)
	}

	// Each router dials the replicas in its own order (rendezvous-hashed by its id), so where
	// its session lands is found, not assumed: changes are made through the other replica.
	r1 := enrolRouter(t, a, b, "edge-1", "east")
	r2 := enrolRouter(t, b, a, "edge-2", "west")
	harness.WaitFor(t, 20*time.Second, "both routers connect", func() bool { return connected(r1) && connected(r2) })
	home1, home2 := homeOf(t, r1, rs), homeOf(t, r2, rs)
	want := map[*replica]int{a: 0, b: 0}
	want[home1]++
	want[home2]++
	for _, rep := range rs {
		if n := controlSessions(t, rep); n != want[rep] {
			t.Fatalf("control sessions: %s has %d, want %d (edge-1 on %s, edge-2 on %s)", rep.name, n, want[rep], home1.name, home2.name)
		}
	}
	t.Logf("edge-1 is on %s, edge-2 on %s", home1.name, home2.name)

	t.Run("objects created through one replica are served by the other", func(t *testing.T) {
		ctx := context.Background()
		id, err := a.api.CreateIdentity(ctx, api.IdentityCreate{Name: "app", Roles: []string{"apps"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.api.GetIdentity(ctx, id.ID)
		if err != nil || got.Name != "app" {
			t.Fatalf("replica b: %+v, %v", got, err)
		}
		routers, err := b.api.ListRouters(ctx)
		if err != nil || len(routers) != 2 {
			t.Fatalf("replica b lists %d routers (%v), want 2", len(routers), err)
		}
		// Online status written by whichever replica holds the session (with its next
		// status flush).
		harness.WaitFor(t, 5*time.Second, "both routers online on replica b", func() bool {
			routers, err := b.api.ListRouters(ctx)
			return err == nil && !slices.ContainsFunc(routers, func(r api.Router) bool { return r.Status != api.RouterOnline })
		})
	})

	via := other(rs, home1)
	t.Run("change through one replica reaches a router connected to the other within 1s", func(t *testing.T) {
		var worst time.Duration
		for i := range 5 {
			d := createService(t, via, r1, fmt.Sprintf("east-db-%d", i), "east")
			t.Logf("service created through %s reached router on %s after %v", via.name, home1.name, d)
			worst = max(worst, d)
		}
		if worst > maxPropagation {
			t.Fatalf("slowest propagation %v, want under %v", worst, maxPropagation)
		}
	})

	// The replica edge-2 is on is killed; a key minted by it before the crash lists it first.
	victim, survivor := home2, other(rs, home2)
	spare, err := victim.api.CreateRouter(context.Background(), api.RouterCreate{Name: "edge-3", Roles: []string{"west"}})
	if err != nil {
		t.Fatal(err)
	}
	spareKey, err := victim.api.CreateRegistrationKey(context.Background(), api.RegistrationKeyCreate{RouterID: spare.ID})
	if err != nil {
		t.Fatal(err)
	}

	victim.proc.Kill()
	killed := time.Now()

	t.Run("after SIGKILL of one replica, the other keeps serving and its routers move there", func(t *testing.T) {
		if _, err := survivor.api.ListServices(context.Background()); err != nil {
			t.Fatalf("replica %s after %s died: %v", survivor.name, victim.name, err)
		}
		d := harness.WaitFor(t, 15*time.Second, "router edge-2 reconnects to "+survivor.name, func() bool {
			return controlSessions(t, survivor) == 2 && connected(r2) && homeOf(t, r2, rs) == survivor
		})
		t.Logf("router moved from the killed replica to the survivor %v after the kill (%v waiting)", time.Since(killed), d)
		if !connected(r1) {
			t.Fatal("router edge-1 lost its session for good")
		}
	})

	t.Run("service created on the survivor reaches the moved router", func(t *testing.T) {
		d := createService(t, survivor, r2, "west-db", "west")
		t.Logf("service created through %s reached the moved router after %v", survivor.name, d)
		if d > maxPropagation {
			t.Fatalf("took %v, want under %v", d, maxPropagation)
		}
	})

	t.Run("a key minted by the dead replica enrols through the survivor", func(t *testing.T) {
		r3 := harness.RunRouter(t, spare.ID, harness.Enrol(t, spareKey.Key))
		harness.WaitFor(t, 20*time.Second, "router edge-3 connects to "+survivor.name+" and gets west-db", func() bool { return connected(r3) && assigned(r3) == 1 })
	})
}

// homeOf is the replica holding router r's current control session: the endpoint of the last
// "control channel up" line in its log.
func homeOf(t *testing.T, r *harness.Router, rs []*replica) *replica {
	t.Helper()
	var last string
	for _, line := range strings.Split(r.Output(), "\n") {
		if strings.Contains(line, "control channel up") {
			last = line
		}
	}
	for _, rep := range rs {
		if strings.Contains(last, rep.control) {
			return rep
		}
	}
	t.Fatalf("router %s: no control session in its log (last: %q)", r.ID, last)
	return nil
}

// other is the replica of the two that is not rep.
func other(rs []*replica, rep *replica) *replica {
	if rs[0] == rep {
		return rs[1]
	}
	return rs[0]
}

// Replicas started together on an empty database agree on one CA and schema.
func TestReplicasStartTogether(t *testing.T) {
	rs := startReplicas(t, 3)
	var wg sync.WaitGroup
	for _, r := range rs[1:] {
		if r.fingerprint != rs[0].fingerprint {
			t.Errorf("%s signs with CA %s, %s with %s", r.name, r.fingerprint, rs[0].name, rs[0].fingerprint)
		}
	}
	// Names are unique across replicas: of three concurrent creates of one name, one wins.
	created := make(chan struct{}, len(rs))
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var apiErr *apiclient.Error
			if _, err := r.api.CreateService(context.Background(), api.ServiceCreate{
				Name: "db", Address: "127.0.0.1", Port: 5432, RouterRoles: []string{"x"},
			}); err == nil {
				created <- struct{}{}
			} else if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 {
				t.Errorf("%s: %v, want success or 409", r.name, err)
			}
		}()
	}
	wg.Wait()
	if len(created) != 1 {
		t.Fatalf("%d replicas created service db, want exactly 1", len(created))
	}
}

// TestRoutersLearnReplicas: a router enrolled while replica a advertised only itself learns
// replica b over the control channel once a lists it (scale-out: b joins, a restarts with b in
// its advertise), saves it in its state directory and uses it: after SIGKILL of a it reconnects
// to b, and so does the router restarted while a stays down. b's endpoint reaches the router
// only through that push: its enrolled config.json keeps listing a alone.
func TestRoutersLearnReplicas(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.replicas[0], c.replicas[1]
	c.launch(t, a, []*replica{a})
	a.waitReady(t)
	r := enrolRouter(t, a, a, "edge-1", "edge")
	harness.WaitFor(t, 20*time.Second, "router connects to a", func() bool { return connected(r) && controlSessions(t, a) == 1 })
	onlyA := func(what string) {
		t.Helper()
		var cfg api.EnrolledConfig
		readJSON(t, filepath.Join(r.StateDir, "config.json"), &cfg)
		if !slices.Equal(cfg.Control, []string{a.control}) {
			t.Fatalf("%s: enrolled control endpoints %v, want only %s's %s", what, cfg.Control, a.name, a.control)
		}
	}
	onlyA("after enrolment")

	c.launch(t, b, []*replica{b, a})
	b.waitReady(t)
	a.proc.Kill()
	c.launch(t, a, []*replica{a, b})
	a.waitReady(t)
	harness.WaitFor(t, 10*time.Second, "router back on a, with b saved", func() bool {
		var saved struct{ Control []string }
		readJSON(t, filepath.Join(r.StateDir, daemon.EndpointsFile), &saved)
		return connected(r) && controlSessions(t, a) == 1 && slices.Equal(saved.Control, []string{a.control, b.control})
	})

	// a runs a while, as replicas do (a session lost within seconds of the last one counts
	// as a controller in trouble, and the router backs off).
	time.Sleep(stableSession)
	a.proc.Kill()
	killed := time.Now()
	d := harness.WaitFor(t, 10*time.Second, "router moves to b", func() bool { return controlSessions(t, b) == 1 && connected(r) })
	t.Logf("router on %s %v after %s was killed", b.name, d.Round(time.Millisecond), a.name)
	if d > maxFailover {
		t.Errorf("router took %v to move to %s, want under %v", d, b.name, maxFailover)
	}
	onlyA("after the move")

	r.Kill()
	r = harness.RunRouter(t, r.ID, r.StateDir)
	d = harness.WaitFor(t, 10*time.Second, "restarted router connects to b", func() bool { return controlSessions(t, b) == 1 && connected(r) })
	t.Logf("router restarted while %s is down: on %s after %v (%v since the kill)", a.name, b.name, d.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
}

// maxFailover bounds how long a router takes to reach a surviving replica it knows of (it
// retries on the next endpoint after 125–250 ms; the rest is margin for a loaded machine).
const maxFailover = 2 * time.Second

// stableSession is how long a router's session must last for its loss to count as a fresh
// outage (router/controlclient's stableAfter, plus margin).
const stableSession = 3500 * time.Millisecond

// readJSON decodes a file a router wrote; a missing file decodes as nothing.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
