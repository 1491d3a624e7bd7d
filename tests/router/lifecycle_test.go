package router_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestLifecycle: enrol → online with version, failure domain and image attestation; the controller is SIGKILLed and
// restarted → the router reconnects by itself; the router is SIGKILLed → offline within 5 s.
func TestLifecycle(t *testing.T) {
	flags := []string{"--heartbeat-interval", "500ms"}
	c := harness.StartController(t, flags...)
	id, key := c.NewRouter(t, "edge-1", "edge")
	state := harness.Enrol(t, key, "--failure-domain", "aws/eu-west-1b")

	if fi, err := os.Stat(filepath.Join(state, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("router private key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	// The key worked once; a second use is refused and writes nothing.
	other := filepath.Join(t.TempDir(), "state")
	out, code := harness.Run(t, "ztna-router", "enroll", "--key-file", harness.WriteKey(t, key), "--state-dir", other)
	if code == 0 || !strings.Contains(out, "already used") {
		t.Fatalf("second enrolment with the same key: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(other, "config.json")); err == nil {
		t.Fatal("a refused enrolment wrote config.json")
	}

	wantVersion, _ := harness.Run(t, "ztna-router", "version")
	wantVersion = strings.TrimSpace(wantVersion)
	image := filepath.Join(t.TempDir(), "image.json")
	attestation := `{"router_version":"` + wantVersion + `","hardening_profile":"ztna-hardened-v1","build_time":"2026-01-02T03:04:05Z","base_image":"debian-12-genericcloud-amd64","cloud":"aws"}`
	if err := os.WriteFile(image, []byte(attestation), 0o644); err != nil {
		t.Fatal(err)
	}
	r := harness.RunRouter(t, id, state, "--attestation-file", image)
	took := harness.WaitFor(t, 10*time.Second, "router online in the API", func() bool { return c.GetRouter(t, id).Status == api.RouterOnline })
	t.Logf("online %v after start", took.Round(time.Millisecond))
	got := c.GetRouter(t, id)
	if got.Version != wantVersion || got.FailureDomain != "aws/eu-west-1b" || got.LastSeen == nil {
		t.Fatalf("router in the API: version %q (want %q), failure domain %q, last_seen %v", got.Version, wantVersion, got.FailureDomain, got.LastSeen)
	}
	var att control.Attestation
	if err := json.Unmarshal(got.Attestation, &att); err != nil || att.HardeningProfile != "ztna-hardened-v1" || att.BaseImage != "debian-12-genericcloud-amd64" {
		t.Fatalf("attestation in the API: %s (%v)", got.Attestation, err)
	}
	harness.WaitFor(t, 5*time.Second, "router /healthz 200", r.Healthy)
	out, code = harness.Run(t, "ztna-router", "status", "--state-dir", state, "--local-addr", r.Local, "--json")
	var st struct {
		ID            string `json:"id"`
		FailureDomain string `json:"failure_domain"`
		Daemon        struct {
			Running bool   `json:"running"`
			Healthz string `json:"healthz"`
		} `json:"daemon"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.ID != id || st.FailureDomain != "aws/eu-west-1b" ||
		!st.Daemon.Running || !strings.Contains(st.Daemon.Healthz, "control channel up") {
		t.Fatalf("status exit %d (%v):\n%s", code, err, out)
	}

	// Controller crash: the router notices, and reconnects to the restarted controller by itself.
	c.Proc.Kill()
	harness.WaitFor(t, 5*time.Second, "router notices the controller is gone (/healthz 503)", func() bool { return !r.Healthy() })
	restarted := time.Now()
	c.Restart(t, flags...)
	took = harness.WaitFor(t, 15*time.Second, "router reconnects to the restarted controller", func() bool {
		got := c.GetRouter(t, id)
		return r.Healthy() && got.Status == api.RouterOnline && got.LastSeen != nil && got.LastSeen.After(restarted)
	})
	t.Logf("reconnected %v after the controller came back", took.Round(time.Millisecond))
	if v := r.Metric("ztna_router_control_reconnects_total"); v < 1 {
		t.Fatalf("reconnects metric %v after a controller restart", v)
	}

	// Router crash: the controller shows it offline within 5 s.
	r.Kill()
	killed := time.Now()
	harness.WaitFor(t, 5*time.Second, "router offline in the API after SIGKILL", func() bool { return c.GetRouter(t, id).Status == api.RouterOffline })
	t.Logf("offline %v after the router was killed", time.Since(killed).Round(time.Millisecond))
}

// TestFrozenRouter: a router that stops talking without closing its connection (SIGSTOP: the
// kernel keeps the TCP connection open, as with a cut network path) is offline within 5 s by
// heartbeat timeout; once it thaws it comes back by itself.
func TestFrozenRouter(t *testing.T) {
	c := harness.StartController(t) // default 1 s heartbeats: offline after 3 silent seconds
	id, key := c.NewRouter(t, "edge-1", "edge")
	r := harness.RunRouter(t, id, harness.Enrol(t, key))
	harness.WaitFor(t, 10*time.Second, "router online", func() bool { return c.GetRouter(t, id).Status == api.RouterOnline })

	r.Cmd.Process.Signal(syscall.SIGSTOP)
	frozen := time.Now()
	harness.WaitFor(t, 5*time.Second, "frozen router offline", func() bool { return c.GetRouter(t, id).Status == api.RouterOffline })
	t.Logf("offline %v after the router froze", time.Since(frozen).Round(time.Millisecond))

	r.Cmd.Process.Signal(syscall.SIGCONT)
	took := harness.WaitFor(t, 15*time.Second, "thawed router online again", func() bool { return r.Healthy() && c.GetRouter(t, id).Status == api.RouterOnline })
	t.Logf("online again %v after it thawed", took.Round(time.Millisecond))
}
