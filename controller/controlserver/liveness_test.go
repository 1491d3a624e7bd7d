package controlserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

// stallingBackend is a controltest.Backend whose status writes can be held (a store that is
// locked or gone) and whose router lookups can be held (admission backlog); it counts the
// batches it was given.
type stallingBackend struct {
	*controltest.Backend
	writes chan struct{} // closed: writes go through
	lookup chan struct{} // closed: assignment lookups go through

	mu      sync.Mutex
	batches [][]controlserver.Status
}

func (b *stallingBackend) RecordStatus(ctx context.Context, batch []controlserver.Status) error {
	select {
	case <-b.writes:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.batches = append(b.batches, batch)
	b.mu.Unlock()
	return b.Backend.RecordStatus(ctx, batch)
}

// ServicesForRoles is the assignment lookup of a session's first push, within its admission.
func (b *stallingBackend) ServicesForRoles(ctx context.Context, roles []string) ([]control.Service, error) {
	select {
	case <-b.lookup:
	case <-ctx.Done():
	}
	return b.Backend.ServicesForRoles(ctx, roles)
}

func (b *stallingBackend) rows() (batches, rows int, perRouter map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	perRouter = map[string]int{}
	for _, batch := range b.batches {
		for _, st := range batch {
			perRouter[st.RouterID]++
		}
		rows += len(batch)
	}
	return len(b.batches), rows, perRouter
}

func newStalling(t *testing.T, cfg controlserver.Config, stallLookups bool) (*stallingBackend, *controltest.Controller) {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	b := &stallingBackend{Backend: controltest.NewBackend(ca, time.Hour), writes: make(chan struct{}), lookup: make(chan struct{})}
	if !stallLookups {
		close(b.lookup)
	}
	b.PutRouter(controlserver.Router{ID: "r1", Name: "edge-1", Roles: []string{"edge"}})
	cfg.HeartbeatInterval, cfg.LastSeenInterval, cfg.Logger = heartbeat, time.Hour, slog.New(slog.NewTextHandler(t.Output(), nil))
	return b, controltest.StartWith(t, ca, b, "", cfg)
}

// TestSessionsDoNotWaitOnTheStore: with every status write stalled, a router is welcomed, gets
// its assignment and has its heartbeats acknowledged; once the store is back, what it reported
// is recorded, coalesced into one row per router and flush however many heartbeats it sent.
func TestSessionsDoNotWaitOnTheStore(t *testing.T) {
	b, c := newStalling(t, controlserver.Config{FlushInterval: 100 * time.Millisecond}, false)
	conn := hello(t, b.Backend, c, time.Hour) // welcome and assignment, writes stalled
	for i := range 20 {
		h := []control.ServiceHealth{{ServiceID: "s", ServiceName: "db", Reachable: i%2 == 0, Error: fmt.Sprint(i)}}
		conn.Send(control.TypeHeartbeat, 0, control.Heartbeat{SentAt: time.Now(), Services: h})
		expect(t, conn, control.TypeHeartbeatAck)
	}
	if b.Status("r1").Online {
		t.Fatal("status recorded while the store was stalled")
	}
	close(b.writes)
	waitStatus(t, b.Backend, "online with the last heartbeat's health", func(st controltest.Status) bool {
		return st.Online && len(st.Health) == 1 && st.Health[0].Error == "19" && st.Hello.Version == "v1"
	})
	if batches, rows, per := b.rows(); per["r1"] != batches || rows != batches {
		t.Fatalf("%d rows in %d batches (%v) for one router's hello and 20 heartbeats: want one row per batch", rows, batches, per)
	}

	// The session's end is recorded too, and the last report is flushed when the server stops.
	conn.Close()
	waitStatus(t, b.Backend, "offline", func(st controltest.Status) bool { return !st.Online })
}

// TestFinalFlushOnStop: reports still in memory when the server stops are written before Serve
// returns: the sessions it closed are recorded offline.
func TestFinalFlushOnStop(t *testing.T) {
	b, c := newStalling(t, controlserver.Config{FlushInterval: time.Hour}, false)
	close(b.writes)
	hello(t, b.Backend, c, time.Hour)
	c.Stop()
	st := b.Status("r1")
	if st.Online || st.Hello.Version != "v1" || st.LastSeen.IsZero() {
		t.Fatalf("after stop: %+v, want offline with the hello recorded", st)
	}
}

// TestAdmissionBacklogAsksToRetry: with the admission slots full (first assignments stalled), a further
// hello is answered error{retry_after_ms} at once instead of queueing; the sessions being
// admitted are not closed and complete once the backlog clears.
func TestAdmissionBacklogAsksToRetry(t *testing.T) {
	b, c := newStalling(t, controlserver.Config{FlushInterval: 50 * time.Millisecond, MaxAdmitting: 2}, true) // first assignments wait
	close(b.writes)
	var waiting []*control.Conn
	for i := 2; i <= 4; i++ {
		id := fmt.Sprintf("r%d", i)
		b.PutRouter(controlserver.Router{ID: id, Name: id})
		conn, err := c.Dial(t, b.CA, controltest.RouterCertificate(t, b.CA, id, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1"})
		waiting = append(waiting, conn)
	}
	// Of the three, one is refused with a retry-after (which one depends on arrival order).
	refused, welcomed := -1, map[int]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for refused < 0 && time.Now().Before(deadline) {
		for i, conn := range waiting {
			conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			env, err := conn.Receive()
			if err != nil {
				continue
			}
			if env.Type == control.TypeWelcome { // admitted, waiting for its assignment
				welcomed[i] = true
				continue
			}
			var e control.Error
			if env.Type != control.TypeError || env.Decode(&e) != nil || e.RetryAfterMS < 1000 {
				t.Fatalf("router r%d got %s %s, want error with retry_after_ms >= 1000", i+2, env.Type, env.Body)
			}
			refused = i
		}
	}
	if refused < 0 {
		t.Fatal("no hello refused with a retry-after while two were being admitted")
	}
	close(b.lookup)
	for i, conn := range waiting {
		if i == refused {
			continue
		}
		if !welcomed[i] {
			expect(t, conn, control.TypeWelcome)
		}
		expect(t, conn, control.TypeAssignment)
	}
}
