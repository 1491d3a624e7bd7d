// Package harness runs the real ztna binaries as processes on loopback for end-to-end tests of
// the data plane and of what builds on it (failover, headless operation, the router's
// lifecycle): a dev controller with its embedded hub, enrolled routers (`ztna-router run`),
// standalone hubs (`ztna-router run --hub`), and client identities enrolled with the API's
// enrolment tokens, using the Go SDK.
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
//
//	c := harness.StartController(t)
//	r := c.StartRouter(t, "edge-1", []string{"edge"})
//	cl := c.Client(t, c.NewIdentity(t, "app", "apps"))
package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/internal/testenv"
)

// Binaries are the commands (of cmd/) the harness runs; a TestMain may change the list before
// it calls Main.
var Binaries = []string{"ztna-controller", "ztna-router"}

// binDir holds the binaries: $ZTNA_BIN_DIR (make build) or a temporary build.
var binDir string

// Main builds the binaries unless $ZTNA_BIN_DIR has them, runs the tests and cleans up; call
// it from TestMain. Every test of such a package runs processes: under -short none runs.
func Main(m *testing.M) int {
	return testenv.Main("ztna processes", func() int { return run(m) })
}

func run(m *testing.M) int {
	binDir = os.Getenv("ZTNA_BIN_DIR")
	if !hasBinaries(binDir) {
		tmp, err := os.MkdirTemp("", "ztna-harness-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		for _, b := range Binaries {
			out, err := exec.Command("go", "build", "-o", filepath.Join(tmp, b), "github.com/ztna/ztna/cmd/"+b).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b, err, out)
				return 1
			}
		}
		binDir = tmp
	}
	return m.Run()
}

