package health

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/router/targets"
	"github.com/ztna/ztna/router/testnet"
)

func TestCheck(t *testing.T) {
	open, closed := testnet.OpenPort(t), testnet.ClosedPort(t)
	srv := dnstest.Start(t, map[string]string{"db.customer.test": "127.0.0.1"})
	r, err := resolve.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                  string
		address               string
		port                  int
		resolvable, reachable bool
		errMentions           string
	}{
		{"healthy", "db.customer.test", open, true, true, ""},
		{"unknown to the customer's DNS", "ghost.customer.test", open, false, false, "cannot resolve ghost.customer.test: no such host"},
		{"closed port", "db.customer.test", closed, true, false, "is unreachable"},
		{"IP literal", "127.0.0.1", open, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Check(context.Background(), r, tt.address, tt.port, 2*time.Second)
			if h.Resolvable != tt.resolvable || h.Reachable != tt.reachable || !strings.Contains(h.Error, tt.errMentions) ||
				(tt.errMentions == "" && h.Error != "") {
				t.Fatalf("Check = %+v", h)
			}
		})
	}
}

func TestCheckerFollowsAssignment(t *testing.T) {
	open, closed := testnet.OpenPort(t), testnet.ClosedPort(t)
	set := targets.NewSet()
	rounds := make(chan []control.ServiceHealth, 10)
	c := &Checker{Targets: set, Resolver: net.DefaultResolver, Interval: time.Hour,
		OnResults: func(r []control.ServiceHealth) { rounds <- r }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	set.Replace([]control.Service{{ID: "up", Name: "up", Address: "127.0.0.1", Port: open}, {ID: "down", Address: "127.0.0.1", Port: closed},
		{ID: "udp", Address: "127.0.0.1", Port: 53, Protocol: "udp"}})
	var got []control.ServiceHealth
	select {
	case got = <-rounds:
	case <-time.After(5 * time.Second):
		t.Fatal("no check round after the assignment changed")
	}
	if len(got) != 3 || got[0].ServiceID != "up" || got[0].ServiceName != "up" || !got[0].Reachable ||
		got[1].ServiceID != "down" || got[1].Reachable ||
		!got[2].Resolvable || got[2].Reachable || !strings.Contains(got[2].Error, "not probed") {
		t.Fatalf("results %+v", got)
	}
	if len(c.Results()) != 3 {
		t.Fatalf("Results() = %+v", c.Results())
	}
}
