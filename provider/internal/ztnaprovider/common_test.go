package ztnaprovider

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

func TestFormatTTL(t *testing.T) {
	for _, tc := range []struct {
		seconds int
		want    string
	}{
		{30, "30s"}, {90, "1m30s"}, {1800, "30m"}, {3600, "1h"}, {3660, "1h1m"}, {5400, "1h30m"},
		{3601, "1h0m1s"}, {86400, "24h"}, {api.MaxKeyTTLSeconds, "720h"},
	} {
		got := formatTTL(tc.seconds)
		if got != tc.want {
			t.Errorf("formatTTL(%d) = %q, want %q", tc.seconds, got, tc.want)
		}
		// What formatTTL writes, the ttl validator must accept and read back the same.
		if err := checkTTL(got); err != nil {
			t.Errorf("checkTTL(%q) = %v", got, err)
		}
	}
}

func TestCheckTTL(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr string
	}{
		{"30m", ""}, {"24h", ""}, {"720h", ""}, {"1s", ""},
		{"1.5s", "fraction of a second"},
		{"0s", "must be positive"},
		{"-1h", "must be positive"},
		{"721h", "out of range"},
		{"forever", "not a duration"},
		{"10", "not a duration"},
	} {
		err := checkTTL(tc.in)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkTTL(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestRedundancyProblem(t *testing.T) {
	r := func(name, domain string, roles ...string) api.Router {
		return api.Router{Name: name, FailureDomain: domain, Roles: roles}
	}
	for _, tc := range []struct {
		name    string
		routers []api.Router
		want    string // "" = redundant
	}{
		{"two domains", []api.Router{r("a", "aws/eu-west-1/a", "x"), r("b", "gcp/europe-west1/b", "x")}, ""},
		{"one of two roles each", []api.Router{r("a", "aws/1", "x"), r("b", "aws/2", "y")}, ""},
		{"no routers", nil, "no reported failure domain: no router has one of the roles x, y"},
		{"other roles only", []api.Router{r("a", "aws/1", "z"), r("b", "aws/2", "z")}, "no router has one of the roles"},
		{"same domain", []api.Router{r("a", "aws/1", "x"), r("b", "aws/1", "x")}, "only failure domain aws/1: routers a, b have"},
		{"not reported yet", []api.Router{r("a", "", "x"), r("b", "", "x")}, "no reported failure domain: routers a, b have"},
		{"one reported", []api.Router{r("a", "aws/1", "x"), r("b", "", "y")}, "only failure domain aws/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redundancyProblem("db", []string{"x", "y"}, tc.routers)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("redundancyProblem = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServiceTargets(t *testing.T) {
	services := []api.Service{
		{Name: "db", Address: "db.example.com", Port: 5432, Protocol: "tcp", RouterRoles: []string{"a"}},
		{Name: "dns", Address: "10.0.0.53", Port: 53, PortRanges: []string{"5353-5354"}, Protocol: "udp", RouterRoles: []string{"b", "c"}},
		{Name: "other", Address: "x.example.com", Port: 22, Protocol: "tcp", RouterRoles: []string{"z"}},
	}
	got, err := serviceTargets(services, []string{"a", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Address != "db.example.com" || got[1].Address != "10.0.0.53" {
		t.Fatalf("targets = %+v", got)
	}
	if want := []egress.PortRange{egress.Port(53), {From: 5353, To: 5354}}; len(got[1].Ports) != 2 || got[1].Ports[0] != want[0] || got[1].Ports[1] != want[1] {
		t.Errorf("ports = %v, want %v", got[1].Ports, want)
	}
	if got[1].Protocols[0] != egress.UDP {
		t.Errorf("protocol = %v", got[1].Protocols)
	}
}

// TestAddAPIError: the controller's field errors become attribute errors on the attribute a
// user writes, and a duplicate name points at name.
func TestAddAPIError(t *testing.T) {
	validation := &apiclient.Error{StatusCode: http.StatusBadRequest, Problem: api.Problem{
		Type: api.ProblemValidation, Title: "Invalid request",
		Errors: []api.FieldError{{Field: "ttl_seconds", Detail: "out of range"}, {Field: "roles[1]", Detail: "bad role"}},
	}}
	conflict := &apiclient.Error{StatusCode: http.StatusConflict, Problem: api.Problem{Title: "Conflict", Detail: `a router named "edge" exists`}}
	for _, tc := range []struct {
		name  string
		err   error
		paths []path.Path // an empty path for a diagnostic not tied to an attribute
		texts []string
	}{
		{"validation", validation, []path.Path{path.Root("ttl"), path.Root("roles")}, []string{"ttl: out of range", "roles[1]: bad role"}},
		{"conflict", conflict, []path.Path{path.Root("name")}, []string{`a router named "edge" exists`, "import"}},
		{"unreachable", errors.New("dial tcp: connection refused"), []path.Path{{}}, []string{"could not be reached (address / ZTNA_ADDR)"}},
		{"unauthorized", &apiclient.Error{StatusCode: http.StatusUnauthorized, Problem: api.Problem{Title: "Unauthorized"}}, []path.Path{{}}, []string{"rejected the token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var diags diag.Diagnostics
			addAPIError(&diags, "create thing", tc.err, map[string]string{"ttl_seconds": "ttl"})
			if len(diags) != len(tc.paths) {
				t.Fatalf("got %d diagnostics, want %d: %v", len(diags), len(tc.paths), diags)
			}
			for i, d := range diags {
				wp, isAttr := d.(diag.DiagnosticWithPath)
				switch {
				case len(tc.paths[i].Steps()) == 0 && isAttr:
					t.Errorf("diagnostic %d has path %s, want none", i, wp.Path())
				case len(tc.paths[i].Steps()) > 0 && (!isAttr || !wp.Path().Equal(tc.paths[i])):
					t.Errorf("diagnostic %d is not on %s: %v", i, tc.paths[i], d)
				}
			}
			var all strings.Builder
			for _, d := range diags {
				all.WriteString(d.Detail())
			}
			for _, want := range tc.texts {
				if !strings.Contains(all.String(), want) {
					t.Errorf("diagnostics lack %q: %s", want, all.String())
				}
			}
		})
	}
}
