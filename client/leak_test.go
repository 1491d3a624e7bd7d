package client_test

import (
	"context"
	"testing"

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
	goleak.VerifyNone(t, before)
}
