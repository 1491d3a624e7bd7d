// Package router_test runs the real ztna-controller and ztna-router binaries as processes on
// loopback and checks the router's lifecycle end to end: enrolment, status in the API, service
// assignment and health, certificate renewal, revocation, reconnects after crashes, first-boot
// bootstrap from instance metadata, and preflight.
package router_test

import (
	"os"
	"testing"

	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestMain uses the binaries of `make build` ($ZTNA_BIN_DIR) or builds its own.
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
