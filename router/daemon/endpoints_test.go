package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/control"
	"github.com/ztna/ztna/controller/control/controltest"
	"github.com/ztna/ztna/router/internal/teststate"
)

// TestLearnedEndpointsSurviveRestart: a router enrolled with replica A only saves the endpoints
// A's welcome lists (A and B), and once A is gone a restarted router reaches B with them.
func TestLearnedEndpointsSurviveRestart(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(control.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	addrA := freeAddr(t)
	ctlB := controltest.Start(t, b, "", control.Config{HeartbeatInterval: 100 * time.Millisecond, Logger: log})
	ctlA := controltest.Start(t, b, addrA, control.Config{HeartbeatInterval: 100 * time.Millisecond, Control: []string{addrA, ctlB.Addr}, Logger: log})
	st := teststate.Write(t, ca, "r1", time.Hour, addrA)

	run := func(what string, on *controltest.Controller) {
		t.Helper()
		r, err := New(Options{StateDir: st.Dir, LocalAddr: freeAddr(t), HealthInterval: time.Hour, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() { cancel(); <-done }()
		deadline := time.Now().Add(5 * time.Second)
		for !r.Connected() || !slices.Contains(on.Server.Connected(), "r1") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: router not connected", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	run("enrolled with A", ctlA)
	raw, err := os.ReadFile(filepath.Join(st.Dir, EndpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	var saved savedEndpoints
	if err := json.Unmarshal(raw, &saved); err != nil || saved.RouterID != "r1" || saved.CAFingerprint != ca.Fingerprint() ||
		!slices.Equal(saved.Control, []string{addrA, ctlB.Addr}) {
		t.Fatalf("%s: %s (%v)", EndpointsFile, raw, err)
	}
	if fi, _ := os.Stat(filepath.Join(st.Dir, EndpointsFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", EndpointsFile, fi.Mode().Perm())
	}

	ctlA.Stop()
	run("restarted while A is down", ctlB)
}

// TestSavedEndpointsOfAnotherEnrolment: a list saved for another router or network, or a broken
// one, is ignored: the router dials what it was enrolled with.
func TestSavedEndpointsOfAnotherEnrolment(t *testing.T) {
	ca := teststate.NewCA(t)
	tests := []struct {
		name   string
		change func(*savedEndpoints)
		raw    string // instead of the (changed) valid file
	}{
		{name: "another router", change: func(s *savedEndpoints) { s.RouterID = "r2" }},
		{name: "another network", change: func(s *savedEndpoints) { s.CAFingerprint = "sha256:00" }},
		{name: "bad endpoint", change: func(s *savedEndpoints) { s.Control = []string{"nowhere"} }},
		{name: "not JSON", raw: "{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enrolled := freeAddr(t)
			st := teststate.Write(t, ca, "r1", time.Hour, enrolled)
			raw := []byte(tt.raw)
			if tt.change != nil {
				saved := savedEndpoints{RouterID: "r1", CAFingerprint: ca.Fingerprint(), Control: []string{"127.0.0.1:1"}}
				tt.change(&saved)
				raw, _ = json.Marshal(saved)
			}
			if err := os.WriteFile(filepath.Join(st.Dir, EndpointsFile), raw, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := New(Options{StateDir: st.Dir, LocalAddr: freeAddr(t), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Control.Endpoints, []string{enrolled}) {
				t.Fatalf("dials %v, want the enrolled %v", r.Control.Endpoints, enrolled)
			}
		})
	}
}
