package ztnaprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/regkey"
	"github.com/ztna/ztna/provider/internal/acctest"
)

var (
	hostBinOnce sync.Once
	hostBins    = map[string]string{}
	hostBinErr  error
)

// hostTestBinary is a ztna command the router host tests run (ztna-router, ztna-demo, ztna),
// built once per test run.
func hostTestBinary(t *testing.T, name string) string {
	t.Helper()
	hostBinOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := filepath.Join(testTmp, "hostbin")
		for _, n := range []string{"ztna-router", "ztna-demo", "ztna"} {
			var p string
			if p, hostBinErr = acctest.Binary(ctx, dir, n); hostBinErr != nil {
				return
			}
			hostBins[n] = p
		}
	})
	if hostBinErr != nil {
		t.Fatal(hostBinErr)
	}
	return hostBins[name]
}

// hostTestName is a router host name unique to this run (host names are at most 40
// characters and become namespace and state directory names).
func hostTestName(base string) string {
	return fmt.Sprintf("%s-%d", base, time.Now().UnixNano()%1_000_000)
}

// hostRouterConfig declares the router a test host runs, with a role of its own (so that no
// other test's service lands in its allowlist), and a 10-minute registration key "test" for
// it: a ztna_registration_key resource, or the ephemeral resource when ephemeral is set. The
// key may re-enrol the router, as every router host's key should: a replaced host enrols the
// enrolled router again.
func hostRouterConfig(name string, ephemeral bool) string {
	kind := "resource"
	if ephemeral {
		kind = "ephemeral"
	}
	return fmt.Sprintf(`
resource "ztna_router" "test" {
  name  = %[1]q
  roles = [%[1]q]
}

%[2]s "ztna_registration_key" "test" {
  router_id          = ztna_router.test.id
  ttl                = "10m"
  allow_reenrollment = true
}
`, name, kind)
}

// localHostConfig declares a router, a registration key and a local host running it.
func localHostConfig(name, root, bin, local, extra string) string {
	return hostRouterConfig(name, false) + fmt.Sprintf(`
resource "ztna_router_host" "test" {
  name             = %[1]q
  router_id        = ztna_router.test.id
  registration_key = ztna_registration_key.test.key
  local {
    state_root    = %[2]q
    router_binary = %[3]q
    %[4]s
  }
  timeouts {
    create = "2m"
  }
  %[5]s
}
`, name, root, bin, local, extra)
}

