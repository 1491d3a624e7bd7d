package ztnaprovider

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/provider/internal/acctest"
)

var (
	routerBinOnce sync.Once
	routerBin     string
	routerBinErr  error
)

// routerHost is a real ztna-router process on this machine, in its own state directory.
type routerHost struct {
	t        *testing.T
	stateDir string
	cmd      *exec.Cmd
	done     chan error
}

// enrollRouter runs `ztna-router enroll` with the key (from a 0600 file, as the image does),
// which consumes it.
func enrollRouter(t *testing.T, key, failureDomain string) *routerHost {
	t.Helper()
	h, out, err := tryEnrollRouter(t, key, failureDomain)
	if err != nil {
		t.Fatalf("ztna-router enroll: %v\n%s", err, out)
	}
	return h
}

// tryEnrollRouter is enrollRouter for an enrolment that may be refused: the command's output
// and error say how.
func tryEnrollRouter(t *testing.T, key, failureDomain string) (*routerHost, string, error) {
	t.Helper()
	routerBinOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		routerBin, routerBinErr = acctest.Binary(ctx, testTmp, "ztna-router")
	})
	if routerBinErr != nil {
		t.Fatal(routerBinErr)
	}
	h := &routerHost{t: t, stateDir: filepath.Join(t.TempDir(), "state")}
	keyFile := filepath.Join(t.TempDir(), "registration-key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(routerBin, "enroll", "--key-file", keyFile, "--state-dir", h.stateDir,
		"--failure-domain", failureDomain).CombinedOutput()
	return h, string(out), err
}

// start runs the router (control channel, service health checks every second) until stop or
// the end of the test.
func (h *routerHost) start() {
	h.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	local := l.Addr().String()
	l.Close()
	h.cmd = exec.Command(routerBin, "run", "--state-dir", h.stateDir, "--local-addr", local, "--health-interval", "1s")
	logFile, err := os.Create(filepath.Join(filepath.Dir(h.stateDir), "router.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer logFile.Close()
	h.cmd.Stdout, h.cmd.Stderr = logFile, logFile
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.done = make(chan error, 1)
	go func() { h.done <- h.cmd.Wait() }()
	h.t.Cleanup(h.stop)
}

// stop terminates the router; its control channel closes and the controller marks it offline.
func (h *routerHost) stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
	h.cmd = nil
}

// waitRouterStatus polls the API until the router reports status (or fails the test).
func waitRouterStatus(t *testing.T, id, status string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		r, err := apiClient(t).GetRouter(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if last = r.Status; last == status {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("router %s still %q after 30s, want %q", id, last, status)
}