func hasBinaries(dir string) bool {
	if dir == "" {
		return false
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

// Proc is a running binary whose output is kept and shown when the test fails.
type Proc struct {
	Cmd  *exec.Cmd
	out  *logging.Buffer
	file string // with StartLogFile: the output goes here, not through out
	done chan struct{}
}

// Bin is the path of one of the Binaries, for commands that run it through another (ip netns
// exec).
func Bin(name string) string { return filepath.Join(binDir, name) }

// Start runs binary bin (one of the Binaries, or an absolute path) with args until the test ends
// (then SIGKILL).
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	return start(t, "", bin, args)
}

// StartLogFile is Start with the output appended to the file logPath, which the process
// writes itself: no pipe the test process must drain, so a busy test process (thousands of
// simulated routers) cannot stall the binary's logging and, through it, the binary.
func StartLogFile(t testing.TB, logPath, bin string, args ...string) *Proc {
	t.Helper()
	return start(t, logPath, bin, args)
}

func start(t testing.TB, logPath, bin string, args []string) *Proc {
	t.Helper()
	path := bin
	if !filepath.IsAbs(bin) {
		path = Bin(bin)
	}
	p := &Proc{Cmd: exec.Command(path, args...), out: &logging.Buffer{}, file: logPath, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the child holds its own descriptor
		p.Cmd.Stdout, p.Cmd.Stderr = f, f
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s %s ---\n%s", bin, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Output is what the process printed so far.
func (p *Proc) Output() string {
	if p.file != "" {
		raw, err := os.ReadFile(p.file)
		if err != nil {
			return fmt.Sprintf("(cannot read %s: %v)", p.file, err)
		}
		return string(raw)
	}
	return p.out.String()
}

// Kill ends the process with SIGKILL (like a crash) and reaps it.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Signal sends sig and, for SIGKILL, waits for the process to end.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to end and returns its exit code.
func (p *Proc) Wait(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// Terminate sends SIGTERM and waits up to d for the process to end, failing the test when it
// does not; it returns the exit code.
func (p *Proc) Terminate(t testing.TB, d time.Duration) int {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	code, ok := p.Wait(d)
	if !ok {
		t.Fatalf("%s did not stop within %v of SIGTERM", filepath.Base(p.Cmd.Path), d)
	}
	return code
}

// Run runs a binary to completion and returns its combined output and exit code.
func Run(t testing.TB, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, bin), args...).CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("%s: %v", bin, err)
	}
	return string(out), 0
}

// Controller is a running `ztna-controller dev`.
type Controller struct {
	Dir     string
	LogFile string // when set (StartControllerLogFile), where the controller's output goes
	Proc    *Proc
	Env     map[string]string // ztna.env
	Metrics string            // host:port of /metrics
	API     *apiclient.Client
}

// StartController runs a dev controller on a fresh data directory with extra flags and waits
// until its API answers.
func StartController(t testing.TB, args ...string) *Controller {
	t.Helper()
	c := &Controller{Dir: t.TempDir()}
	c.start(t, args)
	return c
}

// StartControllerLogFile is StartController with the controller's output (across restarts)
// in controller.log of its data directory instead of a pipe to the test process.
func StartControllerLogFile(t testing.TB, args ...string) *Controller {
	t.Helper()
	c := &Controller{Dir: t.TempDir()}
	c.LogFile = filepath.Join(c.Dir, "controller.log")
	c.start(t, args)
	return c
}

// Restart SIGKILLs the controller and starts it again on the same data directory (same CA,
// objects, token and ports) with args, and waits until its API answers.
func (c *Controller) Restart(t testing.TB, args ...string) {
	t.Helper()
	c.Proc.Kill()
	c.API.CloseIdleConnections()
	if err := os.Remove(filepath.Join(c.Dir, "ztna.env")); err != nil {
		t.Fatal(err)
	}
	c.start(t, args)
}

func (c *Controller) start(t testing.TB, args []string) {
	t.Helper()
	c.Proc = start(t, c.LogFile, "ztna-controller", append([]string{"dev", "--data-dir", c.Dir}, args...))
	WaitFor(t, 20*time.Second, "controller writes ztna.env", func() bool {
		_, err := os.Stat(filepath.Join(c.Dir, "ztna.env"))
		return err == nil
	})
	c.Env = readEnv(t, filepath.Join(c.Dir, "ztna.env"))
	var ports struct{ Metrics string }
	raw, err := os.ReadFile(filepath.Join(c.Dir, "dev-ports.json"))
	if err != nil || json.Unmarshal(raw, &ports) != nil {
		t.Fatalf("dev-ports.json: %v", err)
	}
	c.Metrics = ports.Metrics
	c.API, err = apiclient.New(c.Env["ZTNA_ADDR"], c.Env["ZTNA_TOKEN"], c.Env["ZTNA_CA_FINGERPRINT"], apiclient.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.API.CloseIdleConnections)
	WaitFor(t, 20*time.Second, "controller API answers", func() bool {
		// A small list: listing 10,000 routers while they reconnect to a restarted controller
		// took longer than the client's 5 s timeout, although the API answered.
		_, err := c.API.ListServicePolicies(context.Background())
		return err == nil
	})
}

func readEnv(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

// CA loads the controller's network CA (certificate and key) from its data directory, for
// tests that play a part the controller would certify (a rogue hub).
func (c *Controller) CA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(c.Dir, pki.CACertFile), filepath.Join(c.Dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// Metric reads one series (name with labels, exactly as exposed) from the controller's
// /metrics; -1 when absent.
func (c *Controller) Metric(series string) float64 {
	return Metric("http://"+c.Metrics+"/metrics", series)
}

// Metric reads one series from a Prometheus endpoint; -1 when absent or unreachable.
func Metric(url, series string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// RouterLinked reports whether the controller's embedded hub has a healthy link from router id.
func (c *Controller) RouterLinked(id string) bool {
	return c.Metric(`ztna_hub_router_link_count{healthy="true",router="`+id+`"}`) >= 1
}

// NewRouter creates a router with roles and returns its id and a fresh registration key.
func (c *Controller) NewRouter(t testing.TB, name string, roles ...string) (id, key string) {
	t.Helper()
	ctx := context.Background()
	r, err := c.API.CreateRouter(ctx, api.RouterCreate{Name: name, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.API.CreateRegistrationKey(ctx, api.RegistrationKeyCreate{RouterID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID, k.Key
}

// GetRouter reads router id from the API.
func (c *Controller) GetRouter(t testing.TB, id string) *api.Router {
	t.Helper()
	r, err := c.API.GetRouter(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRouter: %v", err)
	}
	return r
}

// Router is a running `ztna-router run`.
type Router struct {
	*Proc
	ID       string
	StateDir string
	Local    string // host:port of its local endpoints
}

// Metric reads one series from the router's /metrics; -1 when absent.
func (r *Router) Metric(series string) float64 { return Metric("http://"+r.Local+"/metrics", series) }

// Healthy reports whether the router's /healthz answers 200.
func (r *Router) Healthy() bool {
	resp, err := http.Get("http://" + r.Local + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WriteKey puts a registration key in a 0600 file, as an operator would (not on the command
// line), and returns its path.
func WriteKey(t testing.TB, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registration-key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Enrol runs `ztna-router enroll` with key and extra flags into a fresh state directory and
// returns that directory.
func Enrol(t testing.TB, key string, args ...string) (stateDir string) {
	t.Helper()
	stateDir = filepath.Join(t.TempDir(), "state")
	out, code := Run(t, "ztna-router", append([]string{"enroll", "--key-file", WriteKey(t, key), "--state-dir", stateDir}, args...)...)
	if code != 0 {
		t.Fatalf("ztna-router enroll exited %d:\n%s", code, out)
	}
	return stateDir
}

// EnrolRouter creates a router with roles, enrols it with `ztna-router enroll` into a fresh
// state directory and returns its id and that directory.
func (c *Controller) EnrolRouter(t testing.TB, name string, roles ...string) (id, stateDir string) {
	t.Helper()
	id, key := c.NewRouter(t, name, roles...)
	return id, Enrol(t, key)
}

// RunRouter runs an enrolled router with extra flags.
func RunRouter(t testing.TB, id, stateDir string, args ...string) *Router {
	t.Helper()
	local := FreeAddr(t)
	p := Start(t, "ztna-router", append([]string{"run", "--state-dir", stateDir, "--local-addr", local}, args...)...)
	return &Router{Proc: p, ID: id, StateDir: stateDir, Local: local}
}

// StartRouter enrols and runs a router with roles, and waits until the embedded hub has its
// link.
func (c *Controller) StartRouter(t testing.TB, name string, roles []string, args ...string) *Router {
	t.Helper()
	id, dir := c.EnrolRouter(t, name, roles...)
	r := RunRouter(t, id, dir, args...)
	WaitFor(t, 15*time.Second, "router "+name+" links to the embedded hub", func() bool { return c.RouterLinked(id) })
	return r
}

// NewIdentity creates an identity with roles and enrols it with its enrolment token, the way
// `ztna identity enroll` does; it returns the identity file's path.
func (c *Controller) NewIdentity(t testing.TB, name string, roles ...string) (id, file string) {
	t.Helper()
	ctx := context.Background()
	ident, err := c.API.CreateIdentity(ctx, api.IdentityCreate{Name: name, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), name+".json")
	if _, err := enroll.Identity(ctx, ident.EnrollmentToken, file, false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	return ident.ID, file
}

// IdentityCredentials reads an identity file: the file, its certificate (with key) and the
// network CA.
func IdentityCredentials(t testing.TB, file string) (*enroll.IdentityFile, *tls.Certificate, *x509.Certificate) {
	t.Helper()
	f, err := enroll.LoadIdentity(file)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := f.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCertPEM([]byte(f.CA))
	if err != nil {
		t.Fatal(err)
	}
	return f, cert, ca
}

// Client returns an SDK client for the identity file, using the hubs given or, when none are,
// those the identity was enrolled with.
func Client(t testing.TB, file string, hubs ...string) *client.Client {
	t.Helper()
	f, cert, ca := IdentityCredentials(t, file)
	if len(hubs) == 0 {
		hubs = f.Config.Fabric
	}
	c, err := client.New(client.Config{Cert: pki.NewCertSlot(cert), CA: ca, Hubs: hubs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FreeAddr returns a loopback address that was just free.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitFor polls cond until it holds and returns how long that took, failing after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(begin)
}
