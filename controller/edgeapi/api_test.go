package edgeapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/pki"
)

// raw sends a request without the typed client, for inputs the client cannot produce.
func (e *env) raw(t *testing.T, method, path, token, body string) (int, api.Problem) {
	t.Helper()
	tlsConf, err := pki.PinnedClientConfig(e.c.CA.Fingerprint(), api.KindController)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}}
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p api.Problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != api.ProblemContentType {
			t.Errorf("%s %s: error Content-Type %q, want %s", method, path, ct, api.ProblemContentType)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("%s %s: error body is not a problem: %s", method, path, b)
		}
	}
	return resp.StatusCode, p
}

func TestAuthentication(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/v1/routers", "/v1/registration-keys", "/v1/services", "/v1/identities", "/v1/service-policies", "/v1/routers/x"} {
		for _, tok := range []string{"", "wrong-token-wrong-token"} {
			if st, p := e.raw(t, http.MethodGet, path, tok, ""); st != http.StatusUnauthorized || p.Type != api.ProblemUnauthorized {
				t.Errorf("GET %s with token %q: %d %+v, want 401", path, tok, st, p)
			}
		}
	}
	if st, _ := e.raw(t, http.MethodGet, "/v1/routers", testToken, ""); st != http.StatusOK {
		t.Errorf("right token: %d", st)
	}
	// Enrolment and the OpenAPI document need no token.
	if st, _ := e.raw(t, http.MethodGet, "/v1/openapi.json", "", ""); st != http.StatusOK {
		t.Errorf("openapi.json: %d", st)
	}
	if st, p := e.raw(t, http.MethodPost, "/v1/enroll", "", `{"key":"x","csr":"y"}`); st == http.StatusUnauthorized && p.Type == api.ProblemUnauthorized {
		t.Errorf("enroll asked for a bearer token")
	}
}

func TestValidationNamesTheField(t *testing.T) {
	e := start(t)
	okService := `"name":"db","address":"prod-db.customerdomain.me","port":5432,"router_roles":["a"]`
	for _, tc := range []struct {
		name, path, body, field, typ string
	}{
		{"malformed JSON", "/v1/routers", `{"name":`, "", api.ProblemMalformed},
		{"not an object", "/v1/routers", `[1]`, "", api.ProblemMalformed},
		{"empty body", "/v1/routers", ``, "", api.ProblemMalformed},
		{"trailing data", "/v1/routers", `{"name":"a"}{}`, "", api.ProblemMalformed},
		{"unknown field", "/v1/routers", `{"name":"a","colour":"red"}`, "colour", api.ProblemMalformed},
		{"wrong type", "/v1/services", `{` + okService + `,"port":"5432"}`, "port", api.ProblemMalformed},
		{"bad FQDN", "/v1/services", `{"name":"db","address":"bad_host..example","port":5432,"router_roles":["a"]}`, "address", api.ProblemValidation},
		{"port 0", "/v1/services", `{"name":"db","address":"db.example.com","port":0,"router_roles":["a"]}`, "port", api.ProblemValidation},
		{"port 70000", "/v1/services", `{"name":"db","address":"db.example.com","port":70000,"router_roles":["a"]}`, "port", api.ProblemValidation},
		{"bad port range", "/v1/services", `{` + okService + `,"port_ranges":["9-3"]}`, "port_ranges[0]", api.ProblemValidation},
		{"bad protocol", "/v1/services", `{` + okService + `,"protocol":"sctp"}`, "protocol", api.ProblemValidation},
		{"bad role", "/v1/routers", `{"name":"r","roles":["Not Valid"]}`, "roles[0]", api.ProblemValidation},
		{"empty name", "/v1/identities", `{"name":""}`, "name", api.ProblemValidation},
		{"bad service name in policy", "/v1/service-policies", `{"name":"p","identity_roles":["a"],"service_names":["no spaces"]}`, "service_names[0]", api.ProblemValidation},
		{"ttl too long", "/v1/registration-keys", `{"router_id":"x","ttl_seconds":99999999}`, "ttl_seconds", api.ProblemValidation},
		{"missing router", "/v1/registration-keys", `{"router_id":"nope"}`, "router_id", api.ProblemValidation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, p := e.raw(t, http.MethodPost, tc.path, testToken, tc.body)
			if st != http.StatusBadRequest || p.Type != tc.typ {
				t.Fatalf("status %d type %q, want 400 %q (%+v)", st, p.Type, tc.typ, p)
			}
			if tc.field == "" {
				return
			}
			for _, fe := range p.Errors {
				if fe.Field == tc.field && fe.Detail != "" {
					return
				}
			}
			t.Fatalf("no error names field %q: %+v", tc.field, p)
		})
	}
	// Nothing of the refused requests was stored.
	if rs, _ := e.client.ListRouters(context.Background()); len(rs) != 0 {
		t.Fatalf("refused requests left %d routers", len(rs))
	}
}

