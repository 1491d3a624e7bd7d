package policy

import (
	"testing"

	"github.com/ztna/ztna/internal/api"
)

func TestMayDial(t *testing.T) {
	policies := []api.ServicePolicy{
		{Name: "runtime-db", IdentityRoles: []string{"integrations"}, ServiceNames: []string{"db"}},
		{Name: "ops-all", IdentityRoles: []string{"ops"}, ServiceNames: []string{"db", "api"}},
	}
	services := []api.Service{{Name: "db"}, {Name: "api"}, {Name: "secret"}}
	for _, tc := range []struct {
		roles []string
		want  []string
	}{
		{[]string{"integrations"}, []string{"db"}},
		{[]string{"ops"}, []string{"db", "api"}},
		{[]string{"integrations", "ops"}, []string{"db", "api"}},
		{[]string{"guests"}, nil},
		{nil, nil},
	} {
		got := Dialable(&api.Identity{Roles: tc.roles}, services, policies)
		if len(got) != len(tc.want) {
			t.Fatalf("roles %v: %d services, want %v", tc.roles, len(got), tc.want)
		}
		for i := range got {
			if got[i].Name != tc.want[i] {
				t.Errorf("roles %v: got %s, want %s", tc.roles, got[i].Name, tc.want[i])
			}
		}
	}
}

func TestHosts(t *testing.T) {
	s := &api.Service{RouterRoles: []string{"customer-a"}}
	if !Hosts(&api.Router{Roles: []string{"x", "customer-a"}}, s) || Hosts(&api.Router{Roles: []string{"customer-b"}}, s) || Hosts(&api.Router{}, s) {
		t.Fatal("role matching is wrong")
	}
}
