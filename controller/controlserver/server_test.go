package controlserver_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

const heartbeat = 100 * time.Millisecond

func setup(t *testing.T) (*controltest.Backend, *controltest.Controller) {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	b := controltest.NewBackend(ca, time.Hour)
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	return b, controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: heartbeat, LastSeenInterval: 2 * heartbeat, FlushInterval: flush,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
}

// hello dials as router r1 and completes the hello/welcome exchange.
func hello(t *testing.T, b *controltest.Backend, c *controltest.Controller, lifetime time.Duration) *control.Conn {
	t.Helper()
	conn, err := c.Dial(t, b.CA, controltest.RouterCertificate(t, b.CA, "r1", lifetime))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	expect(t, conn, control.TypeWelcome)
	expect(t, conn, control.TypeAssignment)
	return conn
}

// expect reads the next message and checks its type ("" accepts any).
func expect(t *testing.T, conn *control.Conn, typ control.Type) control.Envelope {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	env, err := conn.Receive()
	if err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	if typ != "" && env.Type != typ {
		t.Fatalf("got %s (%s), want %s", env.Type, env.Body, typ)
	}
	return env
}

// closedWithin waits until the server closes conn, skipping other messages, and returns the
// message that preceded the close (if any).
func closedWithin(t *testing.T, conn *control.Conn, d time.Duration) control.Envelope {
	t.Helper()
	deadline := time.Now().Add(d)
	var last control.Envelope
	for {
		conn.SetReadDeadline(deadline)
		env, err := conn.Receive()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("connection still open after %v", d)
			}
			return last
		}
		last = env
	}
}

func TestRefusesBadHello(t *testing.T) {
	b, c := setup(t)
	tests := []struct {
		name string
		typ  control.Type
		body any
		want string
	}{
		{"old protocol", control.TypeHello, control.Hello{Protocol: 0, Version: "v0"}, "upgrade the router"},
		{"heartbeat first", control.TypeHeartbeat, control.Heartbeat{}, "first message must be hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := c.Dial(t, b.CA, controltest.RouterCertificate(t, b.CA, "r1", time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			conn.Send(tt.typ, 0, tt.body)
			var e control.Error
			if err := expect(t, conn, control.TypeError).Decode(&e); err != nil || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("error %q (%v), want mention of %q", e.Message, err, tt.want)
			}
			if b.Status("r1").Online {
				t.Fatal("refused router recorded online")
			}
		})
	}
}

func TestUnknownRouterRefusedAtHandshake(t *testing.T) {
	b, c := setup(t)
	conn, err := c.Dial(t, b.CA, controltest.RouterCertificate(t, b.CA, "ghost", time.Hour))
	if err == nil {
		conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion})
		_, err = conn.Receive()
	}
	if err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("err = %v, want bad certificate", err)
	}
}

func TestSilentRouterGoesOffline(t *testing.T) {
	b, c := setup(t)
	conn := hello(t, b, c, time.Hour)
	waitStatus(t, b, "online after hello", func(st controltest.Status) bool { return st.Online })
	// Send nothing more: after HeartbeatMisses intervals the controller gives up.
	closedWithin(t, conn, heartbeat*control.HeartbeatMisses+time.Second)
	waitOffline(t, b, time.Second)
}

// flush is the liveness writer's interval in these tests.
const flush = 50 * time.Millisecond

