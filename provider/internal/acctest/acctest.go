// Package acctest is the harness of the provider's acceptance tests: it builds and starts a real
// `ztna-controller dev` in a temporary data dir, points the provider at it through the
// ZTNA_* environment variables, and makes sure terraform-plugin-testing uses the terraform binary
// on this machine instead of downloading one.
package acctest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Module is the import path of the ztna module, used to build its commands.
const Module = "github.com/ztna/ztna"

// Binary returns the path of a ztna command: $ZTNA_BIN_DIR/name when that exists (make builds
// it), otherwise a fresh `go build` of ./cmd/name into dir.
func Binary(ctx context.Context, dir, name string) (string, error) {
	if bin := os.Getenv("ZTNA_BIN_DIR"); bin != "" {
		p := filepath.Join(bin, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return Build(ctx, dir, name, Module+"/cmd/"+name)
}

// Build compiles pkg into dir/name.
func Build(ctx context.Context, dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// UseLocalTerraform makes terraform-plugin-testing run the terraform binary installed on this
// machine and never download one (TF_ACC_TERRAFORM_PATH wins over every download path), and
// turns off the version check that would call out to the internet.
func UseLocalTerraform() (string, error) {
	path := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if path == "" {
		var err error
		if path, err = exec.LookPath("terraform"); err != nil {
			path = "/usr/local/bin/terraform"
		}
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("terraform binary not found (%w): install terraform 1.11+ on PATH or set TF_ACC_TERRAFORM_PATH", err)
	}
	os.Setenv("TF_ACC_TERRAFORM_PATH", path)
	os.Unsetenv("TF_ACC_TERRAFORM_VERSION")
	os.Setenv("CHECKPOINT_DISABLE", "1")
	return path, nil
}

// Controller is a running dev controller.
type Controller struct {
	DataDir string
	// Env holds what the controller wrote to ztna.env: ZTNA_ADDR, ZTNA_TOKEN,
	// ZTNA_CA_FINGERPRINT, ZTNA_CA_FILE.
	Env     map[string]string
	LogPath string

	cmd  *exec.Cmd
	done chan error
}

// StartController runs `bin dev --data-dir dataDir` and waits until it serves.
func StartController(ctx context.Context, bin, dataDir string) (*Controller, error) {
	logPath := filepath.Join(dataDir, "controller.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &Controller{DataDir: dataDir, LogPath: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w\ncontroller log:\n%s", err, c.Log())
	}
	return c, nil
}

// waitReady waits for ztna.env and for the edge address to accept connections.
func (c *Controller) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("controller exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controller not ready after %s", limit)
		}
		env, err := ReadEnvFile(filepath.Join(c.DataDir, "ztna.env"))
		if err != nil {
			continue
		}
		host, err := hostPort(env["ZTNA_ADDR"])
		if err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			continue
		}
		conn.Close()
		c.Env = env
		return nil
	}
}

func hostPort(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("ZTNA_ADDR %q in ztna.env is not an address", addr)
	}
	return u.Host, nil
}

// ReadEnvFile parses KEY=VALUE lines (values may be single- or double-quoted; # comments).
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: malformed line %q", path, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"ZTNA_ADDR", "ZTNA_TOKEN", "ZTNA_CA_FINGERPRINT"} {
		if env[k] == "" {
			return nil, fmt.Errorf("%s: %s missing", path, k)
		}
	}
	return env, nil
}

// Setenv exports the controller's ZTNA_* variables to this process, which is how the provider
// under test (and the terraform it runs) finds the controller.
func (c *Controller) Setenv() {
	for k, v := range c.Env {
		os.Setenv(k, v)
	}
}

// Log returns what the controller printed so far.
func (c *Controller) Log() string {
	b, _ := os.ReadFile(c.LogPath)
	return string(b)
}

// Stop terminates the controller (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (c *Controller) Stop() error {
	if c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
			return nil
		}
		return err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("controller did not stop within 10s of SIGTERM; killed")
	}
}
