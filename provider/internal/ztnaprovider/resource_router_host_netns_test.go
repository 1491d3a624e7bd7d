package ztnaprovider

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// demoNetwork is the private customer network ztna-demo builds: a namespace with a DNS server
// and an HTTP service that the host itself cannot connect to.
type demoNetwork struct {
	t           *testing.T
	bin, dir    string
	FQDN        string `json:"fqdn"`
	DNSServer   string `json:"dns_server"`
	ServiceAddr string `json:"ns_addr"`
}

func startDemoNetwork(t *testing.T) *demoNetwork {
	t.Helper()
	d := &demoNetwork{t: t, bin: hostTestBinary(t, "ztna-demo"), dir: t.TempDir()}
	// A /30 and namespace of its own, so the quickstart's demo network can run beside it.
	out, err := exec.Command(d.bin, "up", "--state-dir", d.dir, "--namespace", "ztna-demo-acc", "--subnet", "10.233.0.4/30").Output()
	if err != nil {
		t.Fatalf("ztna-demo up: %v\n%s", err, exitStderr(err))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(d.bin, "down", "--state-dir", d.dir).CombinedOutput(); err != nil {
			t.Errorf("ztna-demo down: %v\n%s", err, out)
		}
	})
	if err := json.Unmarshal(out, d); err != nil {
		t.Fatalf("ztna-demo up printed %q: %v", out, err)
	}
	return d
}

func exitStderr(err error) string {
	if e, ok := err.(*exec.ExitError); ok {
		return string(e.Stderr)
	}
	return ""
}

