// Package testenv sorts tests into the two modes of the suite. Unit tests (`go test -short`,
// `make test-unit`) run in-process only: loopback sockets, temporary files, in-memory fakes.
// Integration tests start something real — a process (our binaries, a re-executed test binary),
// terraform, packer, a network namespace, PostgreSQL — and skip under -short, through this
// package, so that the rule lives in one place and `grep testenv.Integration` lists them.
package testenv

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// Integration skips t under -short. what says what the test starts ("ztna-router processes",
// "terraform", "a network namespace"), for the skip message. Call it first in the test.
func Integration(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test (starts %s): skipped under -short", what)
	}
}

// Main is for the TestMain of a package whose every test is an integration test (one that
// builds binaries or starts a database before its tests): under -short it runs nothing, says
// so, and returns 0; otherwise it returns run(). Use it as
// `func TestMain(m *testing.M) { os.Exit(testenv.Main("ztna processes", m.Run)) }`.
func Main(what string, run func() int) int {
	flag.Parse() // testing.Short reads the flags
	if testing.Short() {
		fmt.Fprintf(os.Stdout, "integration tests (start %s): skipped under -short\n", what)
		return 0
	}
	return run()
}
