package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/controlclient"
	"github.com/ztna/ztna/router/internal/teststate"
	"github.com/ztna/ztna/router/targets"
	"github.com/ztna/ztna/router/testnet"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testnet.ClosedPort(t))
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRouterLifecycle(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	ctl := controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: 100 * time.Millisecond, Logger: log})
	st := teststate.Write(t, ca, "r1", time.Hour, ctl.Addr)
	att := filepath.Join(t.TempDir(), "image.json")
	os.WriteFile(att, []byte(`{"router_version":"v1","hardening_profile":"ztna-cis","base_image":"debian-12","build_time":"2025-01-01T00:00:00Z"}`), 0o644)
	open := testnet.OpenPort(t)

	local := freeAddr(t)
	r, err := New(Options{StateDir: st.Dir, Settings: Settings{FailureDomain: "aws/eu-west-1b"}, LocalAddr: local,
		AttestationPath: att, HealthInterval: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// Before Run: not connected, not ready.
	if r.Connected() || r.Ready() == nil {
		t.Fatal("router claims health before running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("healthz 200", func() bool { code, _ := get("http://" + local + "/healthz"); return code == 200 })
	wait("readyz 200", func() bool { code, _ := get("http://" + local + "/readyz"); return code == 200 })
	wait("hello recorded", func() bool { return b.Status("r1").Hello.Protocol != 0 }) // with the next status flush
	hello := b.Status("r1").Hello
	if hello.FailureDomain != "aws/eu-west-1b" || hello.Image == nil || hello.Image.HardeningProfile != "ztna-cis" {
		t.Fatalf("hello %+v", hello)
	}

	b.PutService(controltest.Service{Service: control.Service{ID: "s1", Name: "db", Address: "127.0.0.1", Port: open}, RouterRoles: []string{"edge"}})
	wait("assignment", func() bool { return r.Targets.Allowed("127.0.0.1", open) })
	wait("health reported", func() bool { h := b.Status("r1").Health; return len(h) == 1 && h[0].Reachable })
	_, body := get("http://" + local + "/metrics")
	for _, want := range []string{"ztna_router_control_connected 1", "ztna_router_assigned_services 1",
		`ztna_router_service_reachable{address="127.0.0.1",port="` + strconv.Itoa(open) + `",service="db"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Saved after it is installed (controlclient.Client.OnAssignment): wait, do not assume.
	wait("assignment saved", func() bool { saved, _, _ := targets.Load(st.Dir); return len(saved) == 1 })
	c, err := r.Dialer.Dial(ctx, "127.0.0.1", open)
	if err != nil {
		t.Fatalf("dial assigned target: %v", err)
	}
	c.Close()
	if _, err := r.Dialer.Dial(ctx, "127.0.0.1", testnet.OpenPort(t)); !errors.Is(err, targets.ErrNotAssigned) {
		t.Fatalf("dial unassigned target: %v", err)
	}

	// Revocation stops the router as a whole.
	b.DeleteRouter("r1")
	select {
	case err := <-done:
		if !errors.Is(err, controlclient.ErrRevoked) || !strings.Contains(err.Error(), "control channel stopped") {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("router kept running after revocation")
	}
	if _, err := net.Dial("tcp", local); err == nil {
		t.Fatal("local endpoints still listening after the router stopped")
	}
}

func TestRestartHostsSavedAssignment(t *testing.T) {
	ca := teststate.NewCA(t)
	st := teststate.Write(t, ca, "r1", time.Hour, freeAddr(t))
	targets.Save(st.Dir, []control.Service{{ID: "s1", Address: "db.test", Port: 5432}})
	r, err := New(Options{StateDir: st.Dir, LocalAddr: freeAddr(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err != nil {
		t.Fatalf("not ready with a saved assignment while the controller is unreachable: %v", err)
	}
	if !r.Targets.Allowed("db.test", 5432) {
		t.Fatal("saved assignment not loaded")
	}
}

func TestSettings(t *testing.T) {
	dir := t.TempDir()
	if s, err := LoadSettings(dir); err != nil || s != (Settings{}) {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	want := Settings{FailureDomain: "gcp/europe-west1-b", DNSServer: "10.0.0.2:53"}
	if err := SaveSettings(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadSettings(dir); err != nil || got != want {
		t.Fatalf("LoadSettings = %+v, %v", got, err)
	}
	if err := SaveSettings(dir, Settings{DNSServer: "10.0.0.2"}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("bad DNS server accepted: %v", err)
	}
}
