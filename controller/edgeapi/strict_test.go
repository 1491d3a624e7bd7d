package edgeapi_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
)

// TestStrictBodies sends every route that takes a body (as the served OpenAPI document, made
// from the route table, lists them) a field name in another case, a duplicate key and a null
// body: each is refused 400 malformed-json with a problem naming the field. encoding/json
// alone accepts all three (case-insensitive names, last duplicate wins, null as no change).
func TestStrictBodies(t *testing.T) {
	e := start(t)
	pool := x509.NewCertPool()
	pool.AddCert(e.c.CA.Cert)
	// The renewal route reads its body only from a current identity certificate.
	idCert := certFor(t, e.c.CA, api.KindIdentity, "strict-test", time.Hour)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{*idCert}}}}
	defer hc.CloseIdleConnections()

	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type string `json:"type"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	resp, err := hc.Get(e.url + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	sample := map[string]string{"string": `"x"`, "integer": `1`, "boolean": `false`, "array": `[]`, "object": `{}`}

	routes := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.RequestBody == nil {
				continue
			}
			routes++
			ref := op.RequestBody.Content["application/json"].Schema.Ref
			schema := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
			var names []string
			for n := range schema.Properties {
				names = append(names, n)
			}
			if len(names) == 0 {
				t.Fatalf("%s %s: body schema %q has no properties", method, path, ref)
			}
			sort.Strings(names)
			field := names[0]
			value, ok := sample[schema.Properties[field].Type]
			if !ok {
				t.Fatalf("%s %s: no sample for %s of type %q", method, path, field, schema.Properties[field].Type)
			}
			url := e.url + strings.ReplaceAll(path, "{id}", "00000000000000000000000000")
			for _, tc := range []struct{ name, body, field, detail string }{
				{"case variant", `{"` + strings.ToUpper(field) + `": ` + value + `}`, strings.ToUpper(field), "case-sensitive"},
				{"duplicate key", `{"` + field + `": ` + value + `, "` + field + `": ` + value + `}`, field, "more than once"},
				{"null body", `null`, "(body)", "not null"},
			} {
				t.Run(method+" "+path+" "+tc.name, func(t *testing.T) {
					req, _ := http.NewRequest(strings.ToUpper(method), url, strings.NewReader(tc.body))
					req.Header.Set("Authorization", "Bearer "+testToken)
					req.Header.Set("Content-Type", "application/json")
					resp, err := hc.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					raw, _ := io.ReadAll(resp.Body)
					var p api.Problem
					if err := json.Unmarshal(raw, &p); err != nil || resp.StatusCode != http.StatusBadRequest || p.Type != api.ProblemMalformed ||
						resp.Header.Get("Content-Type") != "application/problem+json" {
						t.Fatalf("%s → %d %s %s, want 400 %s", tc.body, resp.StatusCode, resp.Header.Get("Content-Type"), raw, api.ProblemMalformed)
					}
					if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Detail, tc.detail) {
						t.Fatalf("%s → errors %+v, want field %q (%s)", tc.body, p.Errors, tc.field, tc.detail)
					}
				})
			}
		}
	}
	if routes < 12 {
		t.Fatalf("%d routes with a body in the OpenAPI document, want every one (12)", routes)
	}
}
