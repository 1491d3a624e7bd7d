// Package controller_test drives the real ztna-controller binary: dev start-up time, the env
// file, SIGKILL and restart on the same data dir, the run command's configuration.
package controller_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestMain builds ztna-controller unless $ZTNA_BIN_DIR has it.
func TestMain(m *testing.M) {
	harness.Binaries = []string{"ztna-controller"}
	os.Exit(harness.Main(m))
}

// proc is a running controller process.
type proc struct {
	cmd    *exec.Cmd
	stdout []string // lines up to and including the ready line
	stderr *os.File
}

// startDev starts `ztna-controller dev` and waits for its ready line; it returns how long
// that took.
func startDev(t *testing.T, dataDir string, extra ...string) (*proc, time.Duration) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(harness.Bin("ztna-controller"), append([]string{"dev", "--data-dir", dataDir, "--log-format", "json"}, extra...)...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: logf}
	t.Cleanup(func() { p.kill() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("controller exited before it was ready: %s", p.logs())
			}
			p.stdout = append(p.stdout, l)
			if strings.HasPrefix(l, "  env file") { // the last line of the banner
				go func() {
					for range lines {
					}
				}()
				return p, time.Since(begin)
			}
		case <-timeout:
			t.Fatalf("controller not ready after 20s: %s", p.logs())
		}
	}
}

func (p *proc) logs() string {
	b, _ := os.ReadFile(p.stderr.Name())
	return string(b)
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// stop ends the process with SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("controller exited with %v after SIGTERM: %s", err, p.logs())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("controller did not stop within 10s of SIGTERM")
	}
}

// readEnv parses D/ztna.env.
func readEnv(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "ztna.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad env line %q", l)
		}
		env[k] = v
	}
	return env
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
