package hosting_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/hosting"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/router/targets"
)

// env runs a Host linked to a test hub; the test plays the hub and the client.
type env struct {
	t      *testing.T
	p      *fabrictest.PKI
	link   *fabric.Link // the hub's end of the router's link
	client *e2e.Endpoint
	host   *hosting.Host
}

func start(t *testing.T, services []control.Service, resolver *net.Resolver) *env {
	t.Helper()
	return startWith(t, services, resolver, func(*hosting.Config) {})
}

// startWith is start with the Host's configuration adjusted by adjust.
func startWith(t *testing.T, services []control.Service, resolver *net.Resolver, adjust func(*hosting.Config)) *env {
	t.Helper()
	p := fabrictest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	links := make(chan *fabric.Link, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l, err := fabric.Accept(context.Background(), c, fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "hub1")})
		if err != nil {
			t.Error(err)
			return
		}
		links <- l
	}()
	set := targets.NewSet()
	set.Replace(services)
	creds := p.Credentials(api.KindRouter, "r1")
	cfg := hosting.Config{
		Endpoint: e2e.NewEndpoint(creds.Cert, creds.CA),
		Dialer:   &targets.Dialer{Targets: set, Resolver: resolver, Timeout: 2 * time.Second},
		Link:     fabric.LinkConfig{Credentials: creds},
	}
	adjust(&cfg)
	h := hosting.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.SetHubs(ctx, []string{ln.Addr().String()})
	var link *fabric.Link
	select {
	case link = <-links:
	case <-time.After(10 * time.Second):
		t.Fatal("router never linked")
	}
	t.Cleanup(func() { link.Close() })
	client := p.Credentials(api.KindIdentity, "i1")
	return &env{t: t, p: p, link: link, client: e2e.NewEndpoint(client.Cert, client.CA), host: h}
}

// open asks the router for target as identity (the hub's claim) and completes the handshake
// with the client endpoint.
func (e *env) open(target, identity string) (*e2e.Conn, error) {
	in, hello, err := e.client.Initiate(target)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, resp, err := e.link.Open(ctx, &fabric.Request{Op: fabric.OpDial, Target: target, Service: "svc", Identity: identity, Payload: hello})
	if err != nil {
		return nil, err
	}
	return in.Finish(s, resp.Payload)
}

func listen(t *testing.T, handle func(net.Conn)) int { return nettest.Serve(t, handle).Port }

func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func service(addr string, port int) control.Service {
	return control.Service{ID: addr, Name: addr, Address: addr, Port: port, Protocol: "tcp"}
}

func hostPort(h string, p int) string { return net.JoinHostPort(h, strconv.Itoa(p)) }

func TestDialsOnlyAssignedTargets(t *testing.T) {
	echoPort := listen(t, echo)
	refused := closedPort(t)
	dns := dnstest.Start(t, map[string]string{"prod-db.customerdomain.me": "127.0.0.1"})
	resolver, err := resolve.New(dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, []control.Service{
		service("prod-db.customerdomain.me", echoPort),
		service("127.0.0.1", refused),
		service("gone.customerdomain.me", echoPort),
	}, resolver)

	tests := []struct {
		name, target string
		want         error // nil: the stream works
		detail       string
	}{
		{"assigned FQDN resolved by the customer's DNS", hostPort("prod-db.customerdomain.me", echoPort), nil, ""},
		{"same FQDN, any case, trailing dot", hostPort("PROD-DB.customerdomain.me.", echoPort), nil, ""},
		{"assigned host, other port", hostPort("prod-db.customerdomain.me", echoPort+1), fabric.ErrNotAuthorized, "not assigned"},
		{"address the router can reach but was not assigned", hostPort("127.0.0.1", echoPort), fabric.ErrNotAuthorized, "not assigned"},
		{"loopback service of the router host", "127.0.0.1:22", fabric.ErrNotAuthorized, "not assigned"},
		{"assigned, but the target refuses", hostPort("127.0.0.1", refused), fabric.ErrTargetRefused, "refused"},
		{"assigned, but the name does not resolve", hostPort("gone.customerdomain.me", echoPort), fabric.ErrUnreachable, "no such host"},
		{"not host:port", "prod-db.customerdomain.me", fabric.ErrBadRequest, "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := e.open(tt.target, "i1")
			if tt.want != nil {
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
					t.Fatalf("open %s: %v, want %v (%s)", tt.target, err, tt.want, tt.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if conn.Peer().Kind != api.KindRouter || conn.Peer().ID != "r1" {
				t.Fatalf("peer %+v", conn.Peer())
			}
			conn.Write([]byte("ping"))
			conn.CloseWrite()
			got, err := io.ReadAll(conn)
			if err != nil || string(got) != "ping" {
				t.Fatalf("echo: %q, %v", got, err)
			}
		})
	}
}

// The hub names the identity it authorised; a client proving another identity is cut off.
func TestIdentityMismatchAborts(t *testing.T) {
	port := listen(t, echo)
	e := start(t, []control.Service{service("127.0.0.1", port)}, net.DefaultResolver)
	conn, err := e.open(hostPort("127.0.0.1", port), "someone-else")
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("x"))
	if _, err := io.ReadAll(conn); !errors.Is(err, e2e.ErrTruncated) {
		t.Fatalf("read after identity mismatch: %v", err)
	}
}

