package assignments_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ztna/ztna/controller/assignments"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

func names(svcs []control.Service) []string {
	out := []string{}
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return out
}

// TestIndex: assignments by role from the index, a service of two roles listed once, and
// Apply naming the roles before and after a change.
func TestIndex(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ix assignments.Index
	if _, ok := ix.ForRoles([]string{"a"}); ok {
		t.Fatal("ready before Load")
	}
	both := &api.Service{Name: "both", Address: "b.test", Port: 1, RouterRoles: []string{"a", "b"}}
	onlyA := &api.Service{Name: "only-a", Address: "a.test", Port: 2, PortRanges: []string{"7000-7002"}, RouterRoles: []string{"a"}}
	for _, s := range []*api.Service{both, onlyA} {
		if err := st.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Load(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, ok := ix.ForRoles([]string{"b", "a"})
	if !ok || !slices.Equal(names(got), []string{"both", "only-a"}) || !got[1].HasPort(7001) {
		t.Fatalf("roles a, b: %v", got)
	}
	if got, _ := ix.ForRoles([]string{"c"}); len(got) != 0 {
		t.Fatalf("role c: %v", names(got))
	}

	if _, err := st.UpdateService(ctx, onlyA.ID, func(s *api.Service) error { s.RouterRoles = []string{"c"}; return nil }); err != nil {
		t.Fatal(err)
	}
	roles, err := ix.Apply(ctx, st, onlyA.ID)
	if err != nil || !slices.Equal(roles, []string{"a", "c"}) {
		t.Fatalf("moved from a to c: roles %v, %v", roles, err)
	}
	if got, _ := ix.ForRoles([]string{"a"}); !slices.Equal(names(got), []string{"both"}) {
		t.Fatalf("role a after the move: %v", names(got))
	}
	if err := st.DeleteService(ctx, both.ID); err != nil {
		t.Fatal(err)
	}
	if roles, err := ix.Apply(ctx, st, both.ID); err != nil || !slices.Equal(roles, []string{"a", "b"}) {
		t.Fatalf("deleted: roles %v, %v", roles, err)
	}
	if got, _ := ix.ForRoles([]string{"a", "b"}); len(got) != 0 {
		t.Fatalf("roles a, b after the delete: %v", names(got))
	}
}
