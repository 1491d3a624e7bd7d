package target

import "testing"

func TestNormalize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		port int
		want string
	}{
		{"Prod-DB.CustomerDomain.me.", 5432, "prod-db.customerdomain.me:5432"},
		{"prod-db.customerdomain.me", 5432, "prod-db.customerdomain.me:5432"},
		{"10.20.0.5", 22, "10.20.0.5:22"},
		// Every spelling of one IPv6 address is the same target, printed in brackets.
		{"fd77:7::2", 80, "[fd77:7::2]:80"},
		{"FD77:7:0::2", 80, "[fd77:7::2]:80"},
		{"fd77:0007:0000:0000:0000:0000:0000:0002", 80, "[fd77:7::2]:80"},
		{"[fd77:7::2]", 80, "[fd77:7::2]:80"},
		{"::ffff:10.20.0.5", 22, "10.20.0.5:22"},
		{"fd77:7::3", 80, "[fd77:7::3]:80"},
	} {
		if got := Normalize(tt.in, tt.port).String(); got != tt.want {
			t.Errorf("Normalize(%q, %d) = %q, want %q", tt.in, tt.port, got, tt.want)
		}
	}
}
