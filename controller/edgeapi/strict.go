package edgeapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/ztna/ztna/internal/api"
)

// strictFields refuses what encoding/json lets through and the API does not: a field name
// that matches a field only case-insensitively ({"Name": ..} sets name), a key twice in one
// object (the last one would win), and a null body (it would decode as no change at all).
// data already decoded into a value of type t, so it is valid JSON and every key names a field
// case-insensitively; this walks its tokens once beside t's JSON field names. (encoding/json/v2
// is case-sensitive and refuses duplicates, but Go 1.26 has it only behind GOEXPERIMENT.)
func strictFields(data []byte, t reflect.Type) *api.Problem {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return malformed("the body is null; send a JSON object", []api.FieldError{{Field: "(body)", Detail: "must be an object, not null"}})
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fe, err := scanValue(dec, t, "")
	if err != nil { // cannot happen: the body decoded
		return malformed(err.Error(), nil)
	}
	if fe != nil {
		return malformed("the body has a field this API does not accept as sent", []api.FieldError{*fe})
	}
	return nil
}

// scanValue reads one JSON value from dec, checking the keys of its objects against t (nil:
// any keys, each once) and naming the first offence with its path (a.b, a[0]).
func scanValue(dec *json.Decoder, t reflect.Type, path string) (*api.FieldError, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil // decodes itself (json.RawMessage, time.Time): only duplicates are checked
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := k.(string)
			if seen[key] {
				return &api.FieldError{Field: join(path, key), Detail: "appears more than once in one object; send each field once"}, nil
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case fields != nil:
				var exact bool
				if ft, exact = fields[key]; !exact {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return &api.FieldError{Field: join(path, key), Detail: fmt.Sprintf("unknown field: field names are case-sensitive, this one is %q", name)}, nil
						}
					}
				}
			case t != nil && t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if fe, err := scanValue(dec, ft, join(path, key)); fe != nil || err != nil {
				return fe, err
			}
		}
		_, err := dec.Token() // '}'
		return nil, err
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if fe, err := scanValue(dec, et, fmt.Sprintf("%s[%d]", path, i)); fe != nil || err != nil {
				return fe, err
			}
		}
		_, err := dec.Token() // ']'
		return nil, err
	}
	return nil, nil
}

// join names key inside the object at path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	fieldCache          sync.Map // reflect.Type → map[string]reflect.Type
)

// jsonFields returns the JSON names of a struct's fields, as encoding/json spells them
// (tag name, else the Go name; fields of embedded structs promoted), with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("json") == "" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldCache.Store(t, fields)
	return fields
}
