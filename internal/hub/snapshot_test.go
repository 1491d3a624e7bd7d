package hub

import (
	"testing"

	"github.com/ztna/ztna/internal/control"
)

func svc(name, addr string, port int, ranges []control.PortRange, roles ...string) Service {
	return Service{Service: control.Service{ID: name, Name: name, Address: addr, Port: port, PortRanges: ranges, Protocol: "tcp"}, RouterRoles: roles}
}

func TestAuthorize(t *testing.T) {
	ix := compile(Snapshot{
		Services: []Service{
			svc("db", "Prod-DB.customerdomain.me.", 5432, nil, "east"),
			svc("web", "10.0.0.7", 80, []control.PortRange{{From: 8000, To: 8100}}, "west"),
			svc("ssh", "10.0.0.7", 22, nil, "west"),
		},
		Routers: []Router{
			{ID: "r-east", Roles: []string{"east"}, Cost: 5},
			{ID: "r-both", Roles: []string{"east", "west"}},
			{ID: "r-none", Roles: []string{"north"}},
		},
		Identities: []Identity{
			{ID: "app", Roles: []string{"apps"}},
			{ID: "ops", Roles: []string{"ops", "apps"}},
			{ID: "nobody"},
		},
		Policies: []Policy{
			{IdentityRoles: []string{"apps"}, ServiceNames: []string{"db", "web", "missing"}},
			{IdentityRoles: []string{"ops"}, ServiceNames: []string{"ssh"}},
		},
	})
	tests := []struct {
		identity, target string
		want             string // service name, "" for refused
	}{
		{"app", "prod-db.customerdomain.me:5432", "db"},
		{"app", "PROD-DB.customerdomain.me.:5432", "db"}, // case and trailing dot do not matter
		{"app", "prod-db.customerdomain.me:5433", ""},    // port not exposed
		{"app", "10.0.0.7:80", "web"},
		{"app", "10.0.0.7:8050", "web"}, // inside the range
		{"app", "10.0.0.7:8101", ""},
		{"app", "10.0.0.7:22", ""}, // ssh needs the ops role
		{"ops", "10.0.0.7:22", "ssh"},
		{"nobody", "prod-db.customerdomain.me:5432", ""},
		{"stranger", "prod-db.customerdomain.me:5432", ""}, // identity unknown to the snapshot
		{"app", "nonexistent.example:1", ""},
		{"app", "no-port", ""},
		{"app", "10.0.0.7:http", ""},
	}
	for _, tt := range tests {
		got, ok := ix.authorize(tt.identity, tt.target)
		name := ""
		if ok {
			name = got.Name
		}
		if name != tt.want {
			t.Errorf("authorize(%s, %s) = %q, want %q", tt.identity, tt.target, name, tt.want)
		}
	}

	db, _ := ix.authorize("app", "prod-db.customerdomain.me:5432")
	if len(db.routers) != 2 || db.routers[0].id != "r-east" || db.routers[0].cost != 5 || db.routers[1].id != "r-both" {
		t.Errorf("db hosted by %+v, want r-east (cost 5) and r-both", db.routers)
	}

	vis := ix.visible("app")
	if len(vis) != 2 || vis[0].Name != "db" || vis[1].Name != "web" || vis[1].PortRanges[0].To != 8100 {
		t.Errorf("app sees %+v", vis)
	}
	if vis := ix.visible("nobody"); len(vis) != 0 {
		t.Errorf("nobody sees %+v", vis)
	}
}
