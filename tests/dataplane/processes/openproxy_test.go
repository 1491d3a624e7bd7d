package processes_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// TestRouterIsNoOpenProxy plays a hub that has gone rogue (a hub certificate from the network
// CA, listed by the controller) and asks the router process itself for streams: it gets its
// assigned service, and is refused "not authorized" for everything else — the same socket by
// IP address, another port of the service's host, the controller's edge port.
func TestRouterIsNoOpenProxy(t *testing.T) {
	rogueAddr := harness.FreeAddr(t)
	c := harness.StartController(t, "--hub", rogueAddr)
	ca := c.CA(t)
	ln, err := net.Listen("tcp", rogueAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	links := make(chan *fabric.Link, 4)
	hubCreds := credentials(t, ca, api.KindHub, "rogue")
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if l, err := fabric.Accept(ctx, conn, fabric.LinkConfig{Credentials: hubCreds}); err == nil {
				t.Cleanup(func() { l.Close() })
				links <- l
			}
			cancel()
		}
	}()

	dns := dnstest.Start(t, map[string]string{serviceName: "127.0.0.1"})
	port := stack.Serve(t, stack.Echo)
	if _, err := c.API.CreateService(context.Background(), api.ServiceCreate{Name: "db", Address: serviceName, Port: port, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	r := c.StartRouter(t, "edge-1", []string{"edge"}, "--dns-server", dns.Addr)
	harness.WaitFor(t, 5*time.Second, "router assignment", func() bool { return r.Metric("ztna_router_assigned_services") == 1 })
	var link *fabric.Link
	select {
	case link = <-links:
	case <-time.After(10 * time.Second):
		t.Fatal("the router did not link to the hub the controller lists")
	}
	if p := link.Peer(); p.Kind != api.KindRouter || p.ID != r.ID {
		t.Fatalf("linked peer %v, want router/%s", p, r.ID)
	}

	// The identity the rogue hub pretends to relay for; the router checks the end-to-end
	// handshake proves it.
	idCreds := credentials(t, ca, api.KindIdentity, "someone")
	ep := e2e.NewEndpoint(idCreds.Cert, ca.Cert)
	open := func(target string) error {
		in, hello, err := ep.Initiate(target)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, resp, err := link.Open(ctx, &fabric.Request{Op: fabric.OpDial, Target: target, Service: "db", Identity: "someone", Payload: hello})
		if err != nil {
			return err
		}
		conn, err := in.Finish(s, resp.Payload)
		if err != nil {
			return err
		}
		defer conn.Close()
		return echoOnce(conn, []byte("assigned"))
	}
	if err := open(net.JoinHostPort(serviceName, strconv.Itoa(port))); err != nil {
		t.Fatalf("assigned target: %v", err)
	}
	edge := c.Env["ZTNA_ADDR"][len("https://"):]
	for _, target := range []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), serviceName + ":22", edge, "localhost:" + strconv.Itoa(port)} {
		if err := open(target); !errors.Is(err, fabric.ErrNotAuthorized) {
			t.Errorf("router asked for %s: %v, want not authorized", target, err)
		}
	}
	if got := r.Metric(`ztna_router_streams_total{result="not authorized"}`); got != 4 {
		t.Errorf("router counted %v refused streams, want 4", got)
	}
}

// credentials issues a certificate for kind/id from the network CA.
func credentials(t *testing.T, ca *pki.CA, kind, id string) fabric.Credentials {
	t.Helper()
	iss, key, err := ca.IssueServer(kind, id, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	return fabric.Credentials{Cert: pki.NewCertSlot(cert), CA: ca.Cert}
}
