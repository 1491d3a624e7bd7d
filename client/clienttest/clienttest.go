// Package clienttest runs, inside a test process, everything a client identity meets during
// its life: a controller's edge API (real HTTPS on loopback, SQLite store) to enrol and renew
// with, sharing its network CA with an in-process data plane (tests/dataplane/stack: a hub and a
// router) that hosts an echo service under a DNS name the router resolves with a real DNS
// server. Certificate lifetimes can be seconds, so renewal is exercised in a test's time.
package clienttest

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// ServiceName is the DNS name of the echo service.
const ServiceName = "echo.renewal.test"

// Network is a running controller edge API and data plane.
type Network struct {
	Stack      *stack.Stack
	Controller *controller.Controller
	API        *apiclient.Client // admin client of the management API
	Service    control.Service   // the echo service
	Target     string            // its host:port, for Dial
	Logs       *logging.Buffer   // the controller's log (JSON, debug level)

	dir, addr string
	lifetime  time.Duration
	stop      func(testing.TB) // stops the running controller; nil when stopped

	mu         sync.Mutex
	identities []string // ids the hub admits
}

const adminToken = "clienttest-admin-token-0123456789"

// StartController starts the controller (again: same address, store and CA) and waits until
// its edge API listens.
func (n *Network) StartController(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(n.dir, "ztna.db"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c, err := controller.New(controller.Config{
		CA: n.Stack.PKI.CA, Store: st, Token: adminToken, Name: "clienttest",
		Listen:    map[controller.Plane]string{controller.PlaneEdge: n.addr},
		Advertise: edgeapi.Endpoints{Edge: []string{"https://" + n.addr}, Fabric: n.Stack.HubAddrs},
		Hosts:     []string{"127.0.0.1"}, CertLifetime: n.lifetime,
		Logger: slog.New(slog.NewJSONHandler(n.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		cancel()
		st.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if c.Addr(controller.PlaneEdge) == nil {
		cancel()
		st.Close()
		t.Fatalf("edge API did not listen: %v", <-done)
	}
	n.Controller = c
	n.stop = func(t testing.TB) {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
		st.Close()
	}
}

// StopController stops the controller: the edge API refuses connections until
// StartController; the data plane carries on.
func (n *Network) StopController(t testing.TB) {
	t.Helper()
	if n.stop != nil {
		if n.API != nil {
			n.API.CloseIdleConnections() // the server's graceful shutdown would wait for them
		}
		n.stop(t)
		n.stop = nil
	}
}

// Start runs a network whose router and identity certificates live certLifetime.
func Start(t testing.TB, certLifetime time.Duration) *Network {
	t.Helper()
	n := &Network{Stack: stack.Start(t, stack.Options{}), Logs: &logging.Buffer{}}
	dns := dnstest.Start(t, map[string]string{ServiceName: "127.0.0.1"})
	resolver, err := resolve.New(dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	n.Service = stack.Service("echo", ServiceName, stack.Serve(t, stack.Echo))
	n.Target = net.JoinHostPort(ServiceName, strconv.Itoa(n.Service.Port))
	n.Stack.StartRouter("r1", []control.Service{n.Service}, resolver)
	n.admit()

	n.dir, n.lifetime = t.TempDir(), certLifetime
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	ln.Close()
	n.StartController(t)
	t.Cleanup(func() { n.StopController(t) })
	n.API, err = apiclient.New("https://"+n.addr, adminToken, n.Controller.CA.Fingerprint(), apiclient.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.API.CloseIdleConnections)
	return n
}

// Enrol creates identity name, enrols it with its token the way `ztna identity enroll` does and
// lets it dial the echo service. It returns the identity file (in a fresh temporary directory)
// and the identity.
func (n *Network) Enrol(t testing.TB, name string) (string, *api.Identity) {
	t.Helper()
	ctx := context.Background()
	id, err := n.API.CreateIdentity(ctx, api.IdentityCreate{Name: name, Roles: []string{"apps"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".identity")
	if _, err := enroll.Identity(ctx, id.EnrollmentToken, path, false, enroll.Options{}); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.identities = append(n.identities, id.ID)
	n.mu.Unlock()
	n.admit()
	return path, id
}

// admit gives the hub a snapshot in which every enrolled identity may dial the echo service.
func (n *Network) admit() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Stack.Update(stack.Policy([]control.Service{n.Service}, []string{"r1"}, n.identities))
}
