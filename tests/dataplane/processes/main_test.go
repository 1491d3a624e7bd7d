// Package processes_test proves the data plane with the real processes: a `ztna-controller dev`
// (edge API, control channel, embedded hub), `ztna-router run` processes linked to it, standalone
// hubs (`ztna-router run --hub`), real TCP targets behind the routers (named through a real DNS
// server), and client identities enrolled with the API's enrolment tokens dialing through the Go
// SDK. Nothing is shared between the parts but loopback TCP.
package processes_test

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// serviceName is the customer name of the test services: only the routers' DNS server knows it.
const serviceName = "db.customer.test"

// site is a controller and one router (role edge) hosting one service by name, served by
// handle, plus an identity (role apps) that a policy lets dial it.
type site struct {
	c        *harness.Controller
	router   *harness.Router
	dns      *dnstest.Server
	svc      *api.Service
	target   string // serviceName:port, as the client dials it
	identity string // identity file
	client   *client.Client
}

// newSite builds a site; with policy false the identity has no policy yet.
func newSite(t *testing.T, handle func(net.Conn), policy bool) *site {
	t.Helper()
	s := &site{c: harness.StartController(t)}
	s.dns = dnstest.Start(t, map[string]string{serviceName: "127.0.0.1"})
	port := stack.Serve(t, handle)
	s.router = s.c.StartRouter(t, "edge-1", []string{"edge"}, "--dns-server", s.dns.Addr)
	var err error
	s.svc, err = s.c.API.CreateService(context.Background(), api.ServiceCreate{Name: "db", Address: serviceName, Port: port, RouterRoles: []string{"edge"}})
	if err != nil {
		t.Fatal(err)
	}
	s.target = net.JoinHostPort(serviceName, strconv.Itoa(port))
	if policy {
		s.allow(t)
	}
	_, s.identity = s.c.NewIdentity(t, "app", "apps")
	s.client = harness.Client(t, s.identity)
	// The router must have received its assignment before it can serve the first dial.
	harness.WaitFor(t, 5*time.Second, "router assignment", func() bool {
		return s.router.Metric("ztna_router_assigned_services") == 1
	})
	return s
}

// allow creates the policy that lets role apps dial the service and returns its id.
func (s *site) allow(t *testing.T) string {
	t.Helper()
	p, err := s.c.API.CreateServicePolicy(context.Background(), api.ServicePolicyCreate{Name: "apps-db", IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// echoOnce writes msg and reads it back.
func echoOnce(c net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return io.ErrUnexpectedEOF
	}
	return nil
}
