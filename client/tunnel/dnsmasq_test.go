package tunnel

import (
	"net/netip"
	"slices"
	"testing"
)

func TestDnsmasqServers(t *testing.T) {
	a := netip.MustParseAddr("127.77.0.1")
	for _, tc := range []struct {
		name    string
		table   map[string]netip.Addr
		dns     string
		want    string
		skipped []string
	}{
		{name: "none", table: nil, dns: "127.0.0.1:5353", want: ""},
		{name: "sorted, without the final dot", dns: "127.0.0.1:5353",
			table: map[string]netip.Addr{"web.corp.example.": a, "db.corp.example.": a},
			want:  "server=/db.corp.example/127.0.0.1#5353\nserver=/web.corp.example/127.0.0.1#5353\n"},
		{name: "every IPv4 address: loopback", dns: "0.0.0.0:53", table: map[string]netip.Addr{"db.x.": a},
			want: "server=/db.x/127.0.0.1#53\n"},
		{name: "every IPv6 address: loopback", dns: "[::]:53", table: map[string]netip.Addr{"db.x.": a},
			want: "server=/db.x/::1#53\n"},
		{name: "characters that would change the line are skipped", dns: "127.0.0.1:53",
			table:   map[string]netip.Addr{"a/b.x.": a, "c#d.x.": a, "e\\010f.x.": a, "ok.x.": a},
			want:    "server=/ok.x/127.0.0.1#53\n",
			skipped: []string{"a/b.x", "c#d.x", "e\\010f.x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, skipped := dnsmasqServers(tc.table, netip.MustParseAddrPort(tc.dns))
			const header = "# Written by ztna tunnel: the service names it answers. Emptied when it stops.\n"
			if string(b) != header+tc.want {
				t.Errorf("servers-file:\n%s\nwant:\n%s%s", b, header, tc.want)
			}
			slices.Sort(skipped)
			if !slices.Equal(skipped, tc.skipped) {
				t.Errorf("skipped %q, want %q", skipped, tc.skipped)
			}
		})
	}
}
