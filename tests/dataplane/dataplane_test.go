// Package dataplane tests the data plane end to end in one process: client SDK → hub → router →
// real TCP targets, every hop over loopback TCP with TLS, end-to-end encryption between client
// and router. Process-level tests (separate controller and router binaries) live elsewhere.
package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

func target(svc control.Service) string { return net.JoinHostPort(svc.Address, strconv.Itoa(svc.Port)) }

// oneService starts a stack with router r1 hosting one service served by handle, and identity
// i1 allowed to dial it.
func oneService(t *testing.T, handle func(net.Conn), opts stack.Options) (*stack.Stack, control.Service, *client.Client) {
	t.Helper()
	s := stack.Start(t, opts)
	svc := stack.Service("svc", "127.0.0.1", stack.Serve(t, handle))
	s.StartRouter("r1", []control.Service{svc}, nil)
	s.Update(stack.Policy([]control.Service{svc}, []string{"r1"}, []string{"i1"}))
	return s, svc, s.Client("i1")
}

func TestBytesRoundTrip(t *testing.T) {
	_, svc, c := oneService(t, stack.Echo, stack.Options{})
	stack.CheckEcho(t, stack.Dial(t, c, target(svc)))
}

func TestGiBTransferArrivesIntact(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	_, svc, c := oneService(t, stack.Digest, stack.Options{})
	d := stack.SendDigested(t, stack.Dial(t, c, target(svc)), size)
	t.Logf("%d MiB in %v (%.2f GB/s, in-process, shared CPU)", size>>20, d.Round(time.Millisecond), float64(size)/d.Seconds()/1e9)
}

func TestThousandConcurrentStreams(t *testing.T) {
	_, svc, c := oneService(t, stack.Echo, stack.Options{})
	const streams = 1000
	const size = 16 << 10
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(c, target(svc), size, byte(i))
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed < 5 {
				t.Error(err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d streams failed", failed, streams)
	}
}

// echoOnce dials, sends size bytes, half-closes and checks the echo.
func echoOnce(c *client.Client, target string, size int, seed byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	msg := make([]byte, size)
	rand.Read(msg)
	msg[0] = seed
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(msg)
		if err == nil {
			err = conn.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(conn)
	if werr := <-errc; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("stream %d: echo differs (%d bytes back of %d)", seed, len(got), len(msg))
	}
	return nil
}

// The hub relays ciphertext only: decrypting every TLS link the hub terminates, with the hub's
// own TLS secrets, reveals the requests it routes but never the payload sent end to end.
func TestHubNeverSeesPlaintext(t *testing.T) {
	var tap *tapListener
	kl := &keyLog{}
	opts := stack.Options{
		Hub:      hub.Config{KeyLog: kl},
		Listener: func(ln net.Listener) net.Listener { tap = &tapListener{Listener: ln}; return tap },
	}
	_, svc, c := oneService(t, stack.Echo, opts)
	marker := make([]byte, 16)
	rand.Read(marker)
	secret := []byte("PLAINTEXT-MARKER-" + hex.EncodeToString(marker))
	conn := stack.Dial(t, c, target(svc))
	if _, err := conn.Write(secret); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(secret))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("echo: %v", err)
	}
	conn.Close()

	tap.mu.Lock()
	conns := tap.conns
	tap.mu.Unlock()
	if len(conns) != 2 {
		t.Fatalf("hub accepted %d links, want 2 (router and client)", len(conns))
	}
	var seen [][]byte // everything the hub could read, both links, both directions
	for _, tc := range conns {
		in, out := tc.snapshot()
		if bytes.Contains(in, secret) || bytes.Contains(out, secret) {
			t.Fatal("marker visible on the wire")
		}
		for _, fromPeer := range []bool{true, false} {
			pt, err := decryptTLS13(in, out, fromPeer, kl)
			if err != nil {
				t.Fatalf("decrypting the hub's TLS: %v", err)
			}
			seen = append(seen, pt)
		}
	}
	all := bytes.Join(seen, nil)
	// The tap works: the hub does see the dial request naming the target (and forwards it).
	if n := bytes.Count(all, []byte(target(svc))); n < 2 {
		t.Fatalf("decrypted hub traffic mentions the target %d times; the tap is not decrypting", n)
	}
	if bytes.Contains(all, secret) || bytes.Contains(all, []byte("PLAINTEXT-MARKER")) {
		t.Fatal("the hub saw the end-to-end plaintext")
	}
	t.Logf("hub-visible plaintext: %d bytes across %d links; marker absent", len(all), len(conns))
}

