// Package tunnel tests the ztna CLI (`ztna services`, `ztna dial`, `ztna tunnel`) as a real
// process: against an in-process data plane (tests/dataplane/stack: hub and routers in the test
// process, real TCP and TLS on loopback) and against real controller and router processes.
// Programs reach services through the tunnel the way users' programs do: curl resolving the
// service's name through the tunnel's DNS server (via /etc/resolv.conf in a private mount
// namespace, as curl in Debian has no --dns-servers).
package tunnel

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/tests/dataplane/harness"
)

// ztnaBin is the ztna binary under test: $ZTNA_BIN_DIR/ztna (make build) or a fresh build.
var ztnaBin string

// TestMain builds ztna (the harness builds the controller and router binaries the same way).
func TestMain(m *testing.M) {
	os.Exit(withZtna(func() int { return harness.Main(m) }))
}

func withZtna(run func() int) int {
	if dir := os.Getenv("ZTNA_BIN_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "ztna")); err == nil {
			ztnaBin = filepath.Join(dir, "ztna")
			return run()
		}
	}
	tmp, err := os.MkdirTemp("", "ztna-tunnel-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	ztnaBin = filepath.Join(tmp, "ztna")
	if out, err := exec.Command("go", "build", "-o", ztnaBin, "github.com/ztna/ztna/cmd/ztna").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ztna: %v\n%s", err, out)
		return 1
	}
	return run()
}

// result is a finished ztna command.
type result struct {
	stdout, stderr string
	code           int
}

// ztna runs the CLI to completion with stdin.
func ztna(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	return ztnaEnv(t, nil, stdin, args...)
}

// ztnaEnv runs the CLI with extra environment variables.
func ztnaEnv(t *testing.T, env []string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ztnaBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("ztna %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// proc is a long-running ztna command (the tunnel).
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startZtna runs the CLI until the test ends; its output is shown when the test fails.
func startZtna(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(ztnaBin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("--- ztna %s ---\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("ztna did not stop within 10s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > within {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(begin)
}
