package targets

import (
	"context"
	"errors"
	"testing"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/router/testnet"
)

func TestDialerOnlyDialsAssignedPairs(t *testing.T) {
	assigned := testnet.OpenPort(t)
	other := testnet.OpenPort(t) // open, reachable, but not assigned: must still be refused
	dnsSrv := dnstest.Start(t, map[string]string{"db.customer.test": "127.0.0.1"})
	res, err := resolve.New(dnsSrv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	set := NewSet()
	d := &Dialer{Targets: set, Resolver: res}

	if _, err := d.Dial(context.Background(), "db.customer.test", assigned); !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("before any assignment: err = %v, want ErrNotAssigned", err)
	}
	set.Replace([]control.Service{{ID: "s1", Name: "db", Address: "DB.customer.test.", Port: assigned}})

	tests := []struct {
		name    string
		address string
		port    int
		allowed bool
	}{
		{"assigned pair", "db.customer.test", assigned, true},
		{"assigned pair, other spelling", "DB.Customer.Test.", assigned, true},
		{"assigned host, other open port", "db.customer.test", other, false},
		{"resolved IP of assigned host", "127.0.0.1", assigned, false},
		{"unassigned host", "evil.example.test", assigned, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := d.Dial(context.Background(), tt.address, tt.port)
			if tt.allowed {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				c.Close()
				return
			}
			if !errors.Is(err, ErrNotAssigned) {
				t.Fatalf("err = %v, want ErrNotAssigned", err)
			}
		})
	}

	set.Replace(nil)
	if _, err := d.Dial(context.Background(), "db.customer.test", assigned); !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("after unassignment: err = %v", err)
	}
}

func TestReplaceWakesWaitersAndCountsGenerations(t *testing.T) {
	set := NewSet()
	if set.Loaded() {
		t.Fatal("new set claims to be loaded")
	}
	ch := set.Changed()
	set.Replace([]control.Service{
		{ID: "a", Address: "x.test", Port: 1, PortRanges: []control.PortRange{{From: 10, To: 20}}},
		{ID: "b", Address: "X.test.", Port: 2},
	})
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by Replace")
	}
	if snap := set.Snapshot(); snap.Generation != 1 || len(snap.Services) != 2 || !set.Loaded() {
		t.Fatalf("snapshot %+v loaded %v", snap, set.Loaded())
	}
	for port, want := range map[int]bool{1: true, 2: true, 10: true, 15: true, 20: true, 3: false, 21: false} {
		if got := set.Allowed("x.test", port); got != want {
			t.Errorf("Allowed(x.test, %d) = %v, want %v", port, got, want)
		}
	}
	if set.Allowed("y.test", 1) {
		t.Error("unassigned address allowed")
	}
}
