package replicas

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/logging"
)

// TestApplyRidesOutPostgresRestart: terraform apply started while the controller's PostgreSQL
// is stopped succeeds once the database is back within the provider's timeout, because the
// controller answers 503 + Retry-After (not 500) and the provider's client retries it.
func TestApplyRidesOutPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs terraform, a controller and PostgreSQL")
	}
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skipf("terraform not installed: %v", err)
	}
	pg := pgtest.Private(t) // stopped below: never the shared server
	c := newClusterOn(t, 1, pg.DSN)
	r := c.replicas[0]
	c.launch(t, r, c.replicas)
	r.waitReady(t)

	dir := t.TempDir()
	providerDir := filepath.Join(dir, "provider")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(providerDir, "terraform-provider-ztna"), "github.com/ztna/ztna").CombinedOutput(); err != nil {
		t.Fatalf("build the provider: %v\n%s", err, out)
	}
	rc := writeFile(t, dir, "terraformrc", fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"ztna/ztna\" = %q\n  }\n  direct {}\n}\n", providerDir))
	writeFile(t, dir, "main.tf", `terraform {
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

resource "ztna_router" "edge" {
  name  = "edge-during-outage"
  roles = ["outage"]
}
`)
	token, err := os.ReadFile(c.tokenFile)
	if err != nil {
		t.Fatal(err)
	}

	pg.Stop(t)
	short, cancel := context.WithTimeout(t.Context(), time.Second)
	_, err = r.api.ListRouters(short)
	cancel()
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Problem.Type != api.ProblemStoreUnavailable {
		t.Fatalf("with PostgreSQL stopped the API should answer 503 %s, got %v", api.ProblemStoreUnavailable, err)
	}

	apply := exec.Command(tf, "apply", "-auto-approve", "-input=false", "-no-color")
	apply.Dir = dir
	apply.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"ZTNA_ADDR=https://"+r.edge, "ZTNA_TOKEN="+strings.TrimSpace(string(token)), "ZTNA_CA_FINGERPRINT="+r.fingerprint)
	out := &logging.Buffer{} // written by the process, read by the test
	apply.Stdout, apply.Stderr = out, out
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- apply.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("apply ended while PostgreSQL was down (%v):\n%s", err, out)
	case <-time.After(3 * time.Second): // the outage
	}
	pg.Start(t)
	back := time.Now()
	if err := <-done; err != nil {
		t.Fatalf("apply after PostgreSQL came back: %v\n%s", err, out)
	}
	t.Logf("apply finished %v after PostgreSQL was back", time.Since(back).Round(10*time.Millisecond))
	routers, err := r.api.ListRouters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(routers) != 1 || routers[0].Name != "edge-during-outage" {
		t.Fatalf("routers after the apply: %+v, want exactly edge-during-outage", routers)
	}
}