// waitStatus waits until what the backend recorded about r1 satisfies ok: status reaches the
// backend with the liveness writer's next flush, not before the welcome.
func waitStatus(t *testing.T, b *controltest.Backend, what string, ok func(controltest.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(b.Status("r1")) {
		if time.Now().After(deadline) {
			t.Fatalf("router r1 not %s after 5s: %+v", what, b.Status("r1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitOffline(t *testing.T, b *controltest.Backend, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for b.Status("r1").Online {
		if time.Now().After(deadline) {
			t.Fatalf("router still online after %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHeartbeatsRecordHealth(t *testing.T) {
	b, c := setup(t)
	conn := hello(t, b, c, time.Hour)
	h := []control.ServiceHealth{{ServiceID: "s", ServiceName: "db", Address: "db.test", Port: 5432, Resolvable: true, Reachable: false, Error: "refused"}}
	conn.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: time.Now(), Services: h})
	expect(t, conn, control.TypeHeartbeatAck)
	waitStatus(t, b, "health recorded", func(st controltest.Status) bool { return len(st.Health) > 0 })
	got := b.Status("r1").Health
	if len(got) != 1 || got[0].ServiceName != "db" || !got[0].Resolvable || got[0].Reachable {
		t.Fatalf("recorded health %+v", got)
	}
}

func TestExpiredCertificateEndsSession(t *testing.T) {
	b, c := setup(t)
	conn := hello(t, b, c, 1500*time.Millisecond) // pki backdates NotBefore, so this is the remaining life
	stop := make(chan struct{})
	defer close(stop)
	go func() { // stay alive, but never renew
		for {
			select {
			case <-stop:
				return
			case <-time.After(heartbeat):
				conn.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: time.Now()})
			}
		}
	}()
	last := closedWithin(t, conn, 3*time.Second)
	var e control.Error
	if last.Type != control.TypeError || last.Decode(&e) != nil || !strings.Contains(e.Message, "certificate expired") {
		t.Fatalf("last message before close: %s %s", last.Type, last.Body)
	}
}

func TestRenewRefusesGarbage(t *testing.T) {
	b, c := setup(t)
	conn := hello(t, b, c, time.Hour)
	conn.Send(control.TypeRenew, 7, control.Renew{CSR: "not a csr"})
	env := expect(t, conn, control.TypeRenewed)
	var r control.Renewed
	if env.ID != 7 || env.Decode(&r) != nil || !strings.Contains(r.Error, "CERTIFICATE REQUEST") || r.Certificate != "" {
		t.Fatalf("renewed %d %s", env.ID, env.Body)
	}
}

func TestReconnectReplacesOldSession(t *testing.T) {
	b, c := setup(t)
	old := hello(t, b, c, time.Hour)
	hello(t, b, c, time.Hour)
	closedWithin(t, old, time.Second)
	if ids := c.Server.Connected(); len(ids) != 1 || ids[0] != "r1" {
		t.Fatalf("connected %v", ids)
	}
	// Two flushes later the router is still online: the replaced session reported nothing.
	waitStatus(t, b, "online", func(st controltest.Status) bool { return st.Online })
	time.Sleep(2 * flush)
	if !b.Status("r1").Online {
		t.Fatal("closing the replaced session marked the router offline")
	}
}

func TestStaleRoutersMarkedOffline(t *testing.T) {
	b, c := setup(t)
	// A router left "online" by a controller that crashed an hour ago...
	b.PutRouter(controlserver.Router{ID: "r2"})
	b.SetStatus("r2", controltest.Status{Online: true, LastSeen: time.Now().Add(-time.Hour)})
	// ...and one with a live session that keeps sending (unchanged) heartbeats.
	conn := hello(t, b, c, time.Hour)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(heartbeat):
				conn.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: time.Now()})
			}
		}
	}()
	time.Sleep(2 * heartbeat * controlserver.StaleAfter * 2)
	if b.Status("r2").Online {
		t.Fatal("stale router still online")
	}
	if !b.Status("r1").Online {
		t.Fatal("live router marked offline")
	}
}

// TestWelcomeListsEndpoints: welcome carries the controller's control endpoints (every replica),
// which routers save and reconnect to; a controller without a list sends none, and routers keep
// theirs.
func TestWelcomeListsEndpoints(t *testing.T) {
	tests := []struct {
		name    string
		control []string
	}{
		{"replicas", []string{"ctrl-a.example:6262", "ctrl-b.example:6262"}},
		{"none configured", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := pki.NewCA("test")
			if err != nil {
				t.Fatal(err)
			}
			b := controltest.NewBackend(ca, time.Hour)
			b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
			c := controltest.Start(t, b, "", controlserver.Config{HeartbeatInterval: heartbeat, Control: tt.control,
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			conn, err := c.Dial(t, b.CA, controltest.RouterCertificate(t, b.CA, "r1", time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1"}); err != nil {
				t.Fatal(err)
			}
			env := expect(t, conn, control.TypeWelcome)
			var w control.Welcome
			if err := env.Decode(&w); err != nil || !slices.Equal(w.Control, tt.control) {
				t.Fatalf("welcome %s (%v), want control %v", env.Body, err, tt.control)
			}
			if tt.control == nil && strings.Contains(string(env.Body), `"control"`) {
				t.Fatalf("welcome %s lists control endpoints the controller was not given", env.Body)
			}
		})
	}
}
