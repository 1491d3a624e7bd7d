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
	} {
		if got := Normalize(tt.in, tt.port).String(); got != tt.want {
			t.Errorf("Normalize(%q, %d) = %q, want %q", tt.in, tt.port, got, tt.want)
		}
	}
}