// link lets the namespaced routers at addrs reach the demo network.
func (d *demoNetwork) link(addrs ...string) error {
	out, err := exec.Command(d.bin, append([]string{"link-router", "--state-dir", d.dir}, addrs...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ztna-demo link-router: %v: %s", err, out)
	}
	return nil
}

// identityTokenOutput is left out of the import step's configuration: the framework cannot
// read a state whose outputs an import never evaluated ("unexpected output type: <nil>").
const identityTokenOutput = `output "identity_token" {
  value     = ztna_identity.client.enrollment_token
  sensitive = true
}
`

func netnsHostsConfig(name, root, routerBin, dnsServer, fqdn string) string {
	return netnsHostsConfigWith(name, root, routerBin, dnsServer, fqdn, "")
}

// netnsHostsConfigWith adds a second service at secondAddr (host:port) when it is not empty.
func netnsHostsConfigWith(name, root, routerBin, dnsServer, fqdn, secondAddr string) string {
	services := "[ztna_service.app.name]"
	second := ""
	if secondAddr != "" {
		host, port, _ := net.SplitHostPort(secondAddr)
		services = "[ztna_service.app.name, ztna_service.second.name]"
		second = fmt.Sprintf(`
resource "ztna_service" "second" {
  name         = "${local.name}-second"
  address      = %q
  port         = %s
  router_roles = [local.name]
}
`, host, port)
	}
	config := second + fmt.Sprintf(`
locals {
  name = %[1]q
}

resource "ztna_service" "app" {
  name         = "${local.name}-app"
  address      = %[2]q
  port         = 80
  router_roles = [local.name]
}

resource "ztna_identity" "client" {
  name  = "${local.name}-client"
  roles = ["${local.name}-client"]
}

resource "ztna_service_policy" "client_to_app" {
  name           = "${local.name}-client-to-app"
  identity_roles = ["${local.name}-client"]
  service_names  = %[3]s
}

`+identityTokenOutput, name, fqdn, services)
	// Two routers with the service's role, each on its own isolated host.
	for _, h := range []string{"a", "b"} {
		config += fmt.Sprintf(`
resource "ztna_router" %[1]q {
  name  = "${local.name}-%[1]s"
  roles = [local.name]
}

resource "ztna_registration_key" %[1]q {
  router_id = ztna_router.%[1]s.id
  ttl       = "10m"
}

resource "ztna_router_host" %[1]q {
  name             = "${local.name}-%[1]s"
  router_id        = ztna_router.%[1]s.id
  registration_key = ztna_registration_key.%[1]s.key
  dns_servers      = [%[4]q]
  local {
    state_root    = %[2]q
    router_binary = %[3]q
    isolation     = "netns"
  }
  depends_on = [ztna_service.app]
}
`, h, root, routerBin, strings.TrimSuffix(dnsServer, ":53"))
	}
	return config
}

// TestAccRouterHost_netns applies two local hosts with isolation "netns" that host a private
// service in the demo network: the service answers through the overlay (ztna dial from the
// host), while connections into either router namespace fail and the host cannot reach the
// service directly. A second plan is empty (checked by the framework after every step). A
// killed router process is planned for creation and restored by the next apply. A service
// added to the running pair reaches both namespace firewalls in place (the plan after it shows
// in-place updates of the two hosts and nothing else, no router restarts) and answers through
// the overlay; an accept rule inserted into a namespace's chain shows as drift and is removed
// in place.
func TestAccRouterHost_netns(t *testing.T) {
	needController(t)
	if os.Geteuid() != 0 {
		t.Skip("isolation \"netns\" needs root")
	}
	demo := startDemoNetwork(t)
	root := t.TempDir()
	name := hostTestName("edge-ns")
	config := netnsHostsConfig(name, root, hostTestBinary(t, "ztna-router"), demo.DNSServer, demo.FQDN)
	identity := filepath.Join(t.TempDir(), "client.identity")
	var killedPID int
	second := startSecondService(t, demo)
	withSecond := netnsHostsConfigWith(name, root, hostTestBinary(t, "ztna-router"), demo.DNSServer, demo.FQDN, second)
	var pids map[string][]int
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.a", tfjsonpath.New("local").AtMapKey("local_addr"), knownvalue.StringExact(netnsLocalAddr)),
					statecheck.ExpectKnownValue("ztna_router_host.a", tfjsonpath.New("private_address"), knownvalue.StringRegexp(regexpMustNetns)),
					statecheck.ExpectKnownValue("ztna_router_host.b", tfjsonpath.New("private_address"), knownvalue.StringRegexp(regexpMustNetns)),
				},
				Check: resource.ComposeTestCheckFunc(
					func(s *terraform.State) error {
						a, b := hostAttrs(s, "a"), hostAttrs(s, "b")
						if a["failure_domain"] == b["failure_domain"] || a["private_address"] == b["private_address"] {
							return fmt.Errorf("the two hosts share a failure domain or address: %s %s / %s %s",
								a["failure_domain"], a["private_address"], b["failure_domain"], b["private_address"])
						}
						return enrollIdentity(t, s, identity)
					},
					checkOverlay(t, demo, identity),
				),
			},
			{
				// Import reads back from the host's record the isolation (a netns host imports as
				// netns, not as a plain process), the router it enrols and its DNS servers.
				Config:            strings.Replace(config, identityTokenOutput, "", 1),
				ResourceName:      "ztna_router_host.a",
				ImportState:       true,
				ImportStateId:     "local:" + filepath.Join(root, name+"-a"),
				ImportStateVerify: true,
				// What only the configuration knows; the next apply adopts it without replacing.
				ImportStateVerifyIgnore: []string{"registration_key", "egress_allowlist", "timeouts",
					"local.router_binary", "local.local_addr"},
			},
			{
				// A router process dies: planned create of that host only; the apply restores it.
				PreConfig: func() {
					pids := routerProcesses(filepath.Join(root, name+"-a"))
					if len(pids) != 1 {
						t.Fatalf("router processes of host a: %v", pids)
					}
					killedPID = pids[0]
					syscall.Kill(killedPID, syscall.SIGKILL)
					waitGone(t, killedPID)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_router_host.a", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("ztna_router_host.b", plancheck.ResourceActionNoop),
					},
				},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						if pids := routerProcesses(filepath.Join(root, name+"-a")); len(pids) != 1 || pids[0] == killedPID {
							return fmt.Errorf("host a's router after restore: %v", pids)
						}
						return nil
					},
					checkOverlay(t, demo, identity),
				),
			},
			{
				// A service is added. The hosts were planned before it existed on the controller,
				// so their firewalls follow on the next plan.
				PreConfig: func() { pids = hostRouterPIDs(t, root, name) },
				Config:    withSecond,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_service.second", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("ztna_router_host.a", plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction("ztna_router_host.b", plancheck.ResourceActionNoop),
					},
				},
				ExpectNonEmptyPlan: true,
			},
			{
				// ... in place: both hosts' allowlists change, nothing is created or destroyed.
				Config: withSecond,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_router_host.a", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("ztna_router_host.b", plancheck.ResourceActionUpdate),
						onlyUpdates{},
					},
				},
				Check: resource.ComposeTestCheckFunc(
					checkSamePIDs(t, root, name, &pids),
					checkNamespaceAllows(t, second),
					checkSecondService(t, identity, second),
					checkOverlay(t, demo, identity),
				),
			},
			{
				// An accept rule inserted into host a's namespace firewall: drift, repaired in place.
				PreConfig: func() {
					ns := hostNamespace(t, filepath.Join(root, name+"-a"))
					if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "insert", "rule", "inet", "ztna", "output", "accept").CombinedOutput(); err != nil {
						t.Fatalf("nft insert: %v: %s", err, out)
					}
				},
				Config: withSecond,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("ztna_router_host.a", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("ztna_router_host.b", plancheck.ResourceActionNoop),
						onlyUpdates{},
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ztna_router_host.a", tfjsonpath.New("firewall_drift"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkSamePIDs(t, root, name, &pids),
					func(*terraform.State) error {
						ns := hostNamespace(t, filepath.Join(root, name+"-a"))
						out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "ztna", "output").CombinedOutput()
						if err != nil || regexp.MustCompile(`(?m)^\s+accept$`).Match(out) {
							return fmt.Errorf("host a's output chain after the repair (%v):\n%s", err, out)
						}
						return nil
					},
				),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			for _, h := range []string{"a", "b"} {
				if _, err := os.Stat(filepath.Join(root, name+"-"+h)); !os.IsNotExist(err) {
					return fmt.Errorf("host %s's state directory is left (%v)", h, err)
				}
			}
			return nil
		},
	})
}

