package edgeapi

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/api"
)

// openAPIDocument is the committed document (openapi.json). TestOpenAPIDocument fails when
// it differs from what OpenAPI generates; `go generate` rewrites it.
//
//go:generate go test -run TestOpenAPIDocument -update .
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDocument)
}

type object = map[string]any

// OpenAPI generates the OpenAPI 3.1 document of the edge API from the route table and the
// wire types of package api.
func (s *Server) OpenAPI() ([]byte, error) {
	schemas := object{}
	paths := object{}
	for _, rt := range s.routes() {
		path := strings.TrimSuffix(rt.pattern, "/")
		item, _ := paths[path].(object)
		if item == nil {
			item = object{}
			paths[path] = item
		}
		op := object{
			"operationId": operationID(rt),
			"summary":     rt.summary,
			"tags":        []string{rt.tag},
		}
		var params []object
		if strings.Contains(path, "{id}") {
			params = append(params, object{"name": "id", "in": "path", "required": true, "schema": object{"type": "string"}})
		}
		if rt.list {
			params = append(params,
				object{"name": paramLimit, "in": "query", "description": "page size (over the maximum: 400)",
					"schema": object{"type": "integer", "minimum": 1, "maximum": api.MaxListLimit, "default": api.DefaultListLimit}},
				object{"name": paramCursor, "in": "query", "description": "next_cursor of the previous page, as is", "schema": object{"type": "string"}})
			for _, f := range rt.query {
				params = append(params, object{"name": f, "in": "query", "description": filterHelp[f], "schema": object{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.in != nil {
			op["requestBody"] = object{"required": true, "content": object{"application/json": object{"schema": schemaRef(schemas, reflect.TypeOf(rt.in), true)}}}
		}
		ok := object{"description": http.StatusText(rt.status)}
		switch {
		case rt.out != nil:
			ok["content"] = object{"application/json": object{"schema": schemaRef(schemas, reflect.TypeOf(rt.out), false)}}
		case rt.pattern == "/v1/openapi.json":
			ok["content"] = object{"application/json": object{"schema": object{"type": "object"}}}
		}
		problem := object{"description": "RFC 9457 problem; errors[] names the bad fields",
			"content": object{api.ProblemContentType: object{"schema": schemaRef(schemas, reflect.TypeOf(api.Problem{}), false)}}}
		op["responses"] = object{strconv.Itoa(rt.status): ok, "default": problem}
		switch {
		case rt.auth:
			op["security"] = []object{{"bearerAuth": []string{}}}
		case rt.mtls:
			op["security"] = []object{{"mutualTLS": []string{}}}
		default:
			op["security"] = []object{}
		}
		item[strings.ToLower(rt.method)] = op
	}
	doc := object{
		"openapi": "3.1.0",
		"info": object{
			"title":       "ztna controller edge API",
			"version":     "1",
			"description": "Management API (bearer token), enrolment (registration key) and identity certificate renewal (mutual TLS) of the ztna network controller. Unknown request fields are rejected; errors are application/problem+json.",
		},
		"paths": paths,
		"components": object{
			"schemas": schemas,
			"securitySchemes": object{
				"bearerAuth": object{"type": "http", "scheme": "bearer"},
				"mutualTLS":  object{"type": "mutualTLS", "description": "the client certificate of an enrolled identity, issued by the network CA"},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

var filterHelp = map[string]string{
	filterName:     "only the object with this exact name",
	filterRole:     "only objects holding this role (routers' and identities' roles, services' router_roles, policies' identity_roles)",
	filterRouterID: "only the keys of this router",
}

func operationID(rt route) string {
	verb := map[string]string{http.MethodPost: "create", http.MethodGet: "get", http.MethodPatch: "update", http.MethodDelete: "delete"}[rt.method]
	name := strings.TrimPrefix(rt.pattern, "/v1/")
	switch {
	case strings.HasSuffix(name, "/revoke"):
		verb, name = "revoke", strings.TrimSuffix(name, "/{id}/revoke")
	case rt.list:
		verb = "list"
	case name == "enroll", name == "renew":
		verb = ""
	}
	name = strings.TrimSuffix(name, "/{id}")
	return strings.Trim(verb+"-"+strings.ReplaceAll(name, ".", "-"), "-")
}

var timeType = reflect.TypeOf(time.Time{})
var rawType = reflect.TypeOf(json.RawMessage{})

// schemaRef returns a schema for t, registering named structs under components/schemas.
func schemaRef(schemas object, t reflect.Type, request bool) object {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return object{"type": "string", "format": "date-time"}
	case t == rawType:
		return object{"description": "arbitrary JSON"}
	}
	switch t.Kind() {
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return object{"type": "integer"}
	case reflect.Slice:
		return object{"type": "array", "items": schemaRef(schemas, t.Elem(), request)}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := schemas[name]; !done {
			schemas[name] = object{} // placeholder against recursion
			props := object{}
			var required []string
			for i := range t.NumField() {
				f := t.Field(i)
				tag := f.Tag.Get("json")
				jname, opts, _ := strings.Cut(tag, ",")
				if jname == "" || jname == "-" {
					continue
				}
				props[jname] = schemaRef(schemas, f.Type, request)
				if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
					required = append(required, jname)
				}
			}
			s := object{"type": "object", "properties": props, "additionalProperties": false}
			if len(required) > 0 {
				s["required"] = required
			}
			schemas[name] = s
		}
		return object{"$ref": "#/components/schemas/" + name}
	}
	return object{}
}

// schemaName names a Go type in the document: api.List[api.Router] becomes RouterList.
func schemaName(t reflect.Type) string {
	name := t.Name()
	if base, arg, ok := strings.Cut(name, "["); ok {
		arg = strings.TrimSuffix(arg, "]")
		arg = arg[strings.LastIndex(arg, ".")+1:]
		return arg + base
	}
	return name
}
