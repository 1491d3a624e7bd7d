package ztnaprovider

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/provider/internal/acctest"
)

// The acceptance tests (TF_ACC=1) run the real terraform binary against a real dev controller
// that the harness builds and starts in a temporary data dir (needController); the provider
// finds it through the ZTNA_* environment variables the controller writes to ztna.env.
var (
	controller *acctest.Controller
	// providerBinDir holds a built terraform-provider-ztna for tests that run terraform
	// directly with dev_overrides (CLI output, example validation).
	providerBinDir string
)

var protoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"ztna": providerserver.NewProtocol6WithError(New("test")()),
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse() // testing.Short reads the flags
	if testing.Short() {
		os.Unsetenv("TF_ACC") // -short runs no terraform, whatever the environment says
	}
	if os.Getenv("TF_ACC") == "" {
		return m.Run() // acceptance tests skip themselves
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := acctest.UseLocalTerraform(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "ztna-provider-acc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// Terraform must never reach a registry: the provider under test is served in-process
	// (reattach) or through dev_overrides, and any other provider installation would have to
	// come from an empty local mirror, so it fails instead of downloading.
	rc := filepath.Join(tmp, "terraformrc")
	mirror := filepath.Join(tmp, "empty-mirror")
	if err := os.Mkdir(mirror, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(rc, []byte(fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("TF_CLI_CONFIG_FILE", rc)

	providerBinDir = filepath.Join(tmp, "provider")
	if _, err := acctest.Build(ctx, providerBinDir, "terraform-provider-ztna", acctest.Module); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testTmp = tmp
	code := m.Run()
	if controller != nil {
		if err := controller.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop controller:", err)
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "controller log (%s):\n%s\n", controller.LogPath, lastLines(controller.Log(), 60))
		}
	}
	return code
}

var (
	testTmp        string
	controllerOnce sync.Once
	controllerErr  error
)

// needController starts the dev controller on first use (tests of data sources that need no
// controller run without one) and exports its ZTNA_* variables, which is how the provider
// under test finds it.
func needController(t *testing.T) {
	t.Helper()
	testAccPreCheck(t)
	controllerOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bin, err := acctest.Binary(ctx, testTmp, "ztna-controller")
		if err != nil {
			controllerErr = fmt.Errorf("the acceptance tests need the dev controller: %w", err)
			return
		}
		dataDir := filepath.Join(testTmp, "controller")
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			controllerErr = err
			return
		}
		controller, controllerErr = acctest.StartController(ctx, bin, dataDir)
	})
	if controllerErr != nil {
		t.Fatal(controllerErr)
	}
	controller.Setenv()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// testAccPreCheck skips a test outside acceptance runs (resource.Test does the same, but
// tests that use the controller before resource.Test need it earlier).
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1")
	}
}

// apiClient is an API client to the test controller, used to change things behind
// Terraform's back (drift) and to check what the provider did.
func apiClient(t *testing.T) *apiclient.Client {
	t.Helper()
	needController(t)
	c, err := apiclient.New(controller.Env["ZTNA_ADDR"], controller.Env["ZTNA_TOKEN"], controller.Env["ZTNA_CA_FINGERPRINT"])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uniqueName keeps object names of different tests apart on the one shared controller.
func uniqueName(base string) string {
	return fmt.Sprintf("%s-%d", base, time.Now().UnixNano()%1_000_000_000)
}

// terraformCLI runs the real terraform binary in dir with the built provider installed through
// dev_overrides (no init, no registry), for tests that need terraform's own output.
type terraformCLI struct {
	t   *testing.T
	dir string
	env []string
}

func newTerraformCLI(t *testing.T, config string) *terraformCLI {
	t.Helper()
	testAccPreCheck(t)
	dir := t.TempDir()
	rc := filepath.Join(dir, ".terraformrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n}\n", "ztna/ztna", providerBinDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := &terraformCLI{t: t, dir: dir, env: append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")}
	cli.write("main.tf", requiredProviders+config)
	return cli
}

const requiredProviders = `
terraform {
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}
`

func (c *terraformCLI) write(name, content string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// run returns combined output; wantErr says whether a non-zero exit is expected.
func (c *terraformCLI) run(wantErr bool, args ...string) string {
	c.t.Helper()
	code, out := c.exitCode(args...)
	if (code != 0) != wantErr {
		c.t.Fatalf("terraform %s: exit code %d, want error=%v\n%s", strings.Join(args, " "), code, wantErr, out)
	}
	return out
}

// exitCode runs terraform and returns its exit code and output, for commands whose exit code
// carries meaning (plan -detailed-exitcode).
func (c *terraformCLI) exitCode(args ...string) (int, string) {
	c.t.Helper()
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), append(args[:1:1], append([]string{"-no-color"}, args[1:]...)...)...)
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	c.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

// planFails checks that config fails at plan time with an error holding each of phrases: bad
// input is caught before anything is created.
func planFails(t *testing.T, config string, phrases ...string) {
	t.Helper()
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps:                    []resource.TestStep{{Config: config, PlanOnly: true, ExpectError: expectError(phrases...)}},
	})
}

// expectError matches terraform's output containing each phrase in order. Terraform wraps long
// messages, so a space in a phrase matches any whitespace, including a line break.
func expectError(phrases ...string) *regexp.Regexp {
	quoted := make([]string, len(phrases))
	for i, p := range phrases {
		quoted[i] = strings.Join(strings.Fields(regexp.QuoteMeta(p)), `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(quoted, ".*"))
}

// output returns the value of a root module output (stdout only: terraform prints the
// dev_overrides warning on stderr).
func (c *terraformCLI) output(name string) string {
	c.t.Helper()
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), "output", "-no-color", "-raw", name)
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("terraform output %s: %v", name, err)
	}
	return string(out)
}
