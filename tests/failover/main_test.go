// Package failover_test proves redundancy with the real processes: a `ztna-controller dev`
// (API, control channel, embedded hub), `ztna-router run` processes hosting one service, a real
// TCP target and an identity dialing through the Go SDK, while a router is killed (SIGKILL) or
// silently cut off inside a network namespace (nftables drop), and while the controller itself
// is killed and restarted.
package failover_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/failover/openloop"
)

// TestMain starts PostgreSQL (a target in TestFrozenRouterLeavesNoDatabaseSession) and builds
// the binaries (unless $ZTNA_BIN_DIR has them).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(withBinaries{m})) }

type withBinaries struct{ m *testing.M }

func (w withBinaries) Run() int { return harness.Main(w.m) }

// target is a real TCP service: each connection starts with a tag line, after which everything
// is echoed back. It remembers on which of its addresses each tag arrived, which tells the test
// which router carried the stream when every router reaches the target by another address.
type target struct {
	port int
	mu   sync.Mutex
	via  map[string]string // tag → local IP
	from map[string]string // tag → remote IP (the router's address)
}

// startTarget listens on the same port on every ip until the test ends.
func startTarget(t *testing.T, ips ...string) *target {
	t.Helper()
	tg := &target{via: map[string]string{}, from: map[string]string{}}
	for _, ip := range ips {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(tg.port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		tg.port = ln.Addr().(*net.TCPAddr).Port
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go tg.serve(c)
			}
		}()
	}
	return tg
}

func (tg *target) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	tag, err := br.ReadString('\n')
	if err != nil {
		return
	}
	tg.mu.Lock()
	tg.via[tag[:len(tag)-1]] = c.LocalAddr().(*net.TCPAddr).IP.String()
	tg.from[tag[:len(tag)-1]] = c.RemoteAddr().(*net.TCPAddr).IP.String()
	tg.mu.Unlock()
	io.Copy(c, br)
	c.(*net.TCPConn).CloseWrite()
}

// arrivedVia is the target address the tagged stream arrived on ("" if it has not).
func (tg *target) arrivedVia(tag string) string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.via[tag]
}

// service creates the service (address:port as the routers resolve it, hosted by role edge)
// and a policy letting role apps dial it, and returns an SDK client of a new apps identity that
// uses hubs (none: those the identity was enrolled with).
func service(t *testing.T, c *harness.Controller, address string, port int, hubs ...string) *client.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := c.API.CreateService(ctx, api.ServiceCreate{Name: "db", Address: address, Port: port, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.API.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "apps-db", IdentityRoles: []string{"apps"}, ServiceNames: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	_, file := c.NewIdentity(t, "app", "apps")
	return harness.Client(t, file, hubs...)
}

// arrivedFrom is the address the tagged stream came from ("" if it has not arrived).
func (tg *target) arrivedFrom(tag string) string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.from[tag]
}

// setCosts sets routers' static costs (by router id).
func setCosts(t *testing.T, c *harness.Controller, costs map[string]int) {
	t.Helper()
	for id, cost := range costs {
		if _, err := c.API.UpdateRouter(context.Background(), id, api.RouterUpdate{Cost: &cost}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitDialsArrive waits until a new dial's tag satisfies arrived (it came through the expected
// router).
func waitDialsArrive(t *testing.T, cl *client.Client, addr, what string, arrived func(tag string) bool) {
	t.Helper()
	n := 0
	harness.WaitFor(t, 10*time.Second, "new dials arrive "+what, func() bool {
		n++
		tag := fmt.Sprintf("probe-%d", n)
		return probe(cl, addr, tag) == nil && arrived(tag)
	})
}

func waitAssigned(t *testing.T, routers ...*harness.Router) {
	t.Helper()
	for _, r := range routers {
		harness.WaitFor(t, 10*time.Second, "router "+r.ID+" assignment", func() bool {
			return r.Metric("ztna_router_assigned_services") == 1
		})
	}
}

// probe is one new dial: dial, tag, 4-byte echo, close.
func probe(c *client.Client, addr, tag string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, addr)
	if err != nil {
		return &openloop.DialError{Err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, tag+"\nping"); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if string(got) != "ping" {
		return fmt.Errorf("echo %q", got)
	}
	return nil
}

// dialLoad starts a probe of addr every interval, open loop, until ctx ends (see openloop).
func dialLoad(ctx context.Context, c *client.Client, addr string, interval time.Duration) func() []openloop.Record {
	return openloop.Start(ctx, interval, func(i int) error { return probe(c, addr, "dial-"+strconv.Itoa(i)) })
}

// stream is a long-lived stream echoing 4 KiB rounds until stopped, then half-closing and
// expecting a clean end of stream with nothing more.
type stream struct {
	tag      string
	deadline time.Duration // bounds each read and write
	rounds   int
	progress atomic.Int64 // rounds, for reading while the stream runs
	err      error        // nil: every byte came back and the stream ended cleanly
	failed   time.Time    // when err happened
	done     chan struct{}
}

// roundsDone is how many rounds came back intact so far.
func (s *stream) roundsDone() int { return int(s.progress.Load()) }

// errSilentEnd marks a stream that ended without an error before it was done: a truncation.
var errSilentEnd = errors.New("stream ended silently (clean end of stream) before it was done")

func openStream(t *testing.T, c *client.Client, addr, tag string, stop <-chan struct{}) *stream {
	t.Helper()
	return openStreamWithin(t, c, addr, tag, stop, 10*time.Second)
}

// openStreamWithin is openStream with deadline bounding each read and write.
func openStreamWithin(t *testing.T, c *client.Client, addr, tag string, stop <-chan struct{}, deadline time.Duration) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, tag+"\n"); err != nil {
		t.Fatal(err)
	}
	s := &stream{tag: tag, deadline: deadline, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer conn.Close()
		s.err = s.run(conn, stop)
		if s.err != nil {
			s.failed = time.Now()
		}
	}()
	return s
}

func (s *stream) run(conn net.Conn, stop <-chan struct{}) error {
	got := make([]byte, 4<<10)
	for {
		select {
		case <-stop:
			conn.SetDeadline(time.Now().Add(s.deadline))
			if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				return err
			}
			rest, err := io.ReadAll(conn)
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return fmt.Errorf("%d unexpected bytes after half-close", len(rest))
			}
			return nil
		case <-time.After(20 * time.Millisecond):
		}
		msg := bytes.Repeat([]byte(fmt.Sprintf("%s round %d|", s.tag, s.rounds)), 1<<12)[:len(got)]
		conn.SetDeadline(time.Now().Add(s.deadline))
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, got); err != nil {
			// ReadFull returns exactly these when Read reported a plain end of stream; an
			// error that only wraps them (the e2e layer's "ended before the peer closed it") is
			// the stream saying it broke.
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("%w: round %d: %v", errSilentEnd, s.rounds, err)
			}
			return err
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("round %d: echo differs from what was sent", s.rounds)
		}
		s.rounds++
		s.progress.Store(int64(s.rounds))
	}
}
