package main

import (
	"reflect"
	"testing"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/preflight"
)

// TestDialled: preflight checks what the router dials — learned control endpoints then the
// enrolled ones they lack, learned hubs instead of the enrolled ones.
func TestDialled(t *testing.T) {
	cfg := api.EnrolledConfig{Control: []string{"a:6262", "b:6262"}, Fabric: []string{"a:80"}}
	src := func(plane, addr, source string) preflight.Endpoint {
		return preflight.Endpoint{Plane: plane, Addr: addr, Source: source}
	}
	const c, f, l, e = preflight.PlaneControl, preflight.PlaneFabric, preflight.SourceLearned, preflight.SourceEnrolled
	tests := []struct {
		name    string
		learned learned
		want    []preflight.Endpoint
	}{
		{"nothing learned", learned{}, []preflight.Endpoint{src(c, "a:6262", e), src(c, "b:6262", e), src(f, "a:80", e)}},
		{"both learned", learned{control: []string{"b:6262", "c:6262"}, fabric: []string{"h:7443", "a:80"}},
			[]preflight.Endpoint{src(c, "b:6262", l), src(c, "c:6262", l), src(c, "a:6262", e), src(f, "h:7443", l), src(f, "a:80", l)}},
		{"hubs learned only", learned{fabric: []string{"h:7443"}},
			[]preflight.Endpoint{src(c, "a:6262", e), src(c, "b:6262", e), src(f, "h:7443", l)}},
	}
	for _, tt := range tests {
		if got := tt.learned.dialled(cfg); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: dialled = %v, want %v", tt.name, got, tt.want)
		}
		if len(cfg.Control) != 2 {
			t.Fatalf("%s: dialled changed the enrolled config: %v", tt.name, cfg.Control)
		}
	}
}
