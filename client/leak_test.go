package client_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztna/ztna/client"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCloseLeavesNothingRunning: an application that used the SDK and closed it has none of
// the SDK's goroutines left: not the hub links, not the handshake's ephemeral key pool, not a
// stream's; nor do the hub and router keep any for the closed client.
func TestCloseLeavesNothingRunning(t *testing.T) {
	s, _, target := echoStack(t, 1)
	before := goleak.IgnoreCurrent() // the stack's own goroutines, running before the client

	c, err := client.New(client.Config{Cert: s.Identity("i1"), CA: s.PKI.CA.Cert, Hubs: s.HubAddrs})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // enough handshakes to run the key pool half empty and refill it
		if err := echo(t, c, target); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Services(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The hub's ends of the client's links end when they read the close: measured under CI load
	// that took longer than goleak's default retries (about 0.5 s), so wait up to 10 s; a
	// goroutine the client leaks never ends and still fails.
	err = goleak.Find(before)
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); err = goleak.Find(before) {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
}
