package resolve

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/ztna/ztna/router/dnstest"
)

func TestCustomServerIsAsked(t *testing.T) {
	addr := dnstest.Start(t, map[string]string{"db.customer.test": "127.0.0.42"}).Addr
	r, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	ips, err := r.LookupHost(context.Background(), "db.customer.test")
	if err != nil || len(ips) != 1 || ips[0] != "127.0.0.42" {
		t.Fatalf("LookupHost = %v, %v", ips, err)
	}
	if _, err := r.LookupHost(context.Background(), "unknown.customer.test"); err == nil {
		t.Fatal("unknown name resolved")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"10.0.0.2:53", ""},
		{"dns.corp:5353", ""},
		{"[::1]:53", ""},
		{"10.0.0.2", "must be host:port"},
		{":53", "must be host:port"},
		{"10.0.0.2:0", "port must be"},
		{"10.0.0.2:dns", "port must be"},
	}
	for _, tt := range tests {
		err := Validate(tt.in)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Validate(%q) = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestEmptyMeansHostResolver(t *testing.T) {
	r, err := New("")
	if err != nil || r != net.DefaultResolver {
		t.Fatalf("New(\"\") = %v, %v", r, err)
	}
}
