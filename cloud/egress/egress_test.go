package egress

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func render(rules []Rule) string {
	s := make([]string, len(rules))
	for i, r := range rules {
		s[i] = r.String()
	}
	return strings.Join(s, "\n")
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{
			name: "production controller gets 80/443/6262 over tcp and udp",
			in:   Input{Controllers: []ControllerEndpoint{{Host: "Ctrl.Example.COM."}}},
			want: []string{
				"tcp ctrl.example.com:80", "tcp ctrl.example.com:443", "tcp ctrl.example.com:6262",
				"udp ctrl.example.com:80", "udp ctrl.example.com:443", "udp ctrl.example.com:6262",
			},
		},
		{
			name: "dev controller ports, dns, services and extra; addresses sort before names",
			in: Input{
				Controllers: []ControllerEndpoint{{Host: "127.0.0.1", Ports: []uint16{41000, 41001, 41002}}},
				DNSServers:  []string{"10.0.0.2", "127.0.0.1:5353"},
				Services: []ServiceTarget{
					{Address: "prod-db.customerdomain.me", Ports: []PortRange{Port(5432)}},
					{Address: "10.1.0.0/16", Ports: []PortRange{{8000, 8100}}, Protocols: []Protocol{TCP, UDP}},
				},
				Extra: []Rule{{Destination: "2001:db8::1", Protocol: UDP, Ports: Port(123)}},
			},
			want: []string{
				"tcp 10.0.0.2/32:53", "udp 10.0.0.2/32:53",
				"tcp 10.1.0.0/16:8000-8100", "udp 10.1.0.0/16:8000-8100",
				"tcp 127.0.0.1/32:5353", "tcp 127.0.0.1/32:41000-41002", "udp 127.0.0.1/32:5353", "udp 127.0.0.1/32:41000-41002",
				"udp 2001:db8::1/128:123",
				"tcp prod-db.customerdomain.me:5432",
			},
		},
		{
			name: "duplicates removed, overlapping and adjacent ranges merged, gaps kept",
			in: Input{
				Controllers: []ControllerEndpoint{{Host: "c.example", Ports: []uint16{443}}},
				Services: []ServiceTarget{
					{Address: "c.example", Ports: []PortRange{{440, 450}, Port(451), Port(443), Port(500)}},
					{Address: "C.EXAMPLE", Ports: []PortRange{Port(500)}},
				},
			},
			want: []string{"tcp c.example:440-451", "tcp c.example:500", "udp c.example:443"},
		},
		{
			name: "ntp servers get udp 123 only, by address or name",
			in: Input{
				Controllers: []ControllerEndpoint{{Host: "c.example", Ports: []uint16{443}}},
				NTPServers:  []string{"169.254.169.123", "Time.Example.", "2001:db8::7b"},
			},
			want: []string{
				"udp 169.254.169.123/32:123", "udp 2001:db8::7b/128:123",
				"tcp c.example:443", "udp c.example:443",
				"udp time.example:123",
			},
		},
		{
			name: "ipv4-mapped ipv6 address is the ipv4 address",
			in: Input{
				Controllers: []ControllerEndpoint{{Host: "::ffff:192.0.2.1", Ports: []uint16{443}}},
				Extra:       []Rule{{Destination: "192.0.2.1", Protocol: "TCP", Ports: Port(443)}},
			},
			want: []string{"tcp 192.0.2.1/32:443", "udp 192.0.2.1/32:443"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compute(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := render(got), strings.Join(tt.want, "\n"); g != w {
				t.Fatalf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	ctrl := []ControllerEndpoint{{Host: "ctrl.example"}}
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"no controller", Input{}, "add at least one"},
		{"dns by name", Input{Controllers: ctrl, DNSServers: []string{"dns.example"}}, "use an IP address"},
		{"dns port zero", Input{Controllers: ctrl, DNSServers: []string{"10.0.0.2:0"}}, "IP:port"},
		{"ntp cidr", Input{Controllers: ctrl, NTPServers: []string{"10.0.0.0/8"}}, "not a CIDR prefix"},
		{"ntp bad name", Input{Controllers: ctrl, NTPServers: []string{"time server"}}, "not a DNS name"},
		{"ntp empty", Input{Controllers: ctrl, NTPServers: []string{""}}, "empty destination"},
		{"service without ports", Input{Controllers: ctrl, Services: []ServiceTarget{{Address: "db.example"}}}, "declare the port"},
		{"host bits", Input{Controllers: ctrl, Extra: []Rule{{Destination: "10.0.0.1/8", Protocol: TCP, Ports: Port(1)}}}, "use 10.0.0.0/8"},
		{"bad cidr", Input{Controllers: ctrl, Extra: []Rule{{Destination: "10.0.0.0/33", Protocol: TCP, Ports: Port(1)}}}, "not a valid CIDR"},
		{"bad ip", Input{Controllers: ctrl, Extra: []Rule{{Destination: "10.0.0.256", Protocol: TCP, Ports: Port(1)}}}, "neither a valid IP"},
		{"bad name", Input{Controllers: ctrl, Extra: []Rule{{Destination: "db host", Protocol: TCP, Ports: Port(1)}}}, "not a DNS name"},
		{"empty", Input{Controllers: ctrl, Extra: []Rule{{Protocol: TCP, Ports: Port(1)}}}, "empty destination"},
		{"protocol", Input{Controllers: ctrl, Extra: []Rule{{Destination: "a.example", Protocol: "icmp", Ports: Port(1)}}}, `use "tcp" or "udp"`},
		{"reversed", Input{Controllers: ctrl, Extra: []Rule{{Destination: "a.example", Protocol: TCP, Ports: PortRange{9, 1}}}}, "write it as 1-9"},
		{"port zero", Input{Controllers: ctrl, Services: []ServiceTarget{{Address: "a.example", Ports: []PortRange{{}}}}}, "port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compute(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr bool
	}{
		{"443", Port(443), false},
		{" 8000-8100 ", PortRange{8000, 8100}, false},
		{"0", PortRange{}, true},
		{"65536", PortRange{}, true},
		{"100-90", PortRange{}, true},
		{"a-b", PortRange{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParsePortRange(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestFirewallCIDR(t *testing.T) {
	rules, err := Normalize([]Rule{
		{Destination: "db.example", Protocol: TCP, Ports: Port(5432)},
		{Destination: "10.0.0.5", Protocol: TCP, Ports: Port(5432)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rules[0].FirewallCIDR(); got != "10.0.0.5/32" {
		t.Errorf("address rule renders %q", got)
	}
	if got := rules[1].FirewallCIDR(); got != "0.0.0.0/0" {
		t.Errorf("name rule renders %q", got)
	}
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestResolveNames(t *testing.T) {
	res := fakeResolver{"db.example": {netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("10.0.0.8")}}
	got, err := ResolveNames(context.Background(), res, []Rule{
		{Destination: "db.example", Protocol: TCP, Ports: Port(5432)},
		{Destination: "10.0.0.8/32", Protocol: TCP, Ports: Port(5433)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "tcp 10.0.0.8/32:5432-5433\ntcp 10.0.0.9/32:5432"
	if render(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", render(got), want)
	}
	if _, err := ResolveNames(context.Background(), res, []Rule{{Destination: "gone.example", Protocol: TCP, Ports: Port(1)}}); err == nil || !strings.Contains(err.Error(), "gone.example") {
		t.Fatalf("unresolvable name: err = %v", err)
	}
}
