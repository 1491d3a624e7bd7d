package edgeapi_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the route table")

// TestOpenAPIDocument keeps the committed openapi.json equal to what the route table and the
// api types generate, and checks the server serves it.
func TestOpenAPIDocument(t *testing.T) {
	e := start(t)
	want, err := e.c.Edge.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, want) {
		t.Fatal("controller/edgeapi/openapi.json is stale: run `go generate ./controller/edgeapi` and commit it")
	}
	if *update {
		return // the served copy is embedded at build time: it updates on the next run
	}
	served, err := e.client.OpenAPIDocument(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, committed) {
		t.Fatal("served document differs from the committed one")
	}
}
