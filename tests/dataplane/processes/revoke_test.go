package processes_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// ended is how and when a stream's reads ended.
type ended struct {
	err error
	at  time.Time
}

// watchEnd reads conn in the background (the echo target sends nothing unasked) and reports
// how its reads end.
func watchEnd(conn net.Conn) <-chan ended {
	ch := make(chan ended, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		ch <- ended{err: err, at: time.Now()}
	}()
	return ch
}

// cutWithin checks that a stream watched by end fails with ErrTruncated — a cut, never a clean
// end that would pass for a complete transfer — within limit of since.
func cutWithin(t *testing.T, end <-chan ended, since time.Time, limit time.Duration, what string) {
	t.Helper()
	select {
	case e := <-end:
		if !errors.Is(e.err, e2e.ErrTruncated) {
			t.Errorf("%s: the stream ended with %v, want ErrTruncated", what, e.err)
		}
		took := e.at.Sub(since)
		if took > limit {
			t.Errorf("%s took %v, want within %v", what, took, limit)
		}
		t.Logf("%s: %v", what, took.Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the stream is still up after 5 s", what)
	}
}

// stillUp checks that a stream watched by end is open and still carries bytes.
func stillUp(t *testing.T, conn net.Conn, end <-chan ended, what string) {
	t.Helper()
	select {
	case e := <-end:
		t.Fatalf("%s: the stream ended: %v", what, e.err)
	default:
	}
	// The background reader consumes the echo: only the write can be checked, then that
	// nothing ended it.
	if _, err := conn.Write([]byte("still there?")); err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	select {
	case e := <-end:
		t.Fatalf("%s: the stream ended: %v", what, e.err)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRevocationCutsLiveTraffic: deleting a policy cuts, within a second, the streams it had
// allowed, not only new dials; deleting an identity also closes its link, and its next dial
// fails although its certificate has not expired. Changes that take nothing away — another
// policy, another identity's deletion — leave established streams alone.
func TestRevocationCutsLiveTraffic(t *testing.T) {
	s := newSite(t, stack.Echo, false)
	policy := s.allow(t)
	harness.WaitFor(t, 5*time.Second, "the policy lets app dial", func() bool { return dialErr(s.client, s.target) == nil })
	opsID, opsFile := s.c.NewIdentity(t, "ops", "apps")
	ops := harness.Client(t, opsFile)

	// One established stream each, checked to carry bytes before being watched.
	open := func(c *client.Client) (net.Conn, <-chan ended) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := c.Dial(ctx, s.target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := echoOnce(conn, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		return conn, watchEnd(conn)
	}
	appConn, appEnd := open(s.client)
	opsConn, opsEnd := open(ops)

	// A policy for another role changes the snapshot but takes nothing away.
	ctx := context.Background()
	if _, err := s.c.API.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "guests-db", IdentityRoles: []string{"guests"}, ServiceNames: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 5*time.Second, "the hub installs the snapshot with two policies", func() bool {
		return s.c.Metric(`ztna_hub_snapshot_objects{collection="policies"}`) == 2
	})
	stillUp(t, appConn, appEnd, "after an unrelated policy was created")
	stillUp(t, opsConn, opsEnd, "after an unrelated policy was created")

	// Deleting ops cuts its stream and its link; app's stream stays.
	start := time.Now()
	if err := s.c.API.DeleteIdentity(ctx, opsID); err != nil {
		t.Fatal(err)
	}
	cutWithin(t, opsEnd, start, time.Second, "identity deleted → its stream cut")
	harness.WaitFor(t, time.Second, "the deleted identity's link closed", func() bool {
		return s.c.Metric(`ztna_hub_links_revoked_total{kind="identity"}`) == 1
	})
	if err := dialErr(ops, s.target); err == nil {
		t.Fatal("the deleted identity dialled again")
	} else {
		t.Logf("deleted identity's new dial: %v", err)
	}
	stillUp(t, appConn, appEnd, "after another identity was deleted")

	// Deleting the policy cuts app's stream.
	start = time.Now()
	if err := s.c.API.DeleteServicePolicy(ctx, policy); err != nil {
		t.Fatal(err)
	}
	cutWithin(t, appEnd, start, time.Second, "policy deleted → the stream it allowed cut")
	if got := s.c.Metric("ztna_hub_streams_revoked_total"); got != 2 {
		t.Errorf("ztna_hub_streams_revoked_total = %v, want 2 (ops's and app's streams)", got)
	}
}