// regexpMustNetns matches namespace addresses of the local driver's default pool.
var regexpMustNetns = regexp.MustCompile(`^10\.231\.\d+\.\d+$`)

func hostAttrs(s *terraform.State, key string) map[string]string {
	return s.RootModule().Resources["ztna_router_host."+key].Primary.Attributes
}

// enrollIdentity enrols the client identity once, with the token from the state.
func enrollIdentity(t *testing.T, s *terraform.State, out string) error {
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	return enrollToken(t, s.RootModule().Outputs["identity_token"].Value.(string), out)
}

// enrollToken enrols a client identity with an enrolment token into the identity file out.
func enrollToken(t *testing.T, token, out string) error {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(hostTestBinary(t, "ztna"), "identity", "enroll", "--token-file", tokenFile, "--out", out)
	cmd.Env = append(os.Environ(), "ZTNA_IDENTITY=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ztna identity enroll: %v: %s", err, b)
	}
	return nil
}

// checkOverlay links the router namespaces to the demo network, waits until both routers
// report the service reachable, then requests it through the overlay and checks that nothing
// can connect into the router namespaces and that the host cannot reach the service itself.
func checkOverlay(t *testing.T, demo *demoNetwork, identity string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a, b := hostAttrs(s, "a"), hostAttrs(s, "b")
		if err := demo.link(a["private_address"], b["private_address"]); err != nil {
			return err
		}
		if err := waitServiceReachable(t, s.RootModule().Resources["ztna_service.app"].Primary.ID, 2); err != nil {
			return err
		}
		before := servedStreams(t, a, b)
		resp, err := dialHTTP(t, identity, demo.FQDN)
		if err != nil {
			return err
		}
		if !strings.Contains(resp, "200 OK") || !strings.Contains(resp, "Hello from "+demo.FQDN) {
			return fmt.Errorf("through the overlay, %s answered:\n%s", demo.FQDN, resp)
		}
		if after := servedStreams(t, a, b); after != before+1 {
			return fmt.Errorf("the routers served %d streams before and %d after the request, want one more", before, after)
		}
		// Inbound into either router namespace: refused or dropped, although the router
		// listens on its local endpoint there.
		for _, h := range []map[string]string{a, b} {
			for _, port := range []string{"9262", "80", "443", "22"} {
				if c, err := net.DialTimeout("tcp", net.JoinHostPort(h["private_address"], port), 500*time.Millisecond); err == nil {
					c.Close()
					return fmt.Errorf("connected into router namespace %s on port %s", h["private_address"], port)
				}
			}
		}
		// The host itself cannot reach the private service.
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(demo.ServiceAddr, "80"), 500*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("the host reached the demo service at %s directly", demo.ServiceAddr)
		}
		return nil
	}
}

// waitServiceReachable waits until n routers report the service resolvable and reachable.
func waitServiceReachable(t *testing.T, serviceID string, n int) error {
	deadline := time.Now().Add(45 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		routes, err := apiClient(t).ServiceRouters(context.Background(), serviceID)
		if err != nil {
			return err
		}
		ok := 0
		var states []string
		for _, r := range routes {
			states = append(states, fmt.Sprintf("%s:%s resolvable=%v reachable=%v", r.RouterName, r.Status, r.Resolvable, r.Reachable))
			if r.Status == "online" && r.Resolvable && r.Reachable {
				ok++
			}
		}
		if ok >= n {
			return nil
		}
		last = strings.Join(states, ", ")
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("service %s not reachable by %d routers after 45s: %s", serviceID, n, last)
}

// dialHTTP sends one HTTP request to fqdn:80 through the overlay with `ztna dial`.
func dialHTTP(t *testing.T, identity, fqdn string) (string, error) {
	cmd := exec.Command(hostTestBinary(t, "ztna"), "dial", fqdn+":80", "--identity", identity, "--timeout", "10s")
	cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\nHost: " + fqdn + "\r\n\r\n")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ztna dial %s:80: %v: %s", fqdn, err, exitStderr(err))
	}
	return string(out), nil
}

