package controller_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
)

func client(t *testing.T, env map[string]string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(env["ZTNA_ADDR"], env["ZTNA_TOKEN"], env["ZTNA_CA_FINGERPRINT"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestDevStartsFastWithEnvFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	p, took := startDev(t, dir)
	t.Logf("first start ready after %v", took)
	if took > 2*time.Second {
		t.Errorf("dev controller took %v to be ready, want under 2s", took)
	}
	env := readEnv(t, dir)
	if !strings.HasPrefix(env["ZTNA_ADDR"], "https://127.0.0.1:") {
		t.Fatalf("ZTNA_ADDR = %q", env["ZTNA_ADDR"])
	}
	caPEM, err := os.ReadFile(env["ZTNA_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := pki.ParseCertPEM(caPEM)
	if pki.Fingerprint(ca.Raw) != env["ZTNA_CA_FINGERPRINT"] {
		t.Fatalf("ZTNA_CA_FINGERPRINT %s does not match ZTNA_CA_FILE", env["ZTNA_CA_FINGERPRINT"])
	}
	for file, mode := range map[string]os.FileMode{"ztna.env": 0o600, "ca-key.pem": 0o600, "admin-token": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v err %v, want %v", file, fi.Mode().Perm(), err, mode)
		}
	}
	banner := strings.Join(p.stdout, "\n")
	for _, want := range []string{env["ZTNA_ADDR"], env["ZTNA_CONTROL_ADDR"], env["ZTNA_FABRIC_ADDR"], env["ZTNA_CA_FINGERPRINT"]} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %s:\n%s", want, banner)
		}
	}
	if strings.Contains(banner+p.logs(), env["ZTNA_TOKEN"]) {
		t.Error("the admin token was printed or logged")
	}
	if _, err := client(t, env).ListRouters(ctx(t)); err != nil {
		t.Fatalf("API with the env file's settings: %v", err)
	}
	// A client pinned to another CA refuses this controller and says why.
	other, _ := pki.NewCA("another network")
	pinnedElsewhere := client(t, map[string]string{"ZTNA_ADDR": env["ZTNA_ADDR"], "ZTNA_TOKEN": env["ZTNA_TOKEN"], "ZTNA_CA_FINGERPRINT": other.Fingerprint()})
	_, err = pinnedElsewhere.ListRouters(ctx(t))
	if !apiclient.IsPinMismatch(err) || !strings.Contains(err.Error(), "TLS interception or wrong controller") {
		t.Fatalf("client pinned to another CA: %v", err)
	}
	// The control plane is served with mutual TLS: a client without a certificate is refused.
	conn, err := tls.Dial("tcp", env["ZTNA_CONTROL_ADDR"], &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Error("control plane accepted a client without a certificate")
	}
	// The fabric port is reserved but not opened while no hub is attached.
	if strings.Contains(banner, "fabric") && strings.Contains(banner, "reserved") {
		if c, err := net.DialTimeout("tcp", env["ZTNA_FABRIC_ADDR"], time.Second); err == nil {
			c.Close()
			t.Error("the fabric port accepts connections although no component serves it")
		}
	}
	p.stop(t)
}

// TestDevSurvivesSIGKILL fills a dev controller, kills it hard, restarts it on the same data
// dir and checks that objects, CA, token and ports survived and that keys issued before still
// work exactly once.
func TestDevSurvivesSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	p, _ := startDev(t, dir, "--cert-lifetime", "90s")
	env := readEnv(t, dir)
	c := client(t, env)
	cx := ctx(t)

	r1, err := c.CreateRouter(cx, api.RouterCreate{Name: "edge-a", Roles: []string{"customer-a"}, Cost: 3})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := c.CreateRouter(cx, api.RouterCreate{Name: "edge-b", Roles: []string{"customer-a"}})
	usedKey, _ := c.CreateRegistrationKey(cx, api.RegistrationKeyCreate{RouterID: r1.ID})
	laterKey, _ := c.CreateRegistrationKey(cx, api.RegistrationKeyCreate{RouterID: r2.ID, TTLSeconds: 3600})
	svc, _ := c.CreateService(cx, api.ServiceCreate{Name: "db", Address: "prod-db.customerdomain.me", Port: 5432, RouterRoles: []string{"customer-a"}})
	ident, _ := c.CreateIdentity(cx, api.IdentityCreate{Name: "runtime", Roles: []string{"integrations"}})
	pol, err := c.CreateServicePolicy(cx, api.ServicePolicyCreate{Name: "runtime-db", IdentityRoles: []string{"integrations"}, ServiceNames: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(t.TempDir(), "router-a")
	cfg, err := enroll.Router(cx, usedKey.Key, stateDir, false, enroll.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, _ := os.ReadFile(filepath.Join(stateDir, enroll.CertFile))
	leaf, _ := pki.ParseCertPEM(leafPEM)
	if d := time.Until(leaf.NotAfter); d > 90*time.Second || d < 60*time.Second {
		t.Errorf("--cert-lifetime 90s gave a certificate valid for %v", d)
	}

	p.kill() // SIGKILL: no shutdown path runs
	c.CloseIdleConnections()

	p2, took := startDev(t, dir)
	t.Logf("restart ready after %v", took)
	env2 := readEnv(t, dir)
	for _, k := range []string{"ZTNA_ADDR", "ZTNA_TOKEN", "ZTNA_CA_FINGERPRINT", "ZTNA_CONTROL_ADDR", "ZTNA_FABRIC_ADDR"} {
		if env2[k] != env[k] {
			t.Errorf("%s changed across the restart: %q -> %q", k, env[k], env2[k])
		}
	}
	if cfg.Control[0] != env2["ZTNA_CONTROL_ADDR"] {
		t.Errorf("enrolled router's control endpoint %s is not where the restarted controller listens (%s)", cfg.Control[0], env2["ZTNA_CONTROL_ADDR"])
	}
	c2 := client(t, env2)
	if got, err := c2.GetRouter(cx, r1.ID); err != nil || got.Name != "edge-a" || got.Cost != 3 || got.Status == api.RouterUnenrolled {
		t.Errorf("router after restart: %+v %v", got, err)
	}
	if got, err := c2.GetService(cx, svc.ID); err != nil || got.Address != svc.Address || got.RouterSummary.Total != 2 {
		t.Errorf("service after restart: %+v %v", got, err)
	}
	if got, err := c2.GetIdentity(cx, ident.ID); err != nil || got.Name != "runtime" {
		t.Errorf("identity after restart: %+v %v", got, err)
	}
	if got, err := c2.GetServicePolicy(cx, pol.ID); err != nil || got.ServiceNames[0] != "db" {
		t.Errorf("policy after restart: %+v %v", got, err)
	}
	if got, err := c2.GetRegistrationKey(cx, usedKey.ID); err != nil || got.State != api.KeyUsed {
		t.Errorf("used key after restart: %+v %v", got, err)
	}
	// The router's state from before the crash is still valid against the restarted CA.
	caPEM, _ := os.ReadFile(env2["ZTNA_CA_FILE"])
	ca, _ := pki.ParseCertPEM(caPEM)
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("certificate issued before the restart no longer verifies: %v", err)
	}
	// A key issued before the crash works once, and only once.
	if _, err := enroll.Router(cx, laterKey.Key, filepath.Join(t.TempDir(), "b"), false, enroll.Options{}); err != nil {
		t.Fatalf("key issued before the restart: %v", err)
	}
	if _, err := enroll.Router(cx, laterKey.Key, filepath.Join(t.TempDir(), "c"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use after restart: %v", err)
	}
	if _, err := enroll.Router(cx, usedKey.Key, filepath.Join(t.TempDir(), "d"), false, enroll.Options{}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("key used before the crash: %v", err)
	}
	// The metrics endpoint counts what just happened.
	// Object counts are refreshed in the background (at most a second after a change), so
	// wait for them rather than expect them in the first scrape.
	wants := []string{`ztna_controller_enrolments_total{outcome="ok"} 1`, `ztna_controller_enrolments_total{outcome="key-used"} 2`, `ztna_controller_routers{status="offline"} 2`}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		metrics := scrape(t, p2)
		var missing []string
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics lack %s", strings.Join(missing, ", "))
			break
		}
	}
	p2.stop(t)
}

// scrape reads the dev controller's /metrics (its address is in the banner).
func scrape(t *testing.T, p *proc) string {
	t.Helper()
	var url string
	for _, l := range p.stdout {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "metrics" {
			url = f[1]
		}
	}
	if url == "" {
		t.Fatalf("banner shows no metrics endpoint: %v", p.stdout)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
