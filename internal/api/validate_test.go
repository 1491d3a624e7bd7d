package api

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAddress(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"prod-db.customerdomain.me", true},
		{"prod-db.customerdomain.me.", true},
		{"localhost", true},
		{"10.0.0.1", true},
		{"::1", true},
		{"fe80::1%eth0", false},
		{"", false},
		{"-bad.example.com", false},
		{"bad-.example.com", false},
		{"a..b", false},
		{"under_score.example.com", false},
		{"exa mple.com", false},
		{"1.2.3.400", false},
		{strings.Repeat("a", 64) + ".com", false},
		{strings.Repeat("abcdefghi.", 26) + "com", false},
		{"http://example.com", false},
	} {
		err := ValidateAddress(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateAddress(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestValidatePortAndRanges(t *testing.T) {
	for _, tc := range []struct {
		port int
		ok   bool
	}{{0, false}, {1, true}, {5432, true}, {65535, true}, {65536, false}, {70000, false}, {-1, false}} {
		if err := ValidatePort(tc.port); (err == nil) != tc.ok {
			t.Errorf("ValidatePort(%d) = %v", tc.port, err)
		}
	}
	for _, tc := range []struct {
		in       string
		from, to int
		ok       bool
	}{
		{"8000-8100", 8000, 8100, true},
		{"53", 53, 53, true},
		{"9-8", 0, 0, false},
		{"0-10", 0, 0, false},
		{"10-70000", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
	} {
		from, to, err := ParsePortRange(tc.in)
		if (err == nil) != tc.ok || from != tc.from || to != tc.to {
			t.Errorf("ParsePortRange(%q) = %d, %d, %v", tc.in, from, to, err)
		}
	}
}

func TestValidateNamesAndRoles(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"edge-1", true}, {"Prod_DB.v2", true}, {"", false}, {"-x", false}, {"a b", false}, {strings.Repeat("n", MaxNameLen+1), false}} {
		if err := ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		role string
		ok   bool
	}{{"customer-a", true}, {"Upper", false}, {"", false}, {"a/b", false}} {
		if err := ValidateRole(tc.role); (err == nil) != tc.ok {
			t.Errorf("ValidateRole(%q) = %v", tc.role, err)
		}
	}
}

func TestRequestValidationNamesEveryBadField(t *testing.T) {
	req := ServiceCreate{Name: "db", Address: "bad_host", Port: 70000, PortRanges: []string{"1-2", "5-3"}, Protocol: "icmp", RouterRoles: []string{"ok", "ok"}}
	err := req.Validate()
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Validate() = %v, want FieldErrors", err)
	}
	got := map[string]bool{}
	for _, e := range fe {
		got[e.Field] = true
	}
	for _, f := range []string{"address", "port", "port_ranges[1]", "protocol", "router_roles[1]"} {
		if !got[f] {
			t.Errorf("no error for field %s in %v", f, fe)
		}
	}
	if len(fe) != 5 {
		t.Errorf("got %d errors, want 5: %v", len(fe), fe)
	}
	ok := ServiceCreate{Name: "db", Address: "prod-db.customerdomain.me", Port: 5432, RouterRoles: []string{"customer-a"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid service rejected: %v", err)
	}
}