// routerProcesses returns the pids of processes running in a local host's state directory
// (the local driver starts the router there).
func routerProcesses(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && !isZombie(b) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func isZombie(stat []byte) bool {
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// checkRouterOnline checks through the API that the host's router is online and reports the
// host's failure domain.
func checkRouterOnline(t *testing.T, resourceName string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs := s.RootModule().Resources[resourceName]
		if rs == nil {
			return fmt.Errorf("%s not in state", resourceName)
		}
		r, err := apiClient(t).GetRouter(context.Background(), rs.Primary.Attributes["router_id"])
		if err != nil {
			return err
		}
		if r.Status != api.RouterOnline {
			return fmt.Errorf("router %s is %q after create, want online", r.ID, r.Status)
		}
		if fd := rs.Primary.Attributes["failure_domain"]; !strings.HasPrefix(fd, "local/") || r.FailureDomain != fd {
			return fmt.Errorf("router reports failure domain %q, host %q", r.FailureDomain, fd)
		}
		return nil
	}
}

// checkAllowlistHasController checks that the allowlist holds the dev controller's edge port.
func checkAllowlistHasController(t *testing.T) knownvalue.Check {
	return knownvalue.ListPartial(map[int]knownvalue.Check{0: knownvalue.StringRegexp(
		regexp.MustCompile(`^tcp 127\.0\.0\.1/32:\d+$`))})
}

// TestAccRouterHost_local: a local host is created and comes online, imports, is recreated
// in place (same enrolment, no new key) after its process is killed, and is removed by destroy.
func TestAccRouterHost_local(t *testing.T) {
	needController(t)
	bin := hostTestBinary(t, "ztna-router")
	root := t.TempDir()
	name := hostTestName("edge-local")
	dir := filepath.Join(root, name)
	config := localHostConfig(name, root, bin, "", "")
	var killed int
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("id"), knownvalue.StringExact("local:"+dir)),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_id"), knownvalue.StringExact(dir)),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_type"), knownvalue.StringExact("process")),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("private_address"), knownvalue.StringExact("127.0.0.1")),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("egress_allowlist"), checkAllowlistHasController(t)),
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("local").AtMapKey("isolation"), knownvalue.StringExact("none")),
				},
				Check: resource.ComposeTestCheckFunc(
					checkRouterOnline(t, "ztna_router_host.test"),
					resource.TestCheckResourceAttrWith("ztna_router_host.test", "local.local_addr", func(v string) error {
						if !strings.HasPrefix(v, "127.0.0.1:") || v == netnsLocalAddr {
							return fmt.Errorf("local_addr %q: want a free loopback port", v)
						}
						return nil
					}),
					func(*terraform.State) error {
						if n := len(routerProcesses(dir)); n != 1 {
							return fmt.Errorf("%d router processes run in %s, want 1", n, dir)
						}
						info, err := os.Stat(filepath.Join(dir, "registration-key"))
						if err != nil || info.Mode().Perm() != 0o600 {
							return fmt.Errorf("key file: %v, mode %v; want 0600", err, info)
						}
						return nil
					},
				),
			},
			{
				ResourceName:      "ztna_router_host.test",
				ImportState:       true,
				ImportStateId:     "local:" + dir,
				ImportStateVerify: true,
				// What only the configuration knows; the next apply adopts it without replacing.
				ImportStateVerifyIgnore: []string{"router_id", "registration_key", "egress_allowlist", "timeouts",
					"local.router_binary", "local.local_addr"},
			},
			{
				// The router process dies: the plan creates the host again, which restarts it with
				// its saved enrolment (the key is used up, and not needed).
				PreConfig: func() {
					pids := routerProcesses(dir)
					if len(pids) != 1 {
						t.Fatalf("router processes in %s: %v", dir, pids)
					}
					killed = pids[0]
					if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					waitGone(t, killed)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("ztna_registration_key.test", plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.test", tfjsonpath.New("instance_id"), knownvalue.StringExact(dir)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkRouterOnline(t, "ztna_router_host.test"),
					func(*terraform.State) error {
						if pids := routerProcesses(dir); len(pids) != 1 || pids[0] == killed {
							return fmt.Errorf("router processes after restore: %v (killed %d)", pids, killed)
						}
						return nil
					},
				),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("state directory %s left after destroy (%v)", dir, err)
			}
			if pids := routerProcesses(dir); len(pids) > 0 {
				return fmt.Errorf("router processes left after destroy: %v", pids)
			}
			return nil
		},
	})
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || isZombie(b) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d survived SIGKILL", pid)
}

// TestAccRouterHost_writeOnlyKey: the write-only key reaches the host but never the state.
func TestAccRouterHost_writeOnlyKey(t *testing.T) {
	needController(t)
	bin := hostTestBinary(t, "ztna-router")
	root := t.TempDir()
	name := hostTestName("edge-wo")
	config := hostRouterConfig(name, true) + fmt.Sprintf(`
resource "ztna_router_host" "test" {
  name                        = %[1]q
  router_id                   = ztna_router.test.id
  registration_key_wo         = ephemeral.ztna_registration_key.test.key
  registration_key_wo_version = 1
  local {
    state_root    = %[2]q
    router_binary = %[3]q
  }
}
`, name, root, bin)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeTestCheckFunc(
				checkRouterOnline(t, "ztna_router_host.test"),
				resource.TestCheckNoResourceAttr("ztna_router_host.test", "registration_key_wo"),
				resource.TestCheckNoResourceAttr("ztna_router_host.test", "registration_key"),
				checkNoKeyInState,
			),
		}},
	})
}

