package router_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// maxReconnect bounds how long after a restarted controller listens again its routers may take
// to be back: platform teams expect about a second; the rest is margin for a loaded CI machine.
const maxReconnect = 2 * time.Second

// stableSession is how long a session must have lasted for the router to treat its loss as a
// fresh outage (controlclient's stableAfter, plus margin): a controller that ran for a while,
// as in production.
const stableSession = 3500 * time.Millisecond

// TestReconnectAfterControllerRestart: the controller is SIGKILLed and restarted — at once, and
// after 6 s down (a supervisor's restart delay plus a slow start) — and the router must be back
// (/healthz 200 and online in the API) within maxReconnect of the controller listening again.
// Reconnect delays that grow too fast while the controller is down fail the second case.
func TestReconnectAfterControllerRestart(t *testing.T) {
	c := harness.StartController(t)
	id, state := c.EnrolRouter(t, "edge-1", "edge")
	r := harness.RunRouter(t, id, state)
	harness.WaitFor(t, 10*time.Second, "router online", r.Healthy)
	control := controlAddr(t, c)

	for _, down := range []time.Duration{0, 6 * time.Second} {
		time.Sleep(stableSession)
		c.Proc.Kill()
		killed := time.Now()
		harness.WaitFor(t, 5*time.Second, "router notices the controller is gone (/healthz 503)", func() bool { return !r.Healthy() })
		time.Sleep(time.Until(killed.Add(down)))
		w := watchReconnect(r, control)
		c.Restart(t)
		listening, back := w.wait(t, 20*time.Second)
		took := back.Sub(listening)
		t.Logf("controller down %v: router back %v after the controller listened again (%v after the kill)",
			listening.Sub(killed).Round(time.Millisecond), took.Round(time.Millisecond), back.Sub(killed).Round(time.Millisecond))
		if took > maxReconnect {
			t.Errorf("controller down %v: router back %v after the controller listened again, want under %v", down, took, maxReconnect)
		}
		// The API shows it with the controller's next status flush (250 ms).
		var got *api.Router
		fresh := func() bool {
			got = c.GetRouter(t, id)
			return got.Status == api.RouterOnline && got.LastSeen != nil && !got.LastSeen.Before(listening.Add(-time.Second))
		}
		deadline := time.Now().Add(2 * time.Second)
		for !fresh() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !fresh() {
			t.Fatalf("after the restart the API shows the router %s, last seen %v", got.Status, got.LastSeen)
		}
	}
}

// controlAddr is the dev controller's control-channel address (it keeps its ports across
// restarts in dev-ports.json).
func controlAddr(t *testing.T, c *harness.Controller) string {
	t.Helper()
	var ports struct{ Control string }
	raw, err := os.ReadFile(filepath.Join(c.Dir, "dev-ports.json"))
	if err != nil || json.Unmarshal(raw, &ports) != nil || ports.Control == "" {
		t.Fatalf("dev-ports.json: %v %s", err, raw)
	}
	return ports.Control
}

// reconnectWatch records when the control port first accepts a connection and when the router
// is healthy again after that.
type reconnectWatch struct {
	done            chan struct{}
	listening, back time.Time
}

func watchReconnect(r *harness.Router, control string) *reconnectWatch {
	w := &reconnectWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if w.listening.IsZero() {
				if conn, err := net.DialTimeout("tcp", control, 100*time.Millisecond); err == nil {
					w.listening = time.Now()
					conn.Close()
				}
			} else if r.Healthy() {
				w.back = time.Now()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

func (w *reconnectWatch) wait(t *testing.T, d time.Duration) (listening, back time.Time) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		t.Fatalf("no reconnect within %v", d)
	}
	if w.listening.IsZero() || w.back.IsZero() {
		t.Fatalf("control port listening at %v, router healthy at %v", w.listening, w.back)
	}
	return w.listening, w.back
}
