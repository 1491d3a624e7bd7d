package main

import (
	"reflect"
	"testing"

	"github.com/ztna/ztna/router/preflight"
)

func ep(plane, addr string) preflight.Endpoint { return preflight.Endpoint{Plane: plane, Addr: addr} }

func TestReplacePlaneKeepsOrder(t *testing.T) {
	eps := []preflight.Endpoint{ep("edge", "a:443"), ep("edge", "b:443"), ep("control", "a:6262"), ep("fabric", "a:80")}
	tests := []struct {
		plane string
		addrs []string
		want  []preflight.Endpoint
	}{
		{"edge", []string{"p:8443"}, []preflight.Endpoint{ep("edge", "p:8443"), ep("control", "a:6262"), ep("fabric", "a:80")}},
		{"fabric", []string{"x:1", "y:1"}, []preflight.Endpoint{ep("edge", "a:443"), ep("edge", "b:443"), ep("control", "a:6262"), ep("fabric", "x:1"), ep("fabric", "y:1")}},
	}
	for _, tt := range tests {
		if got := replacePlane(eps, tt.plane, tt.addrs); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("replacePlane(%s) = %v, want %v", tt.plane, got, tt.want)
		}
	}
	if got := replacePlane(eps[:1], "control", []string{"c:1"}); !reflect.DeepEqual(got, []preflight.Endpoint{ep("edge", "a:443"), ep("control", "c:1")}) {
		t.Errorf("adding a plane: %v", got)
	}
}

func TestParseService(t *testing.T) {
	for in, ok := range map[string]bool{"db.corp.example:5432": true, "10.0.0.5:22": true, "db.corp.example": false, "db:0": false, ":80": false} {
		if _, err := parseService(in); (err == nil) != ok {
			t.Errorf("parseService(%q) err = %v", in, err)
		}
	}
}
