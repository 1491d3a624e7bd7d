package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/router/internal/teststate"
)

// TestLearnedListsSurviveRestart: a router enrolled with replica A only saves the endpoints
// A's welcome lists (A and B) and the hubs it lists, passes the hubs on to FollowHubs, and once
// A is gone a restarted router reaches B with them and starts with the saved hubs.
func TestLearnedListsSurviveRestart(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca := teststate.NewCA(t)
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	addrA := freeAddr(t)
	hubs := []string{"127.0.0.1:7001", "hub-2.example:443"}
	cfg := controlserver.Config{HeartbeatInterval: 100 * time.Millisecond, Fabric: hubs, Logger: log}
	ctlB := controltest.Start(t, b, "", cfg)
	cfg.Control = []string{addrA, ctlB.Addr}
	ctlA := controltest.Start(t, b, addrA, cfg)
	st := teststate.Write(t, ca, "r1", time.Hour, addrA)

	run := func(what string, on *controltest.Controller) (startHubs, followed []string) {
		t.Helper()
		r, err := New(Options{StateDir: st.Dir, LocalAddr: freeAddr(t), HealthInterval: time.Hour, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		r.FollowHubs(func(l []string) { mu.Lock(); followed = l; mu.Unlock() })
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
		mu.Lock()
		defer mu.Unlock()
		return r.Hubs, followed
	}
	start, followed := run("enrolled with A", ctlA)
	if start != nil || !slices.Equal(followed, hubs) {
		t.Fatalf("first start: started with hubs %v, followed %v; want none, then %v", start, followed, hubs)
	}
	for file, want := range map[string]savedList{
		EndpointsFile: {Control: []string{addrA, ctlB.Addr}},
		HubsFile:      {Fabric: hubs},
	} {
		path := filepath.Join(st.Dir, file)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var saved savedList
		if err := json.Unmarshal(raw, &saved); err != nil || saved.RouterID != "r1" || saved.CAFingerprint != ca.Fingerprint() ||
			!slices.Equal(saved.Control, want.Control) || !slices.Equal(saved.Fabric, want.Fabric) {
			t.Fatalf("%s: %s (%v)", file, raw, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", file, fi.Mode().Perm())
		}
	}

	ctlA.Stop()
	if start, _ := run("restarted while A is down", ctlB); !slices.Equal(start, hubs) {
		t.Fatalf("restarted router starts with hubs %v, want the saved %v", start, hubs)
	}
}

// TestLearnedListsOfAnotherEnrolment: a list saved for another router or network, or a broken
// one, is ignored: the router dials what it was enrolled with.
func TestLearnedListsOfAnotherEnrolment(t *testing.T) {
	ca := teststate.NewCA(t)
	tests := []struct {
		name   string
		change func(*savedList)
		raw    string // instead of the (changed) valid file
	}{
		{name: "another router", change: func(s *savedList) { s.RouterID = "r2" }},
		{name: "another network", change: func(s *savedList) { s.CAFingerprint = "sha256:00" }},
		{name: "bad address", change: func(s *savedList) { s.Control, s.Fabric = []string{"nowhere"}, []string{"nowhere"} }},
		{name: "not JSON", raw: "{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enrolled := freeAddr(t)
			st := teststate.Write(t, ca, "r1", time.Hour, enrolled)
			raw := []byte(tt.raw)
			if tt.change != nil {
				saved := savedList{RouterID: "r1", CAFingerprint: ca.Fingerprint(), Control: []string{"127.0.0.1:1"}, Fabric: []string{"127.0.0.1:2"}}
				tt.change(&saved)
				raw, _ = json.Marshal(saved)
			}
			for _, file := range []string{EndpointsFile, HubsFile} {
				if err := os.WriteFile(filepath.Join(st.Dir, file), raw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := New(Options{StateDir: st.Dir, LocalAddr: freeAddr(t), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Control.Endpoints, []string{enrolled}) || r.Hubs != nil {
				t.Fatalf("dials %v and hubs %v, want the enrolled %v and no hub", r.Control.Endpoints, r.Hubs, enrolled)
			}
		})
	}
}

// TestPushedHubsChecked: a pushed hub list with an invalid address is neither saved nor
// followed; a valid one is saved (duplicates dropped) and followed on every welcome.
func TestPushedHubsChecked(t *testing.T) {
	st := teststate.Write(t, teststate.NewCA(t), "r1", time.Hour, "127.0.0.1:1")
	r, err := New(Options{StateDir: st.Dir, LocalAddr: freeAddr(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var followed [][]string
	r.FollowHubs(func(l []string) { followed = append(followed, l) })
	r.learnHubs([]string{"127.0.0.1:7001", "no-port"})
	if _, err := os.Stat(filepath.Join(st.Dir, HubsFile)); !os.IsNotExist(err) || followed != nil {
		t.Fatalf("invalid list: %s stat %v, followed %v", HubsFile, err, followed)
	}
	r.learnHubs([]string{"127.0.0.1:7001", "127.0.0.1:7001"})
	saved, err := LearnedHubs(st.Dir, st.Cfg)
	if err != nil || !slices.Equal(saved, []string{"127.0.0.1:7001"}) {
		t.Fatalf("saved %v (%v)", saved, err)
	}
	r.learnHubs([]string{"127.0.0.1:7001"})
	if len(followed) != 2 || !slices.Equal(followed[1], []string{"127.0.0.1:7001"}) {
		t.Fatalf("followed %v", followed)
	}
}