func TestConflictNotFoundAndCRUD(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	c := e.client

	r, err := c.CreateRouter(ctx, api.RouterCreate{Name: "edge-a", Roles: []string{"customer-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != api.RouterUnenrolled || r.Services == nil || r.Roles[0] != "customer-a" {
		t.Fatalf("created router: %+v", r)
	}
	if _, err := c.CreateRouter(ctx, api.RouterCreate{Name: "edge-a"}); !apiclient.IsConflict(err) {
		t.Fatalf("duplicate router: %v", err)
	}
	svc, err := c.CreateService(ctx, api.ServiceCreate{Name: "db", Address: "prod-db.customerdomain.me", Port: 5432, PortRanges: []string{"6000-6010"}, RouterRoles: []string{"customer-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Protocol != "tcp" || svc.RouterSummary.Total != 1 || svc.RouterSummary.Unenrolled != 1 {
		t.Fatalf("service view: %+v", svc)
	}
	if routes, err := c.ServiceRouters(ctx, svc.ID); err != nil || len(routes) != 1 || routes[0].RouterID != r.ID {
		t.Fatalf("service routers: %+v, %v", routes, err)
	}
	if _, err := c.CreateService(ctx, api.ServiceCreate{Name: "db", Address: "x.example.com", Port: 1}); !apiclient.IsConflict(err) {
		t.Fatalf("duplicate service: %v", err)
	}
	id, err := c.CreateIdentity(ctx, api.IdentityCreate{Name: "runtime", Roles: []string{"integrations"}})
	if err != nil {
		t.Fatal(err)
	}
	if id.EnrollmentToken == "" || id.Enrolled || id.TokenExpiresAt.IsZero() {
		t.Fatalf("identity create: %+v", id)
	}
	got, _ := c.GetIdentity(ctx, id.ID)
	if got.EnrollmentToken != "" {
		t.Fatal("GET returned the enrolment token")
	}
	if _, err := c.CreateIdentity(ctx, api.IdentityCreate{Name: "runtime"}); !apiclient.IsConflict(err) {
		t.Fatalf("duplicate identity: %v", err)
	}
	pol, err := c.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "p", IdentityRoles: []string{"integrations"}, ServiceNames: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "p"}); !apiclient.IsConflict(err) {
		t.Fatalf("duplicate policy: %v", err)
	}
	k, err := c.CreateRegistrationKey(ctx, api.RegistrationKeyCreate{RouterID: r.ID, TTLSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	if k.Key == "" || k.State != api.KeyUnused || k.TTLSeconds != 600 {
		t.Fatalf("key create: %+v", k)
	}
	if got, _ := c.GetRegistrationKey(ctx, k.ID); got.Key != "" {
		t.Fatal("GET returned the key")
	}

	// Updates: absent fields stay, a rename onto a taken name conflicts.
	name := "edge-b"
	cost := 7
	up, err := c.UpdateRouter(ctx, r.ID, api.RouterUpdate{Name: &name, Cost: &cost})
	if err != nil || up.Name != "edge-b" || up.Cost != 7 || up.Roles[0] != "customer-a" {
		t.Fatalf("router update: %+v %v", up, err)
	}
	other, _ := c.CreateRouter(ctx, api.RouterCreate{Name: "edge-c"})
	if _, err := c.UpdateRouter(ctx, other.ID, api.RouterUpdate{Name: &name}); !apiclient.IsConflict(err) {
		t.Fatalf("rename conflict: %v", err)
	}
	port := 70000
	if _, err := c.UpdateService(ctx, svc.ID, api.ServiceUpdate{Port: &port}); !apiclient.IsBadRequest(err) {
		t.Fatalf("update with port 70000: %v", err)
	}
	roles := []string{"other"}
	if s2, err := c.UpdateService(ctx, svc.ID, api.ServiceUpdate{RouterRoles: &roles}); err != nil || s2.RouterSummary.Total != 0 {
		t.Fatalf("service role update: %+v %v", s2, err)
	}
	if _, err := c.UpdateIdentity(ctx, id.ID, api.IdentityUpdate{Roles: &roles}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateServicePolicy(ctx, pol.ID, api.ServicePolicyUpdate{ServiceNames: &[]string{"db", "api"}}); err != nil {
		t.Fatal(err)
	}

	// Unknown ids: 404 on every verb of every collection.
	notFound := map[string]func() error{
		"get router":     func() error { _, err := c.GetRouter(ctx, "nope"); return err },
		"update router":  func() error { _, err := c.UpdateRouter(ctx, "nope", api.RouterUpdate{}); return err },
		"delete router":  func() error { return c.DeleteRouter(ctx, "nope") },
		"get key":        func() error { _, err := c.GetRegistrationKey(ctx, "nope"); return err },
		"revoke key":     func() error { _, err := c.RevokeRegistrationKey(ctx, "nope"); return err },
		"delete key":     func() error { return c.DeleteRegistrationKey(ctx, "nope") },
		"get service":    func() error { _, err := c.GetService(ctx, "nope"); return err },
		"update service": func() error { _, err := c.UpdateService(ctx, "nope", api.ServiceUpdate{}); return err },
		"delete service": func() error { return c.DeleteService(ctx, "nope") },
		"get identity":   func() error { _, err := c.GetIdentity(ctx, "nope"); return err },
		"delete ident.":  func() error { return c.DeleteIdentity(ctx, "nope") },
		"get policy":     func() error { _, err := c.GetServicePolicy(ctx, "nope"); return err },
		"delete policy":  func() error { return c.DeleteServicePolicy(ctx, "nope") },
		"identity token as registration key": func() error {
			keys, _ := e.c.Store.ListKeys(ctx, api.KindIdentity)
			_, err := c.GetRegistrationKey(ctx, keys[0].ID)
			return err
		},
	}
	for name, f := range notFound {
		if err := f(); !apiclient.IsNotFound(err) {
			t.Errorf("%s: %v, want 404", name, err)
		}
	}

	// Deleting a router deletes its keys.
	if err := c.DeleteRouter(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRegistrationKey(ctx, k.ID); !apiclient.IsNotFound(err) {
		t.Fatalf("key of a deleted router: %v", err)
	}
	for _, del := range []func() error{
		func() error { return c.DeleteService(ctx, svc.ID) },
		func() error { return c.DeleteIdentity(ctx, id.ID) },
		func() error { return c.DeleteServicePolicy(ctx, pol.ID) },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	if st, p := e.raw(t, http.MethodPut, "/v1/routers", testToken, "{}"); st != http.StatusMethodNotAllowed || p.Type != api.ProblemMethod {
		t.Fatalf("PUT: %d %+v", st, p)
	}
	if st, _ := e.raw(t, http.MethodGet, "/v2/whatever", testToken, ""); st != http.StatusNotFound {
		t.Fatalf("unknown path: %d", st)
	}
}
