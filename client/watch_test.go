package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

func TestWatchServicesPushesPolicyChanges(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	svc := stack.Service("db", "127.0.0.1", 5432)
	other := stack.Service("cache", "127.0.0.1", 6379)
	c, err := client.New(client.Config{Cert: s.Identity("i1"), CA: s.PKI.CA.Cert, Hubs: s.HubAddrs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	lists := make(chan []client.Service, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.WatchServices(ctx, func(l []client.Service) { lists <- l }) }()
	next := func(what string) []client.Service {
		t.Helper()
		select {
		case l := <-lists:
			return l
		case <-time.After(2 * time.Second):
			t.Fatalf("no list pushed: %s", what)
			return nil
		}
	}
	if l := next("initial"); len(l) != 0 {
		t.Fatalf("initial list without a policy: %+v", l)
	}
	start := time.Now()
	s.Update(stack.Policy([]control.Service{svc}, nil, []string{"i1"}))
	if l := next("after the grant"); len(l) != 1 || l[0].Name != "db" {
		t.Fatalf("after the grant: %+v", l)
	}
	t.Logf("grant pushed in %v", time.Since(start))
	// A change that does not alter this identity's list pushes nothing.
	s.Update(stack.Policy([]control.Service{svc, other}, nil, []string{"i1"}))
	if l := next("after adding a second service"); len(l) != 2 {
		t.Fatalf("after adding a service: %+v", l)
	}
	s.Update(stack.Policy([]control.Service{svc, other}, nil, []string{"i1"}))
	select {
	case l := <-lists:
		t.Fatalf("an unchanged list was pushed again: %+v", l)
	case <-time.After(100 * time.Millisecond):
	}
	s.Update(stack.Policy(nil, nil, []string{"i1"})) // i1 stays, its policy goes
	if l := next("after the revocation"); len(l) != 0 {
		t.Fatalf("after the revocation: %+v", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch ended by its context: %v", err)
	}
}

// A hub that does not know the watch op answers "bad request": the SDK says so distinctly.
func TestWatchServicesOnAHubThatCannotPush(t *testing.T) {
	p := fabrictest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		link, err := fabric.Accept(context.Background(), conn, fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "old")})
		if err != nil {
			return
		}
		defer link.Close()
		for {
			st, err := link.AcceptStream()
			if err != nil {
				return
			}
			fabric.ReadRequest(st)
			fabric.WriteResponse(st, &fabric.Response{Code: fabric.BadRequest, Message: "unknown op 4"})
			st.Close()
		}
	}()
	c, err := client.New(client.Config{Cert: pki.NewCertSlot(p.Cert(api.KindIdentity, "i1")), CA: p.CA.Cert, Hubs: []string{ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.WatchServices(context.Background(), func([]client.Service) { t.Error("list from a hub that cannot push") })
	if !errors.Is(err, client.ErrWatchUnsupported) {
		t.Fatalf("err %v, want ErrWatchUnsupported", err)
	}
}