// Failures pass through as failures: a target reset reaches the client as a truncated stream,
// and a client that aborts makes the router reset the target connection.
func TestFailuresAreNotCleanEnds(t *testing.T) {
	resetting := listen(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 4))
		c.Write([]byte("partial"))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	targetErr := make(chan error, 1)
	observing := listen(t, func(c net.Conn) {
		_, err := io.Copy(io.Discard, c)
		targetErr <- err
	})
	e := start(t, []control.Service{service("127.0.0.1", resetting), service("127.0.0.1", observing)}, net.DefaultResolver)

	conn, err := e.open(hostPort("127.0.0.1", resetting), "i1")
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	got, err := io.ReadAll(conn)
	if !errors.Is(err, e2e.ErrTruncated) || string(got) != "partial" {
		t.Fatalf("after a target reset: %q, %v", got, err)
	}

	conn, err = e.open(hostPort("127.0.0.1", observing), "i1")
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("some data"))
	time.Sleep(50 * time.Millisecond)
	conn.Abort()
	select {
	case err := <-targetErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("target saw %v after the client aborted, want a connection reset", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target connection left open after the client aborted")
	}
}

// TestLostLinkResetsTargets: when the router's link to the hub is lost (here the hub closes it;
// a keepalive timeout ends it the same way), the target connections of the streams it carried
// are reset at once: no target-side session outlives the client's error.
func TestLostLinkResetsTargets(t *testing.T) {
	arrived, targetErr := make(chan struct{}), make(chan error, 1)
	observing := listen(t, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
			targetErr <- err
			return
		}
		close(arrived)
		_, err := io.Copy(io.Discard, c)
		targetErr <- err
	})
	e := start(t, []control.Service{service("127.0.0.1", observing)}, net.DefaultResolver)
	conn, err := e.open(hostPort("127.0.0.1", observing), "i1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("BEGIN")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case err := <-targetErr:
		t.Fatalf("target: %v", err)
	}
	e.link.Close()
	select {
	case err := <-targetErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("target saw %v after the link was lost, want a connection reset", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target connection left open after the router's link was lost")
	}
}

// TestStreamsPerHubLinkBounded: beyond its streams limit the router answers a hub's stream with
// "limit reached" (the hub tries another router), counts it, and the streams it holds go on.
func TestStreamsPerHubLinkBounded(t *testing.T) {
	port := listen(t, echo)
	reg := prometheus.NewRegistry()
	e := startWith(t, []control.Service{service("127.0.0.1", port)}, nil, func(c *hosting.Config) {
		c.Link.MaxStreams = 1
		c.Metrics = reg
	})
	target := hostPort("127.0.0.1", port)
	held, err := e.open(target, "i1")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := e.open(target, "i1"); !errors.Is(err, fabric.ErrLimitReached) {
		t.Fatalf("stream beyond the limit: %v, want limit reached", err)
	}
	if got := limitReached(t, reg); got != 1 {
		t.Errorf(`ztna_router_streams_total{result="limit reached"} = %v, want 1`, got)
	}
	if _, err := held.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(held, b); err != nil || string(b) != "still" {
		t.Fatalf("held stream: %q, %v", b, err)
	}
}

func limitReached(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "ztna_router_streams_total" && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == "limit reached" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestDrain: a draining router refuses new streams as Unavailable (the hub's cue to try another
// router), keeps the open one working until it ends, and Drain returns when it has.
func TestDrain(t *testing.T) {
	port := listen(t, echo)
	e := start(t, []control.Service{service("127.0.0.1", port)}, nil)
	target := hostPort("127.0.0.1", port)
	held, err := e.open(target, "i1")
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan int, 1)
	go func() { drained <- e.host.Drain(context.Background()) }()
	// Drain flags the host before it waits: a new stream is refused once Drain is running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.open(target, "i1")
		if errors.Is(err, fabric.ErrUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("stream opened while draining: %v, want unavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("streams still accepted 10 s after Drain started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case n := <-drained:
		t.Fatalf("Drain returned (%d left) while a stream was open", n)
	default:
	}
	if _, err := held.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(held, b); err != nil || string(b) != "still" {
		t.Fatalf("open stream while draining: %q, %v", b, err)
	}
	if err := held.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(held); err != nil {
		t.Fatalf("open stream did not end cleanly: %v", err)
	}
	select {
	case n := <-drained:
		if n != 0 {
			t.Fatalf("Drain left %d streams", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after the last stream ended")
	}
}

// TestDrainTimeout: Drain gives up when its context ends and says how many streams are open.
func TestDrainTimeout(t *testing.T) {
	port := listen(t, echo)
	e := start(t, []control.Service{service("127.0.0.1", port)}, nil)
	held, err := e.open(hostPort("127.0.0.1", port), "i1")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if n := e.host.Drain(ctx); n != 1 {
		t.Fatalf("Drain left %d streams, want 1", n)
	}
}
