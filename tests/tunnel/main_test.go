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
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestMain builds ztna with the controller and router binaries, unless $ZTNA_BIN_DIR has them.
func TestMain(m *testing.M) {
	harness.Binaries = append(harness.Binaries, "ztna")
	os.Exit(harness.Main(m))
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
	cmd := exec.CommandContext(ctx, harness.Bin("ztna"), args...)
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