func TestPolicyDecidesWhatAnIdentitySeesAndDials(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	db := stack.Service("db", "127.0.0.1", stack.Serve(t, stack.Echo))
	api := stack.Service("api", "127.0.0.1", stack.Serve(t, stack.Echo))
	s.StartRouter("r1", []control.Service{db, api}, nil)
	snap := stack.Policy([]control.Service{db, api}, []string{"r1"}, []string{"i1"})
	snap.Identities = append(snap.Identities, hub.Identity{ID: "outsider", Roles: []string{"other"}})
	s.Update(snap)
	ctx := context.Background()

	outsider := s.Client("outsider")
	if list, err := outsider.Services(ctx); err != nil || len(list) != 0 {
		t.Fatalf("outsider lists %v, %v; want nothing", list, err)
	}
	_, errKnown := outsider.Dial(ctx, target(db))
	_, errUnknown := outsider.Dial(ctx, "nothing.example:1")
	for _, err := range []error{errKnown, errUnknown} {
		if !errors.Is(err, client.ErrNotAuthorized) {
			t.Fatalf("outsider dial: %v, want not authorized", err)
		}
	}
	// An existing service and a non-existent one are refused alike: no existence oracle.
	if strings.Contains(errKnown.Error(), "db") && !strings.Contains(errKnown.Error(), target(db)) {
		t.Fatalf("refusal names the service: %v", errKnown)
	}

	insider := s.Client("i1")
	list, err := insider.Services(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "api" || list[1].Name != "db" {
		t.Fatalf("insider lists %+v, %v", list, err)
	}

	// Granting a policy takes effect on the next dial; revoking it likewise.
	snap.Policies = append(snap.Policies, hub.Policy{IdentityRoles: []string{"other"}, ServiceNames: []string{"db"}})
	s.Update(snap)
	conn, err := outsider.Dial(ctx, target(db))
	if err != nil {
		t.Fatalf("after granting: %v", err)
	}
	conn.Close()
	if list, _ := outsider.Services(ctx); len(list) != 1 || list[0].Name != "db" {
		t.Fatalf("after granting, outsider lists %+v", list)
	}
	if _, err := outsider.Dial(ctx, target(api)); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("granting db also let outsider dial api: %v", err)
	}
	snap.Policies = snap.Policies[:1]
	s.Update(snap)
	if _, err := outsider.Dial(ctx, target(db)); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("after revoking: %v", err)
	}
}

// A hub whose snapshot says a router hosts a target the router was not assigned gets refused
// by the router: routers dial only what the controller assigned to them.
func TestRouterRefusesUnassignedTarget(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	assigned := stack.Service("assigned", "127.0.0.1", stack.Serve(t, stack.Echo))
	other := stack.Service("other", "127.0.0.1", stack.Serve(t, stack.Echo))
	s.StartRouter("r1", []control.Service{assigned}, nil)
	s.Update(stack.Policy([]control.Service{assigned, other}, []string{"r1"}, []string{"i1"}))
	c := s.Client("i1")
	_, err := c.Dial(context.Background(), target(other))
	if !errors.Is(err, client.ErrNotAuthorized) || !strings.Contains(err.Error(), "not assigned") {
		t.Fatalf("dial to an unassigned target: %v", err)
	}
	stack.Dial(t, c, target(assigned)) // the assigned one still works
}

// Stream setup that fails on one router is retried on the next, invisibly to the client. Here
// router r1 resolves names with a DNS server that does not know the service's name; r2 uses
// the customer's DNS, which does.
func TestFailedSetupRetriedOnNextRouter(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	port := stack.Serve(t, stack.Echo)
	svc := stack.Service("db", "prod-db.customerdomain.me", port)
	good := dnstest.Start(t, map[string]string{"prod-db.customerdomain.me": "127.0.0.1"})
	empty := dnstest.Start(t, nil)
	resolver := func(addr string) *net.Resolver {
		r, err := resolve.New(addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s.StartRouter("r1", []control.Service{svc}, resolver(empty.Addr))
	s.StartRouter("r2", []control.Service{svc}, resolver(good.Addr))
	snap := stack.Policy([]control.Service{svc}, []string{"r1", "r2"}, []string{"i1"})
	snap.Routers[1].Cost = 1000 // r1 is preferred, and fails
	s.Update(snap)
	c := s.Client("i1")
	for range 20 {
		if err := echoOnce(c, target(svc), 100, 1); err != nil {
			t.Fatal(err)
		}
	}
	// With no router able to resolve the name, the client learns why.
	s2 := stack.Start(t, stack.Options{})
	s2.StartRouter("r1", []control.Service{svc}, resolver(empty.Addr))
	s2.Update(stack.Policy([]control.Service{svc}, []string{"r1"}, []string{"i1"}))
	_, err := s2.Client("i1").Dial(context.Background(), target(svc))
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "no such host") {
		t.Fatalf("unresolvable target: %v", err)
	}
}

// When a router goes away, its streams fail with an error (never a clean, truncated end) and
// new dials go to the surviving router.
func TestRouterLossFailsItsStreamsAndMovesNewDials(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	svc := stack.Service("svc", "127.0.0.1", stack.Serve(t, stack.Echo))
	r1 := s.StartRouter("r1", []control.Service{svc}, nil)
	s.Update(stack.Policy([]control.Service{svc}, []string{"r1", "r2"}, []string{"i1"}))
	c := s.Client("i1")
	onR1 := stack.Dial(t, c, target(svc))
	if _, err := onR1.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(onR1, make([]byte, 4))
	s.StartRouter("r2", []control.Service{svc}, nil)

	r1.Stop()
	_, err := io.ReadAll(onR1)
	if !errors.Is(err, e2e.ErrTruncated) {
		t.Fatalf("stream on the lost router ended with %v, want ErrTruncated", err)
	}
	for range 20 {
		if err := echoOnce(c, target(svc), 1000, 2); err != nil {
			t.Fatalf("dial after losing r1: %v", err)
		}
	}
}