// TestAccRouterHost_badInput: configuration errors fail at plan time naming what to change.
func TestAccRouterHost_badInput(t *testing.T) {
	needController(t)
	const router = `
resource "ztna_router" "test" {
  name = "bad-input-host"
}
`
	host := func(body string) string {
		return router + `
resource "ztna_router_host" "test" {
  router_id        = ztna_router.test.id
  registration_key = "ztna-key-v1.x"
` + body + "\n}\n"
	}
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"no platform", host(`name = "edge-a"`), []string{"Exactly one platform block is required", "local, aws, gcp or azure", "found 0"}},
		{"two platforms", host(`name = "edge-a"
  local {}
  aws {
    region    = "eu-west-1"
    subnet_id = "subnet-1"
  }`), []string{"Exactly one platform block is required", "found 2: local, aws"}},
		{"both keys", router + `
resource "ztna_router_host" "test" {
  name                = "edge-a"
  router_id           = ztna_router.test.id
  registration_key    = "a"
  registration_key_wo = "b"
  local {}
}`, []string{"registration_key", "registration_key_wo"}},
		{"bad name", host(`name = "Edge_A"
  local {}`), []string{"Invalid name", "lower-case letters"}},
		{"unknown tier", host(`name = "edge-a"
  size = "huge"
  local {}`), []string{"size", "low-med"}},
		{"size and instance type", host(`name = "edge-a"
  size          = "med"
  instance_type = "c6i.large"
  aws {
    region    = "eu-west-1"
    subnet_id = "subnet-1"
  }`), []string{"size", "instance_type"}},
		{"instance type on local", host(`name = "edge-a"
  instance_type = "c6i.large"
  local {}`), []string{"No instance type for local hosts", "remove instance_type"}},
		{"cloud without image", host(`name = "edge-a"
  aws {
    region    = "eu-west-1"
    subnet_id = "subnet-1"
  }`), []string{"Missing image", "set image"}},
		{"aws without subnet", host(`name = "edge-a"
  image = "ami-1"
  aws {
    region = "eu-west-1"
  }`), []string{"Missing aws.subnet_id"}},
		{"relative state root", host(`name = "edge-a"
  local {
    state_root = "hosts"
  }`), []string{"Relative state_root", "abspath"}},
		{"bad isolation", host(`name = "edge-a"
  local {
    isolation = "vm"
  }`), []string{"isolation", "none", "netns"}},
		{"egress port 0", host(`name = "edge-a"
  local {}
  egress {
    destination = "10.0.0.0/8"
    ports       = "0"
  }`), []string{"Invalid egress", "port"}},
		{"egress bad destination", host(`name = "edge-a"
  local {}
  egress {
    destination = "10.0.0.1/8"
    ports       = "443"
  }`), []string{"Invalid egress", "host bits set", "10.0.0.0/8"}},
		{"bad dns server", host(`name = "edge-a"
  dns_servers = ["dns.example.com"]
  local {}`), []string{"Invalid dns_servers", "IP address"}},
		{"ntp server prefix", host(`name = "edge-a"
  ntp_servers = ["10.0.0.0/24"]
  local {}`), []string{"Invalid ntp_servers", "not a CIDR prefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			planFails(t, tc.config, tc.want...)
		})
	}
}

// TestAccRouterHost_keyErrors: a key of another router or a malformed key fails at apply,
// before anything is created.
func TestAccRouterHost_keyErrors(t *testing.T) {
	needController(t)
	root := t.TempDir()
	bin := hostTestBinary(t, "ztna-router")
	name := hostTestName("edge-keys")
	config := fmt.Sprintf(`
resource "ztna_router" "a" {
  name = "%[1]s-a"
}

resource "ztna_router" "b" {
  name = "%[1]s-b"
}

resource "ztna_registration_key" "b" {
  router_id = ztna_router.b.id
}

resource "ztna_router_host" "test" {
  name             = %[1]q
  router_id        = ztna_router.a.id
  registration_key = %[4]s
  local {
    state_root    = %[2]q
    router_binary = %[3]q
  }
}
`, name, root, bin, "%s")
	for _, tc := range []struct {
		name, key string
		want      []string
	}{
		{"key of another router", "ztna_registration_key.b.key", []string{"Registration key of another router", "router_id"}},
		{"malformed key", `"ztna-key-v1.not-base64!"`, []string{"Invalid registration key", "base64url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      fmt.Sprintf(config, tc.key),
					ExpectError: expectError(tc.want...),
				}},
				CheckDestroy: func(*terraform.State) error {
					if entries, _ := os.ReadDir(root); len(entries) > 1 { // only the driver's lock file
						return fmt.Errorf("a failed create left %v in the state root", entries)
					}
					return nil
				},
			})
		})
	}
}

func TestControllerEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  regkey.Key
		want []egress.ControllerEndpoint
		err  string
	}{
		{
			name: "dev controller: every plane on its own port",
			key:  regkey.Key{Edge: []string{"https://127.0.0.1:4443"}, Control: []string{"127.0.0.1:6000"}, Fabric: []string{"127.0.0.1:8000"}},
			want: []egress.ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{4443}}, {Host: "127.0.0.1", Ports: []uint16{6000}}, {Host: "127.0.0.1", Ports: []uint16{8000}}},
		},
		{
			name: "edge without port, no control/fabric: the production ports",
			key:  regkey.Key{Edge: []string{"https://ctrl.example.com"}},
			want: []egress.ControllerEndpoint{{Host: "ctrl.example.com", Ports: []uint16{443}}, {Host: "ctrl.example.com"}},
		},
		{name: "no endpoint", key: regkey.Key{}, err: "names no controller endpoint"},
		{name: "bad edge URL", key: regkey.Key{Edge: []string{"::"}}, err: "is not a URL"},
		{name: "bad control endpoint", key: regkey.Key{Edge: []string{"https://c"}, Control: []string{"c:0"}}, err: "control endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := controllerEndpoints(&tc.key)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("endpoints = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestImportedModel(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		id, platform, instance string
		err                    string
	}{
		{id: "local:/var/lib/ztna/router-hosts/lab", platform: "local", instance: "/var/lib/ztna/router-hosts/lab"},
		{id: "aws:eu-west-1:i-0123456789abcdef0", platform: "aws", instance: "i-0123456789abcdef0"},
		{id: "gcp:projects/p/zones/europe-west1-b/instances/edge-b", platform: "gcp", instance: "projects/p/zones/europe-west1-b/instances/edge-b"},
		{id: "azure:westeurope:/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/edge-c", platform: "azure",
			instance: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/edge-c"},
		{id: "local:relative/dir", err: "absolute state directory"},
		{id: "i-0123", err: "is not a router host id"},
		{id: "aws:i-0123", err: "is not a router host id"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			m, err := importedModel(ctx, tc.id)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, diags := platformOf(ctx, m)
			if diags.HasError() {
				t.Fatal(diags)
			}
			if p.name() != tc.platform || m.InstanceID.ValueString() != tc.instance {
				t.Fatalf("platform %s, instance %s", p.name(), m.InstanceID.ValueString())
			}
			if got := p.name() + ":" + p.qualify(m.InstanceID.ValueString()); got != tc.id {
				t.Fatalf("resource id round trip: %s, want %s", got, tc.id)
			}
		})
	}
}

// redundantRouterModule is the absolute path of examples/modules/redundant-router.
func redundantRouterModule(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "examples", "modules", "redundant-router"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// moduleCLI is a terraform working directory holding examples/modules/redundant-router as the
// root module (so its outputs are the root's) with vars as terraform.tfvars.json,
// run by the real terraform with the built provider (dev_overrides), as the quickstart runs.
func moduleCLI(t *testing.T, vars map[string]any) *terraformCLI {
	t.Helper()
	cli := newTerraformCLI(t, "")
	cli.write("main.tf", "") // the module declares its required_providers
	files, err := filepath.Glob(filepath.Join(redundantRouterModule(t), "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("module files: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cli.write("module_"+filepath.Base(f), string(b))
	}
	// The pair calls ./slot twice: a local module, which terraform get installs without the
	// network (terraform init would look the provider up).
	if err := os.Symlink(filepath.Join(redundantRouterModule(t), "slot"), filepath.Join(cli.dir, "slot")); err != nil {
		t.Fatal(err)
	}
	cli.run(false, "get", "-no-color")
	b, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	cli.write("terraform.tfvars.json", string(b))
	return cli
}

func (c *terraformCLI) outputJSON(name string, v any) {
	c.t.Helper()
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), "output", "-no-color", "-json", name)
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("terraform output %s: %v", name, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		c.t.Fatalf("terraform output %s: %v", name, err)
	}
}