// servedStreams sums ztna_router_streams_total{result="ok"} over the hosts' routers, read from
// each router's local metrics endpoint inside its namespace.
func servedStreams(t *testing.T, hosts ...map[string]string) int {
	total := 0
	for _, h := range hosts {
		pids := routerProcesses(h["instance_id"])
		if len(pids) != 1 {
			t.Errorf("router processes of %s: %v", h["instance_id"], pids)
			continue
		}
		ns, err := exec.Command("ip", "netns", "identify", strconv.Itoa(pids[0])).Output()
		if err != nil {
			t.Errorf("ip netns identify %d: %v", pids[0], err)
			continue
		}
		out, err := exec.Command("ip", "netns", "exec", strings.TrimSpace(string(ns)),
			"curl", "-s", "-m", "2", "http://"+h["local.local_addr"]+"/metrics").Output()
		if err != nil {
			t.Errorf("metrics of %s: %v", h["instance_id"], err)
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `ztna_router_streams_total{result="ok"} `); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += int(n)
			}
		}
	}
	return total
}

// startSecondService runs a second HTTP service in the demo network (port 8080 of its
// service address) and returns its address.
func startSecondService(t *testing.T, demo *demoNetwork) string {
	t.Helper()
	addr := net.JoinHostPort(demo.ServiceAddr, "8080")
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command("ip", "netns", "exec", "ztna-demo-acc", demo.bin, "serve", "--dns", "127.0.0.1:5399",
		"--http", addr, "--name", "second."+demo.FQDN, "--answer", demo.ServiceAddr, "--ready-file", ready)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("the second demo service did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostRouterPIDs are the router processes of hosts a and b.
func hostRouterPIDs(t *testing.T, root, name string) map[string][]int {
	out := map[string][]int{}
	for _, h := range []string{"a", "b"} {
		out[h] = routerProcesses(filepath.Join(root, name+"-"+h))
		if len(out[h]) != 1 {
			t.Fatalf("router processes of host %s: %v", h, out[h])
		}
	}
	return out
}

// checkSamePIDs: no router was restarted since pids were taken.
func checkSamePIDs(t *testing.T, root, name string, pids *map[string][]int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for h, was := range *pids {
			if now := routerProcesses(filepath.Join(root, name+"-"+h)); len(now) != 1 || now[0] != was[0] {
				return fmt.Errorf("host %s's router was restarted: pid %v, was %v", h, now, was)
			}
		}
		return nil
	}
}

// hostNamespace is the network namespace a host's router runs in.
func hostNamespace(t *testing.T, dir string) string {
	t.Helper()
	pids := routerProcesses(dir)
	if len(pids) != 1 {
		t.Fatalf("router processes of %s: %v", dir, pids)
	}
	ns, err := exec.Command("ip", "netns", "identify", strconv.Itoa(pids[0])).Output()
	if err != nil {
		t.Fatalf("ip netns identify %d: %v", pids[0], err)
	}
	return strings.TrimSpace(string(ns))
}

// checkNamespaceAllows: both hosts' namespace firewalls accept the target now.
func checkNamespaceAllows(t *testing.T, target string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		host, port, _ := net.SplitHostPort(target)
		want := fmt.Sprintf("ip daddr %s tcp dport %s accept", host, port)
		for _, h := range []string{"a", "b"} {
			ns := hostNamespace(t, hostAttrs(s, h)["instance_id"])
			out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "ztna", "output").CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				return fmt.Errorf("host %s's output chain lacks %q (%v):\n%s", h, want, err, out)
			}
		}
		return nil
	}
}

// checkSecondService requests the second service through the overlay once both routers reach it.
func checkSecondService(t *testing.T, identity, target string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		if err := waitServiceReachable(t, s.RootModule().Resources["ztna_service.second"].Primary.ID, 2); err != nil {
			return err
		}
		cmd := exec.Command(hostTestBinary(t, "ztna"), "dial", target, "--identity", identity, "--timeout", "10s")
		cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\nHost: second\r\n\r\n")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "200 OK") {
			return fmt.Errorf("ztna dial %s: %v: %s%s", target, err, out, exitStderr(err))
		}
		return nil
	}
}

// onlyUpdates fails a plan that creates, replaces or destroys anything.
type onlyUpdates struct{}

func (onlyUpdates) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Change.Actions.Create() || rc.Change.Actions.Delete() || rc.Change.Actions.Replace() {
			resp.Error = fmt.Errorf("%s is planned to %v; want in-place updates only", rc.Address, rc.Change.Actions)
			return
		}
	}
}
