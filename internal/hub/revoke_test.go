package hub_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/logging"
)

// cutWithin is how soon an Update must cut what it revokes; quiet is how long something it
// must not cut is watched.
const (
	cutWithin = time.Second
	quiet     = 200 * time.Millisecond
)

// revocationEnv is a hub with router a serving db and identity i1 linked, allowed by
// snapshot(), with its log and metrics.
type revocationEnv struct {
	*env
	log    *logging.Buffer
	reg    *prometheus.Registry
	client *fabric.Link
}

func startRevocation(t *testing.T) *revocationEnv {
	log, reg := &logging.Buffer{}, prometheus.NewRegistry()
	e := &revocationEnv{env: startWith(t, hub.Config{Logger: slog.New(slog.NewTextHandler(log, nil)), Metrics: reg}), log: log, reg: reg}
	e.router("a", fabric.OK)
	e.hub.Update(snapshot(map[string]int{"a": 0}))
	e.client = e.link(api.KindIdentity, "i1")
	return e
}

// stream opens a relayed stream from i1 to db; the fake router keeps it open and silent.
func (e *revocationEnv) stream() net.Conn {
	e.t.Helper()
	s, _, err := e.client.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "db.internal:5432"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// cut reports whether s ends within d: reads fail other than by timing out.
func cut(s net.Conn, d time.Duration) (bool, error) {
	s.SetReadDeadline(time.Now().Add(d))
	_, err := s.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return true, err
}

func closed(l *fabric.Link, d time.Duration) bool {
	select {
	case <-l.Done():
		return true
	case <-time.After(d):
		return false
	}
}

func (e *revocationEnv) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i*2+1 >= len(labels) || lp.GetName() != labels[i*2] || lp.GetValue() != labels[i*2+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// try links as kind/id and reports a refusal. TLS 1.3 reports a refused client certificate on
// the first read, not in the handshake: a link that survives a moment was admitted.
func (e *env) try(kind, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := fabric.Dial(ctx, e.addr, fabric.LinkConfig{Credentials: e.p.Credentials(kind, id)})
	if err != nil {
		return err
	}
	defer l.Close()
	if closed(l, 300*time.Millisecond) {
		return l.Err()
	}
	return nil
}

func (e *env) linked(router string) bool {
	return slices.ContainsFunc(e.hub.Routers(), func(r hub.RouterStatus) bool { return r.ID == router })
}

// TestUpdateCutsWhatItRevokes: a snapshot cuts exactly the relayed streams its own
// authorisation check (the one dials pass) refuses, and closes exactly the links of identities
// and routers it does not list.
func TestUpdateCutsWhatItRevokes(t *testing.T) {
	tests := []struct {
		name           string
		change         func(*hub.Snapshot)
		streamCut      bool // the established stream ends
		clientCut      bool // i1's link closes
		routerCut      bool // router a's link closes (taking the stream with it)
		newLinkRefused bool // a new link from i1 is refused
	}{
		{name: "unrelated service, identity and policy added", change: func(s *hub.Snapshot) {
			s.Services = append(s.Services, hub.Service{Service: control.Service{Name: "cache", Address: "cache.internal", Port: 6379}, RouterRoles: []string{"edge"}})
			s.Identities = append(s.Identities, hub.Identity{ID: "i2", Roles: []string{"ops"}})
			s.Policies = append(s.Policies, hub.Policy{IdentityRoles: []string{"ops"}, ServiceNames: []string{"cache", "db"}})
		}},
		{name: "the same snapshot again", change: func(*hub.Snapshot) {}},
		{name: "policy deleted", change: func(s *hub.Snapshot) { s.Policies = nil }, streamCut: true},
		{name: "policy deleted, another one allows it", change: func(s *hub.Snapshot) {
			s.Identities[0].Roles = []string{"apps", "ops"}
			s.Policies = []hub.Policy{{IdentityRoles: []string{"ops"}, ServiceNames: []string{"db"}}}
		}},
		{name: "service renamed, the policy with it", change: func(s *hub.Snapshot) {
			s.Services[0].Name = "database"
			s.Policies[0].ServiceNames = []string{"database"}
		}},
		{name: "service moved to another address", change: func(s *hub.Snapshot) { s.Services[0].Address = "db2.internal" }, streamCut: true},
		{name: "service port changed", change: func(s *hub.Snapshot) { s.Services[0].Port = 5433 }, streamCut: true},
		{name: "identity lost its role", change: func(s *hub.Snapshot) { s.Identities[0].Roles = []string{"guests"} }, streamCut: true},
		{name: "identity deleted", change: func(s *hub.Snapshot) {
			s.Identities = []hub.Identity{{ID: "i2", Roles: []string{"apps"}}}
		}, streamCut: true, clientCut: true, newLinkRefused: true},
		// The network's last identity deleted: a snapshot listing none shuts it out like any other.
		{name: "no identity listed", change: func(s *hub.Snapshot) { s.Identities = nil },
			streamCut: true, clientCut: true, newLinkRefused: true},
		{name: "router deleted", change: func(s *hub.Snapshot) {
			s.Routers = []hub.Router{{ID: "b", Roles: []string{"edge"}}}
		}, streamCut: true, routerCut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startRevocation(t)
			s := e.stream()
			snap := snapshot(map[string]int{"a": 0})
			tt.change(&snap)
			start := time.Now()
			e.hub.Update(snap)

			if got, err := cut(s, map[bool]time.Duration{true: cutWithin, false: quiet}[tt.streamCut]); got != tt.streamCut {
				t.Errorf("stream cut = %v (%v), want %v", got, err, tt.streamCut)
			} else if got {
				t.Logf("stream cut after %v: %v", time.Since(start).Round(time.Millisecond), err)
			}
			if got := closed(e.client, map[bool]time.Duration{true: cutWithin, false: quiet}[tt.clientCut]); got != tt.clientCut {
				t.Errorf("client link closed = %v, want %v", got, tt.clientCut)
			}
			deadline := time.Now().Add(cutWithin)
			for tt.routerCut && e.linked("a") && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := !e.linked("a"); got != tt.routerCut {
				t.Errorf("router link closed = %v, want %v", got, tt.routerCut)
			}
			if !tt.clientCut { // the surviving link dials what the new snapshot allows
				if _, err := dial(e.client); (err == nil) == tt.streamCut {
					t.Errorf("new dial: %v", err)
				}
			}
			if err := e.try(api.KindIdentity, "i1"); (err != nil) != tt.newLinkRefused {
				t.Errorf("new link from i1: %v, want refused %v", err, tt.newLinkRefused)
			}

			// Streams cut for their policy are logged and counted; a router's loss is not a
			// revocation of the stream.
			revoked := tt.streamCut && !tt.routerCut
			if got, want := e.counter("ztna_hub_streams_revoked_total"), map[bool]float64{true: 1}[revoked]; got != want {
				t.Errorf("ztna_hub_streams_revoked_total = %v, want %v", got, want)
			}
			if got := strings.Contains(e.log.String(), `msg="stream cut: no longer authorized" identity=i1 service=db`); got != revoked {
				t.Errorf("stream cut logged = %v, want %v:\n%s", got, revoked, e.log)
			}
			for kind, want := range map[string]bool{api.KindIdentity: tt.clientCut, api.KindRouter: tt.routerCut} {
				if got, want := e.counter("ztna_hub_links_revoked_total", "kind", kind), map[bool]float64{true: 1}[want]; got != want {
					t.Errorf("ztna_hub_links_revoked_total{kind=%q} = %v, want %v", kind, got, want)
				}
			}
		})
	}
}

// TestLinkAdmission: a link is admitted while the snapshot lists its router or identity — or
// lists none of that kind, as before the controller's first push.
func TestLinkAdmission(t *testing.T) {
	listed := snapshot(map[string]int{"a": 0})
	tests := []struct {
		name    string
		snap    *hub.Snapshot // nil: none installed yet
		kind    string
		id      string
		refused bool
	}{
		{name: "identity before any snapshot", kind: api.KindIdentity, id: "i1"},
		{name: "router before any snapshot", kind: api.KindRouter, id: "a"},
		{name: "listed identity", snap: &listed, kind: api.KindIdentity, id: "i1"},
		{name: "listed router", snap: &listed, kind: api.KindRouter, id: "a"},
		{name: "unlisted identity", snap: &listed, kind: api.KindIdentity, id: "i9", refused: true},
		{name: "unlisted router", snap: &listed, kind: api.KindRouter, id: "z", refused: true},
		{name: "identity, snapshot listing none", snap: &hub.Snapshot{Routers: listed.Routers}, kind: api.KindIdentity, id: "i9", refused: true},
		{name: "router, snapshot listing none", snap: &hub.Snapshot{Identities: listed.Identities}, kind: api.KindRouter, id: "z", refused: true},
		{name: "identity, empty snapshot", snap: &hub.Snapshot{}, kind: api.KindIdentity, id: "i1", refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			if tt.snap != nil {
				e.hub.Update(*tt.snap)
			}
			err := e.try(tt.kind, tt.id)
			if (err != nil) != tt.refused {
				t.Fatalf("link from %s/%s: %v, want refused %v", tt.kind, tt.id, err, tt.refused)
			}
		})
	}
}

// TestRevokedDuringSetup: a policy deleted while the router is still setting the stream up
// refuses the dial; the stream is not relayed on the strength of the old snapshot.
func TestRevokedDuringSetup(t *testing.T) {
	e := start(t)
	r := e.serve(&fakeRouter{id: "a", code: fabric.OK, hold: make(chan struct{})})
	snap := snapshot(map[string]int{"a": 0})
	e.hub.Update(snap)
	client := e.link(api.KindIdentity, "i1")
	result := make(chan error, 1)
	go func() {
		_, err := dial(client)
		result <- err
	}()
	waitFor(t, "the router received the dial", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.seen) == 1
	})
	snap.Policies = nil
	e.hub.Update(snap)
	close(r.hold)
	if err := <-result; !errors.Is(err, fabric.ErrNotAuthorized) {
		t.Fatalf("dial whose policy was deleted during setup: %v, want not authorized", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