// TestAccRedundantRouterModule applies examples/modules/redundant-router with two local
// placements: two routers with the shared roles, two keys, two hosts, both online, in distinct
// failure domains; a second plan is empty; destroy removes both hosts.
func TestAccRedundantRouterModule(t *testing.T) {
	needController(t)
	t.Parallel()
	name := hostTestName("pair")
	root := t.TempDir()
	local := map[string]any{"local": map[string]any{"state_root": root, "router_binary": hostTestBinary(t, "ztna-router")}}
	cli := moduleCLI(t, map[string]any{"name": name, "roles": []string{name}, "placements": []any{local, local}})
	cli.run(false, "apply", "-auto-approve", "-input=false")
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			cli.run(false, "destroy", "-auto-approve", "-input=false")
		}
	})
	var domains, ids []string
	cli.outputJSON("failure_domains", &domains)
	cli.outputJSON("router_ids", &ids)
	if len(domains) != 2 || domains[0] == domains[1] || !strings.Contains(domains[0], name+"-a-") || !strings.Contains(domains[1], name+"-b-") {
		t.Errorf("failure domains = %v", domains)
	}
	for _, id := range ids {
		r, err := apiClient(t).GetRouter(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != api.RouterOnline || len(r.Roles) != 1 || r.Roles[0] != name {
			t.Errorf("router %s: status %q, roles %v", r.Name, r.Status, r.Roles)
		}
	}
	cli.run(false, "plan", "-detailed-exitcode", "-input=false") // exit status 2 would mean changes
	cli.run(false, "destroy", "-auto-approve", "-input=false")
	destroyed = true
	if entries, _ := os.ReadDir(root); len(entries) > 1 { // only the driver's lock file
		t.Errorf("destroy left %v in the state root", entries)
	}
}

// TestAccRedundantRouterModule_sameFailureDomain: two placements in one availability zone fail
// the apply, naming the shared failure domain.
func TestAccRedundantRouterModule_sameFailureDomain(t *testing.T) {
	needController(t)
	fake := useEC2Fake(t)
	bootEC2(t, fake)
	name := hostTestName("pair-aws")
	aws := map[string]any{"image": "ami-router", "aws": map[string]any{"region": "eu-west-1", "subnet_id": "subnet-1"}}
	cli := moduleCLI(t, map[string]any{"name": name, "roles": []string{name}, "placements": []any{aws, aws}})
	out := cli.run(true, "apply", "-auto-approve", "-input=false")
	if !expectError("Both router hosts run in aws/eu-west-1/eu-west-1b", "place them in different zones").MatchString(out) {
		t.Errorf("apply output does not name the shared failure domain:\n%s", out)
	}
	cli.run(false, "destroy", "-auto-approve", "-input=false")
	if gs := fake.Groups(); len(gs) != 0 {
		t.Errorf("security groups left after destroy: %+v", gs)
	}
}

// TestAccQuickstartExampleValidates: examples/quickstart (what make quickstart applies) is a
// valid configuration for the built provider.
func TestAccQuickstartExampleValidates(t *testing.T) {
	t.Parallel()
	cli := newTerraformCLI(t, "")
	cli.write("main.tf", "") // the example declares its required_providers
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "quickstart", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	cli.write("quickstart.tf", string(b))
	cli.run(false, "validate")
}

