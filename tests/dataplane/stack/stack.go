// Package stack runs the whole data plane in one process for tests and benchmarks: a network CA,
// a hub listening on loopback, routers hosting services (real TCP targets) over fabric links to
// that hub, and client identities using the Go SDK. Every hop is a real loopback TCP connection
// with TLS; only the processes are shared.
package stack

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/hosting"
	"github.com/ztna/ztna/router/targets"
)

// Stack is a running in-process data plane.
type Stack struct {
	t        testing.TB
	ctx      context.Context
	PKI      *fabrictest.PKI
	Hub      *hub.Hub // the first hub
	HubAddr  string
	Hubs     []*hub.Hub
	HubAddrs []string
	stops    []context.CancelFunc
}

// Options tune a Stack.
type Options struct {
	Hub hub.Config // Credentials are filled in
	// Listener wraps the first hub's listener (for taps); nil keeps it as is.
	Listener func(net.Listener) net.Listener
	// Hubs is how many hubs to run (default 1); routers link to all, clients know all.
	Hubs int
}

// Start runs a CA and the hubs until the test ends.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &Stack{t: t, ctx: ctx, PKI: fabrictest.New(t)}
	for i := range max(opts.Hubs, 1) {
		cfg := opts.Hub
		cfg.Credentials = s.PKI.Credentials(api.KindHub, "hub"+strconv.Itoa(i+1))
		h := hub.New(cfg)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.HubAddrs = append(s.HubAddrs, ln.Addr().String())
		if opts.Listener != nil && i == 0 {
			ln = opts.Listener(ln)
		}
		hctx, stop := context.WithCancel(ctx)
		go h.Serve(hctx, ln)
		s.Hubs = append(s.Hubs, h)
		s.stops = append(s.stops, stop)
	}
	s.Hub, s.HubAddr = s.Hubs[0], s.HubAddrs[0]
	return s
}

// StopHub takes hub i down: its listener and every link it holds close.
func (s *Stack) StopHub(i int) { s.stops[i]() }

// Update pushes the same snapshot to every hub.
func (s *Stack) Update(snap hub.Snapshot) {
	for _, h := range s.Hubs {
		h.Update(snap)
	}
}

// Router is a running router.
type Router struct {
	ID      string
	Host    *hosting.Host
	Targets *targets.Set
	cancel  context.CancelFunc
}

// Stop takes the router down: its links close and its streams end.
func (r *Router) Stop() { r.cancel() }

// StartRouter runs router id hosting services (resolved with resolver, nil for the host's) and
// waits until the hub has its link.
func (s *Stack) StartRouter(id string, services []control.Service, resolver *net.Resolver) *Router {
	s.t.Helper()
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	creds := s.PKI.Credentials(api.KindRouter, id)
	set := targets.NewSet()
	set.Replace(services)
	h := hosting.New(hosting.Config{
		Endpoint: e2e.NewEndpoint(creds.Cert, creds.CA),
		Dialer:   &targets.Dialer{Targets: set, Resolver: resolver, Timeout: 5 * time.Second},
		Link:     fabric.LinkConfig{Credentials: creds},
	})
	ctx, cancel := context.WithCancel(s.ctx)
	s.t.Cleanup(cancel)
	h.SetHubs(ctx, s.HubAddrs)
	r := &Router{ID: id, Host: h, Targets: set, cancel: cancel}
	s.WaitRouters(id)
	return r
}

// WaitRouters waits until every hub has a healthy link from each router id.
func (s *Stack) WaitRouters(ids ...string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for _, h := range s.Hubs {
			up := map[string]bool{}
			for _, st := range h.Routers() {
				if st.Healthy {
					up[st.ID] = true
				}
			}
			for _, id := range ids {
				all = all && up[id]
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("routers %v did not link to every hub", ids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Identity returns the certificate slot of a new client identity.
func (s *Stack) Identity(id string) *pki.CertSlot {
	return s.PKI.Credentials(api.KindIdentity, id).Cert
}

// Client returns an SDK client for identity id, linked to the hub.
func (s *Stack) Client(id string) *client.Client {
	s.t.Helper()
	c, err := client.New(client.Config{Cert: s.Identity(id), CA: s.PKI.CA.Cert, Hubs: s.HubAddrs})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Service is a TCP service definition for the hub snapshot and the router assignment.
func Service(name, address string, port int) control.Service {
	return control.Service{ID: name, Name: name, Address: address, Port: port, Protocol: api.ProtocolTCP}
}

// Policy builds a hub snapshot in which identities may dial services, all hosted by routers
// with role "edge".
func Policy(services []control.Service, routers []string, identities []string) hub.Snapshot {
	var snap hub.Snapshot
	var names []string
	for _, svc := range services {
		snap.Services = append(snap.Services, hub.Service{Service: svc, RouterRoles: []string{"edge"}})
		names = append(names, svc.Name)
	}
	for _, r := range routers {
		snap.Routers = append(snap.Routers, hub.Router{ID: r, Roles: []string{"edge"}})
	}
	for _, i := range identities {
		snap.Identities = append(snap.Identities, hub.Identity{ID: i, Roles: []string{"apps"}})
	}
	if len(names) > 0 {
		snap.Policies = []hub.Policy{{IdentityRoles: []string{"apps"}, ServiceNames: names}}
	}
	return snap
}

// Serve runs handle for every connection to a new loopback listener until the test ends and
// returns its port.
func Serve(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	return nettest.Serve(t, handle).Port
}

// Echo writes back everything it reads, then half-closes.
func Echo(c net.Conn) {
	defer c.Close()
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// Digest reads until end of stream and answers with the hex SHA-256 of what it read and the
// byte count: "sha256hex size".
func Digest(c net.Conn) {
	defer c.Close()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return
	}
	io.WriteString(c, hex.EncodeToString(h.Sum(nil))+" "+strconv.FormatInt(n, 10))
}

// Dial dials target through c, giving up after 10 s; the connection is closed when the test
// ends.
func Dial(t testing.TB, c *client.Client, target string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// CloseWrite half-closes conn: the far end reads end of stream.
func CloseWrite(t testing.TB, conn net.Conn) {
	t.Helper()
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// CheckEcho checks over conn, to an Echo target, that messages of 1 byte to 300 kB come back
// intact and that a half-close travels to the target, whose end of stream travels back.
func CheckEcho(t testing.TB, conn net.Conn) {
	t.Helper()
	for _, msg := range []string{"x", "hello through the overlay", strings.Repeat("0123456789", 30_000)} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %v", len(msg), err)
		}
	}
	CloseWrite(t, conn)
	if rest, err := io.ReadAll(conn); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
}

// SendDigested sends size pseudo-random bytes to a Digest target over conn, half-closes it and
// checks that the target's digest and byte count match what was sent; it returns how long that
// took. A lost, repeated or reordered frame changes the digest. The bytes come from a randomly
// seeded ChaCha8 stream: crypto/rand itself would be the bottleneck.
func SendDigested(t testing.TB, conn net.Conn, size int64) time.Duration {
	t.Helper()
	var seed [32]byte
	crand.Read(seed[:])
	h := sha256.New()
	start := time.Now()
	if _, err := io.Copy(conn, io.TeeReader(io.LimitReader(rand.NewChaCha8(seed), size), h)); err != nil {
		t.Fatal(err)
	}
	CloseWrite(t, conn)
	reply, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if want := hex.EncodeToString(h.Sum(nil)) + " " + strconv.FormatInt(size, 10); string(reply) != want {
		t.Fatalf("target received %q, sent %q", reply, want)
	}
	return took
}
