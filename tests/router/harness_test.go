// Package router_test runs the real ztna-controller and ztna-router binaries as processes on
// loopback and checks the router's lifecycle end to end: enrolment, status in the API, service
// assignment and health, certificate renewal, revocation, reconnects after crashes, first-boot
// bootstrap from instance metadata, and preflight.
package router_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/router/testnet"
)

var binDir string

// TestMain uses the binaries of `make build` ($ZTNA_BIN_DIR) or builds its own.
func TestMain(m *testing.M) {
	binDir = os.Getenv("ZTNA_BIN_DIR")
	var tmp string
	if !hasBinaries(binDir) {
		var err error
		tmp, err = os.MkdirTemp("", "ztna-router-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range []string{"ztna-controller", "ztna-router"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(tmp, c), "github.com/ztna/ztna/cmd/"+c).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", c, err, out)
				os.Exit(1)
			}
		}
		binDir = tmp
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

func hasBinaries(dir string) bool {
	if dir == "" {
		return false
	}
	for _, c := range []string{"ztna-controller", "ztna-router"} {
		if _, err := os.Stat(filepath.Join(dir, c)); err != nil {
			return false
		}
	}
	return true
}

// proc is a running binary whose output is kept for the test log.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: bin, cmd: exec.Command(filepath.Join(binDir, bin), args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s %s ---\n%s", bin, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// kill ends the process with SIGKILL (no chance to clean up, like a crash) and reaps it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// exited waits up to d for the process to end and returns its exit code.
func (p *proc) exited(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// run runs a binary to completion and returns its combined output and exit code.
func run(t *testing.T, bin string, args ...string) (string, int) {
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

// controller is a running `ztna-controller dev`.
type controller struct {
	dir  string
	args []string
	p    *proc
	env  map[string]string
	API  *apiclient.Client
}

// startController runs a dev controller on dir (a fresh temp dir when "") and waits until its
// API answers.
func startController(t *testing.T, dir string, args ...string) *controller {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	c := &controller{dir: dir, args: args}
	c.start(t)
	return c
}

func (c *controller) start(t *testing.T) {
	t.Helper()
	os.Remove(filepath.Join(c.dir, "ztna.env"))
	c.p = start(t, "ztna-controller", append([]string{"dev", "--data-dir", c.dir}, c.args...)...)
	waitFor(t, 20*time.Second, "controller writes ztna.env", func() bool {
		_, err := os.Stat(filepath.Join(c.dir, "ztna.env"))
		return err == nil
	})
	c.env = readEnv(t, filepath.Join(c.dir, "ztna.env"))
	api, err := apiclient.New(c.env["ZTNA_ADDR"], c.env["ZTNA_TOKEN"], c.env["ZTNA_CA_FINGERPRINT"], apiclient.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.API = api
	waitFor(t, 20*time.Second, "controller API answers", func() bool {
		_, err := api.ListRouters(context.Background())
		return err == nil
	})
}

// restart SIGKILLs the controller and starts it again on the same data directory.
func (c *controller) crashAndRestart(t *testing.T) {
	t.Helper()
	c.p.kill()
	c.API.CloseIdleConnections()
	c.start(t)
}

func readEnv(t *testing.T, path string) map[string]string {
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

// newRouter creates a router with roles and returns its id and a fresh registration key.
func (c *controller) newRouter(t *testing.T, name string, roles ...string) (id, key string) {
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

func (c *controller) router(t *testing.T, id string) *api.Router {
	t.Helper()
	r, err := c.API.GetRouter(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRouter: %v", err)
	}
	return r
}

// writeKey puts a registration key in a 0600 file, as an operator would (not on the command line).
func writeKey(t *testing.T, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registration-key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// enrol runs `ztna-router enroll` into a fresh state directory.
func enrol(t *testing.T, key string, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	out, code := run(t, "ztna-router", append([]string{"enroll", "--key-file", writeKey(t, key), "--state-dir", dir}, args...)...)
	if code != 0 {
		t.Fatalf("enroll exited %d:\n%s", code, out)
	}
	return dir
}

// router is a running `ztna-router run`.
type router struct {
	*proc
	local string // its local endpoints
}

func runRouter(t *testing.T, stateDir string, args ...string) *router {
	t.Helper()
	local := "127.0.0.1:" + strconv.Itoa(testnet.ClosedPort(t))
	p := start(t, "ztna-router", append([]string{"run", "--state-dir", stateDir, "--local-addr", local}, args...)...)
	return &router{proc: p, local: local}
}

func (r *router) get(path string) (int, string) {
	resp, err := http.Get("http://" + r.local + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *router) healthy() bool {
	code, _ := r.get("/healthz")
	return code == http.StatusOK
}

// metric returns the value of a metric line (name with labels, exactly as exposed), or -1.
func (r *router) metric(series string) float64 {
	_, body := r.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitFor polls cond until it holds and returns how long that took, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
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
