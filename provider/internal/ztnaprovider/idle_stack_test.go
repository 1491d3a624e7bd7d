package ztnaprovider

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/nettest"
)

// TestAccIdleStackRefreshOnly: on an idle stack (a router online on its host, hosting a
// service it health-checks), ten `terraform plan -refresh-only -detailed-exitcode` runs over a
// minute find no drift at all: what changes while nothing happens (last_seen, checked_at) is
// not in resource state. Terraform before 1.15 exits 2 from such a plan anyway (it compared
// states with reflect.DeepEqual; fixed in hashicorp/terraform 659d5e2, "remove the use of
// reflect.DeepEqual for states"), so there the test checks the plan itself: no resource drift
// and no output change, which is what makes 1.15 exit 0.
func TestAccIdleStackRefreshOnly(t *testing.T) {
	needController(t)
	t.Parallel()
	addr := nettest.Serve(t, func(c net.Conn) { c.Close() })
	name := hostTestName("edge-idle")
	port := addr.Port
	cli := newTerraformCLI(t, localHostConfig(name, t.TempDir(), hostTestBinary(t, "ztna-router"), "", "")+fmt.Sprintf(`
resource "ztna_service" "idle" {
  name         = "%[1]s-svc"
  address      = "127.0.0.1"
  port         = %[2]d
  router_roles = [%[1]q]
}
`, name, port))
	cli.run(false, "apply", "-auto-approve", "-input=false")
	t.Cleanup(func() { cli.run(false, "destroy", "-auto-approve", "-input=false") })
	// Settle: the router reports the service healthy, and a refresh records that.
	if err := waitServiceReachable(t, stateAttr(t, cli, "ztna_service.idle", "id"), 1); err != nil {
		t.Fatal(err)
	}
	cli.run(false, "apply", "-refresh-only", "-auto-approve", "-input=false")
	start := time.Now()
	exitsZero := terraformAtLeast(t, cli, 1, 15)
	for i := range 10 {
		code, out := cli.exitCode("plan", "-refresh-only", "-detailed-exitcode", "-input=false", "-out=idle.tfplan")
		var plan struct {
			ResourceDrift []json.RawMessage `json:"resource_drift"`
			OutputChanges map[string]any    `json:"output_changes"`
		}
		if err := json.Unmarshal([]byte(cli.run(false, "show", "-json", "idle.tfplan")), &plan); err != nil {
			t.Fatal(err)
		}
		if len(plan.ResourceDrift) > 0 || len(plan.OutputChanges) > 0 || code == 1 || (exitsZero && code != 0) {
			t.Fatalf("refresh-only plan %d exited %d with drift %s:\n%s", i+1, code, plan.ResourceDrift, out)
		}
		// Spread the runs over a minute, across several router heartbeats and health checks.
		if wait := time.Duration(i+1)*6*time.Second - time.Since(start); wait > 0 && i < 9 {
			time.Sleep(wait)
		}
	}
	if d := time.Since(start); d < 54*time.Second {
		t.Fatalf("the ten plans took %s, want about a minute", d)
	}
}

// terraformAtLeast reports whether the CLI's terraform is version major.minor or later.
func terraformAtLeast(t *testing.T, cli *terraformCLI, major, minor int) bool {
	t.Helper()
	var v struct {
		Version string `json:"terraform_version"`
	}
	if err := json.Unmarshal([]byte(cli.run(false, "version", "-json")), &v); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(v.Version, "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("terraform version %q: %v", v.Version, err)
	}
	return ma > major || (ma == major && mi >= minor)
}
