package hub_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/hub"
)

// fakeRouter links to the hub and answers every dial with a fixed code; on OK it echoes the
// request payload with its id, so the test sees which router served the stream.
type fakeRouter struct {
	id   string
	code fabric.Code
	hold chan struct{} // when set, each answer waits until it is closed
	mu   sync.Mutex
	seen []fabric.Request
}

func (r *fakeRouter) serve(link *fabric.Link) {
	for {
		s, err := link.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			req, err := fabric.ReadRequest(s)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.seen = append(r.seen, *req)
			r.mu.Unlock()
			if r.hold != nil {
				<-r.hold
			}
			resp := &fabric.Response{Code: r.code, Message: r.id + " says no"}
			if r.code == fabric.OK {
				resp.Payload = append([]byte(r.id+":"), req.Payload...)
			}
			fabric.WriteResponse(s, resp)
			if r.code != fabric.OK {
				s.Close()
			}
		}()
	}
}

type env struct {
	t    *testing.T
	p    *fabrictest.PKI
	hub  *hub.Hub
	addr string
}

func start(t *testing.T) *env { return startWith(t, hub.Config{}) }

// startWith runs a hub with cfg (its credentials filled in).
func startWith(t *testing.T, cfg hub.Config) *env {
	p := fabrictest.New(t)
	cfg.Credentials = p.Credentials(api.KindHub, "hub1")
	h := hub.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go h.Serve(ctx, ln)
	return &env{t: t, p: p, hub: h, addr: ln.Addr().String()}
}

func (e *env) link(kind, id string) *fabric.Link {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := fabric.Dial(ctx, e.addr, fabric.LinkConfig{Credentials: e.p.Credentials(kind, id)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Close() })
	return l
}

func (e *env) router(id string, code fabric.Code) *fakeRouter {
	return e.serve(&fakeRouter{id: id, code: code})
}

// serve links r to the hub and waits until the hub lists it.
func (e *env) serve(r *fakeRouter) *fakeRouter {
	id := r.id
	go r.serve(e.link(api.KindRouter, id))
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, st := range e.hub.Routers() {
			if st.ID == id {
				return r
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("router %s never linked", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func snapshot(costs map[string]int) hub.Snapshot {
	snap := hub.Snapshot{
		Services:   []hub.Service{{Service: control.Service{Name: "db", Address: "db.internal", Port: 5432}, RouterRoles: []string{"edge"}}},
		Identities: []hub.Identity{{ID: "i1", Roles: []string{"apps"}}},
		Policies:   []hub.Policy{{IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}}},
	}
	for id, cost := range costs {
		snap.Routers = append(snap.Routers, hub.Router{ID: id, Roles: []string{"edge"}, Cost: cost})
	}
	return snap
}

func dial(client *fabric.Link) (string, error) {
	s, resp, err := client.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "db.internal:5432", Payload: []byte("hello")})
	if err != nil {
		return "", err
	}
	s.Close()
	return string(resp.Payload), nil
}

func TestRoutesToCheapestHealthyRouterAndRetries(t *testing.T) {
	tests := []struct {
		name    string
		routers map[string]fabric.Code
		costs   map[string]int
		want    string // payload from the router that served, "" when the dial fails
		wantErr *fabric.Error
		tried   []string // routers that must have seen the request
	}{
		{name: "cheapest wins", routers: map[string]fabric.Code{"a": fabric.OK, "b": fabric.OK},
			costs: map[string]int{"a": 50, "b": 0}, want: "b:hello", tried: []string{"b"}},
		{name: "failed setup retried on the next router", routers: map[string]fabric.Code{"a": fabric.OK, "b": fabric.TargetRefused},
			costs: map[string]int{"a": 50, "b": 0}, want: "a:hello", tried: []string{"a", "b"}},
		{name: "all fail: the client gets the last reason", routers: map[string]fabric.Code{"a": fabric.Unreachable, "b": fabric.Unreachable},
			costs: map[string]int{"a": 50, "b": 0}, wantErr: fabric.ErrUnreachable, tried: []string{"a", "b"}},
		{name: "a malformed request is not retried", routers: map[string]fabric.Code{"a": fabric.OK, "b": fabric.BadRequest},
			costs: map[string]int{"a": 50, "b": 0}, wantErr: fabric.ErrBadRequest, tried: []string{"b"}},
		{name: "no router linked", routers: nil, costs: map[string]int{"a": 0}, wantErr: fabric.ErrNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			rs := map[string]*fakeRouter{}
			for id, code := range tt.routers {
				rs[id] = e.router(id, code)
			}
			e.hub.Update(snapshot(tt.costs))
			client := e.link(api.KindIdentity, "i1")
			got, err := dial(client)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("dial: %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("dial: %q, %v; want %q", got, err, tt.want)
			}
			for _, id := range tt.tried {
				r := rs[id]
				r.mu.Lock()
				if len(r.seen) != 1 || r.seen[0].Identity != "i1" || r.seen[0].Service != "db" || string(r.seen[0].Payload) != "hello" {
					t.Errorf("router %s saw %+v, want one request from i1 for db", id, r.seen)
				}
				r.mu.Unlock()
			}
		})
	}
}

func TestRefusesWithoutPolicyAndHidesServices(t *testing.T) {
	e := start(t)
	e.router("a", fabric.OK)
	snap := snapshot(map[string]int{"a": 0})
	snap.Identities = append(snap.Identities, hub.Identity{ID: "stranger"}) // listed, no policy
	e.hub.Update(snap)
	stranger := e.link(api.KindIdentity, "stranger")
	_, err := dial(stranger)
	if !errors.Is(err, fabric.ErrNotAuthorized) {
		t.Fatalf("dial without policy: %v", err)
	}
	s, resp, err := stranger.Open(context.Background(), &fabric.Request{Op: fabric.OpList})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if strings.TrimSpace(string(resp.Payload)) != "[]" {
		t.Fatalf("stranger lists %s", resp.Payload)
	}
}

func TestEqualRoutersShareLoad(t *testing.T) {
	e := start(t)
	a, b := e.router("a", fabric.OK), e.router("b", fabric.OK)
	e.hub.Update(snapshot(map[string]int{"a": 0, "b": 0}))
	client := e.link(api.KindIdentity, "i1")
	for range 40 {
		if _, err := dial(client); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	b.mu.Lock()
	defer a.mu.Unlock()
	defer b.mu.Unlock()
	if len(a.seen) < 5 || len(b.seen) < 5 {
		t.Fatalf("40 dials split %d/%d between two equal routers", len(a.seen), len(b.seen))
	}
}
