// Package spectest decodes HCL the way Packer core does, through a component's generated HCL2
// spec, so the unit tests of every component cover its *.hcl2spec.go file and notice when that
// file is stale.
package spectest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Decode parses src (the body of a source/provisioner/post-processor/data block) with spec.
func Decode(t testing.TB, spec hcldec.ObjectSpec, src string) cty.Value {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "test.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diags.Error())
	}
	v, diags := hcldec.Decode(f.Body, spec, nil)
	if diags.HasErrors() {
		t.Fatalf("decode with the HCL2 spec: %s", diags.Error())
	}
	return v
}

// AssertCoversConfig fails when the spec and the mapstructure tags of cfg (a pointer to a config
// struct) disagree: a field missing from the spec cannot be set from HCL, and a spec entry
// without a field means the generated file is stale. Run `make generate` to fix either.
func AssertCoversConfig(t testing.TB, spec hcldec.ObjectSpec, cfg any) {
	t.Helper()
	want := mapstructureKeys(reflect.TypeOf(cfg).Elem())
	var got []string
	for k := range spec {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("HCL2 spec keys differ from the config struct (run make generate):\n spec:   %v\n struct: %v", got, want)
	}
}

func mapstructureKeys(typ reflect.Type) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, ok := f.Tag.Lookup("mapstructure")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "squash" {
			keys = append(keys, mapstructureKeys(f.Type)...)
			continue
		}
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}
