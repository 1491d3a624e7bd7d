package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func echo(t *testing.T, c *client.Client, target string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hi")); err != nil {
		return err
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	return nil
}

// echoStack starts a data plane of hubs hubs and router r1 hosting an echo service, svc, that
// identity i1 may dial at target.
func echoStack(t *testing.T, hubs int) (s *stack.Stack, svc control.Service, target string) {
	s = stack.Start(t, stack.Options{Hubs: hubs})
	svc = stack.Service("svc", "127.0.0.1", stack.Serve(t, stack.Echo))
	s.StartRouter("r1", []control.Service{svc}, nil)
	s.Update(stack.Policy([]control.Service{svc}, []string{"r1"}, []string{"i1"}))
	return s, svc, net.JoinHostPort(svc.Address, strconv.Itoa(svc.Port))
}

func TestFailsOverBetweenHubs(t *testing.T) {
	s, svc, target := echoStack(t, 2)

	c, err := client.New(client.Config{Cert: s.Identity("i1"), CA: s.PKI.CA.Cert,
		Hubs: []string{deadAddr(t), s.HubAddrs[0], s.HubAddrs[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The first hub listed is down: the client moves on.
	if err := echo(t, c, target); err != nil {
		t.Fatalf("with the first hub down: %v", err)
	}
	list, err := c.Services(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "svc" || list[0].Port != svc.Port {
		t.Fatalf("services: %+v, %v", list, err)
	}

	// The hub in use goes down: its stream fails loudly, the next dial uses the other hub.
	conn, err := c.Dial(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	s.StopHub(0)
	if _, err := io.ReadAll(conn); !errors.Is(err, e2e.ErrTruncated) {
		t.Fatalf("stream through the stopped hub ended with %v", err)
	}
	if err := echo(t, c, target); err != nil {
		t.Fatalf("after the hub went down: %v", err)
	}
}

func TestAllHubsDown(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	c, err := client.New(client.Config{Cert: s.Identity("i1"), CA: s.PKI.CA.Cert, Hubs: []string{deadAddr(t), deadAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Dial(context.Background(), "db.internal:5432")
	if !errors.Is(err, client.ErrNoHub) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dial with every hub down: %v", err)
	}
}

func TestConfigAndTargetErrors(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	cert := s.Identity("i1")
	for name, cfg := range map[string]client.Config{
		"no certificate": {CA: s.PKI.CA.Cert, Hubs: []string{"h:1"}},
		"no CA":          {Cert: cert, Hubs: []string{"h:1"}},
		"no hubs":        {Cert: cert, CA: s.PKI.CA.Cert},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err := client.New(client.Config{Cert: cert, CA: s.PKI.CA.Cert, Hubs: s.HubAddrs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, target := range []string{"db.internal", "db.internal:0", "db.internal:99999", "db.internal:pg"} {
		if _, err := c.Dial(context.Background(), target); err == nil || !strings.Contains(err.Error(), target) {
			t.Errorf("Dial(%q): %v", target, err)
		}
	}
}