// TestAccRouterHost_serviceAddedLater: a service added after the host was created reaches the
// host's allowlist in place: the next plan shows an in-place update of egress_allowlist only
// (the process keeps running, its instance id stays), and after apply the plan is empty.
func TestAccRouterHost_serviceAddedLater(t *testing.T) {
	needController(t)
	t.Parallel()
	name := hostTestName("edge-late")
	host := localHostConfig(name, t.TempDir(), hostTestBinary(t, "ztna-router"), "", "")
	cli := newTerraformCLI(t, host)
	cli.run(false, "apply", "-auto-approve", "-input=false")
	t.Cleanup(func() { cli.run(false, "destroy", "-auto-approve", "-input=false") })
	before := stateAttr(t, cli, "ztna_router_host.test", "instance_id")
	cli.write("main.tf", requiredProviders+host+fmt.Sprintf(`
resource "ztna_service" "late" {
  name         = "%[1]s-late"
  address      = "10.9.8.7"
  port         = 5432
  router_roles = [%[1]q]
}
`, name))
	cli.run(false, "apply", "-auto-approve", "-input=false")
	out := cli.run(false, "plan", "-input=false")
	for _, want := range []string{"ztna_router_host.test will be updated in-place", `+ "tcp 10.9.8.7/32:5432"`, "Plan: 0 to add, 1 to change, 0 to destroy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("plan after adding a service lacks %q:\n%s", want, out)
		}
	}
	cli.run(false, "apply", "-auto-approve", "-input=false")
	if out := cli.run(false, "plan", "-input=false", "-detailed-exitcode"); !strings.Contains(out, "No changes") {
		t.Fatalf("plan after the in-place update is not empty:\n%s", out)
	}
	if after := stateAttr(t, cli, "ztna_router_host.test", "instance_id"); before == "" || after != before {
		t.Fatalf("the host was replaced: instance %q, was %q", after, before)
	}
}

// stateAttr is a string attribute of a resource in the CLI's state (terraform show -json).
func stateAttr(t *testing.T, cli *terraformCLI, address, name string) string {
	t.Helper()
	var st struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(cli.run(false, "show", "-json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Values.RootModule.Resources {
		if r.Address == address {
			v, _ := r.Values[name].(string)
			return v
		}
	}
	return ""
}

// TestAccRouterHost_keyNotLogged: with TF_LOG=trace for terraform and the provider (the local
// driver logs through the provider's log), neither the registration key nor its secret appears
// in a log, the router's own log included.
func TestAccRouterHost_keyNotLogged(t *testing.T) {
	needController(t)
	logFile := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_ACC_LOG", "TRACE")
	t.Setenv("TF_ACC_LOG_PATH", logFile)
	root := t.TempDir()
	name := hostTestName("edge-log")
	var key string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: localHostConfig(name, root, hostTestBinary(t, "ztna-router"), "", ""),
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttrWith("ztna_registration_key.test", "key", capture(&key)),
				func(*terraform.State) error {
					b, err := os.ReadFile(filepath.Join(root, name, "router.log"))
					if err != nil {
						return err
					}
					if strings.Contains(string(b), strings.TrimPrefix(key, regkey.Prefix)) {
						return errors.New("the router's log contains the registration key")
					}
					return nil
				},
			),
		}},
	})
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, "creating router host") {
		t.Fatalf("trace log (%d bytes) lacks the resource's own log line: logging was not on", len(b))
	}
	k, err := regkey.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	for what, secret := range map[string]string{"registration key payload": strings.TrimPrefix(key, regkey.Prefix), "key secret": k.Secret} {
		if strings.Contains(log, secret) {
			t.Errorf("the %s appears in the TF_LOG=trace output", what)
		}
	}
}

// TestInstanceType: a cloud block's size tier maps through the sizing table of the cloud of
// the same name; a local host is a process whatever the tier.
func TestInstanceType(t *testing.T) {
	for _, tc := range []struct {
		p    platform
		want string
	}{
		{&localPlatform{}, "process"},
		{&awsPlatform{}, "c6i.xlarge"},
		{&gcpPlatform{}, "e2-standard-4"},
		{&azurePlatform{}, "Standard_F4s_v2"},
	} {
		got, err := instanceType(tc.p, "med")
		if err != nil || got != tc.want {
			t.Errorf("%s: instance type %q, %v; want %q", tc.p.name(), got, err, tc.want)
		}
	}
}

// TestAccRouterHost_safeReplacement: a change that replaces a host whose stateful key was
// used fails at plan time, naming the fix, and nothing is destroyed; a router deleted outside
// Terraform (its certificate revoked) heals in one apply: router, key and host are created
// again and the host enrols with the new key instead of its saved, revoked enrolment.
func TestAccRouterHost_safeReplacement(t *testing.T) {
	needController(t)
	t.Parallel()
	root := t.TempDir()
	name := hostTestName("edge-safe")
	bin := hostTestBinary(t, "ztna-router")
	config := localHostConfig(name, root, bin, "", "")
	var routerID string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check:  resource.TestCheckResourceAttrWith("ztna_router.test", "id", capture(&routerID)),
			},
			{
				// A new image label replaces the host; the key in state is used.
				Config:      localHostConfig(name, root, bin, "", `image = "v2"`),
				ExpectError: expectError("cannot be replaced with its registration key", "is used", "registration_key_wo", "keepers"),
			},
			{
				// The failed plan destroyed nothing: the same router is still online.
				PreConfig: func() { waitRouterStatus(t, routerID, api.RouterOnline) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionNoop)},
				},
			},
			{
				// The router is deleted behind Terraform's back: one apply heals everything.
				PreConfig: func() {
					if err := apiClient(t).DeleteRouter(context.Background(), routerID); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith("ztna_router.test", "id", func(id string) error {
						if id == routerID {
							return fmt.Errorf("router %s was not re-created", id)
						}
						waitRouterStatus(t, id, api.RouterOnline)
						return nil
					}),
				),
			},
		},
	})
}

// TestAccRouterHost_reenrollmentIntent: a host fed an ephemeral key created without
// allow_reenrollment enrols its new router, but replacing it (a new image) would enrol the
// enrolled router again, which the controller refuses to such a key: the plan fails naming
// the fix and nothing is destroyed; with allow_reenrollment = true the replacement goes
// through and the new host's router comes online.
func TestAccRouterHost_reenrollmentIntent(t *testing.T) {
	needController(t)
	bin := hostTestBinary(t, "ztna-router")
	root := t.TempDir()
	name := hostTestName("edge-intent")
	config := func(intent, image string) string {
		return fmt.Sprintf(`
resource "ztna_router" "test" {
  name  = %[1]q
  roles = [%[1]q]
}

ephemeral "ztna_registration_key" "test" {
  router_id = ztna_router.test.id
  ttl       = "10m"
  %[4]s
}

resource "ztna_router_host" "test" {
  name                = %[1]q
  router_id           = ztna_router.test.id
  registration_key_wo = ephemeral.ztna_registration_key.test.key
  image               = %[5]q
  local {
    state_root    = %[2]q
    router_binary = %[3]q
  }
  timeouts {
    create = "2m"
  }
}
`, name, root, bin, intent, image)
	}
	var routerID string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// First enrolment of a new router: the intent is not needed.
				Config: config("", "v1"),
				Check: resource.ComposeTestCheckFunc(
					checkRouterOnline(t, "ztna_router_host.test"),
					resource.TestCheckResourceAttrWith("ztna_router.test", "id", capture(&routerID)),
				),
			},
			{
				Config:      config("", "v2"),
				ExpectError: expectError("cannot enrol its router", "already enrolled", "allow_reenrollment = true", "reset-enrollment"),
			},
			{
				// The refused plan destroyed nothing: the same router is still online.
				PreConfig: func() { waitRouterStatus(t, routerID, api.RouterOnline) },
				Config:    config("", "v1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionNoop)},
				},
			},
			{
				Config: config("allow_reenrollment = true", "v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("ztna_router_host.test", plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: resource.ComposeTestCheckFunc(
					checkRouterOnline(t, "ztna_router_host.test"),
					resource.TestCheckResourceAttrWith("ztna_router.test", "id", func(id string) error {
						if id != routerID {
							return fmt.Errorf("router %s replaced by %s: the host's replacement must keep the router", routerID, id)
						}
						return nil
					}),
				),
			},
		},
	})
}
