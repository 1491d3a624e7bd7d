package edgeapi

import (
	"context"
	"net/http"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// route is one operation of the API. The same table registers the handlers and generates
// the OpenAPI document, so the two cannot drift apart.
type route struct {
	method, pattern string
	tag, summary    string
	auth            bool // admin bearer token
	mtls            bool // a client certificate authenticates (checked by the handler)
	in, out         any  // zero values of the body types, nil for none
	status          int  // success status
	// query lists the filters a list route accepts besides limit and cursor (nil for a
	// route that is not a list).
	query  []string
	list   bool
	handle http.HandlerFunc
}

// validating is a request body with field validation.
type validating[T any] interface {
	*T
	Validate() error
}

func handleCreate[In any, PIn validating[In], Out any](s *Server, fn func(context.Context, *In) (*Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if p := decode(w, r, &in); p != nil {
			writeProblem(w, p)
			return
		}
		if err := PIn(&in).Validate(); err != nil {
			s.fail(w, r, err)
			return
		}
		out, err := fn(r.Context(), &in)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, out)
	}
}

func handleUpdate[In any, PIn validating[In], Out any](s *Server, fn func(context.Context, string, *In) (*Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if p := decode(w, r, &in); p != nil {
			writeProblem(w, p)
			return
		}
		if err := PIn(&in).Validate(); err != nil {
			s.fail(w, r, err)
			return
		}
		out, err := fn(r.Context(), r.PathValue("id"), &in)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func handleGet[Out any](s *Server, fn func(context.Context, string) (*Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, err := fn(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func handleDelete(s *Server, fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context(), r.PathValue("id")); err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// Filters of the list routes (see list.go).
var (
	namedFilters = []string{filterName, filterRole}
	keyFilters   = []string{filterRouterID}
)

// crud returns the five routes of a collection.
func crud[T, C, U any, PC validating[C], PU validating[U]](s *Server, coll, noun string,
	create func(context.Context, *C) (*T, error),
	get func(context.Context, string) (*T, error),
	list func(context.Context, store.Page) ([]T, error), filters []string, idOf func(*T) string,
	update func(context.Context, string, *U) (*T, error),
	del func(context.Context, string) error,
) []route {
	base, item := "/v1/"+coll, "/v1/"+coll+"/{id}"
	var t T
	var c C
	var u U
	return []route{
		{method: http.MethodPost, pattern: base, tag: coll, summary: "Create a " + noun, auth: true, in: c, out: t, status: http.StatusCreated, handle: handleCreate[C, PC](s, create)},
		{method: http.MethodGet, pattern: base, tag: coll, summary: "List " + coll + ", a page at a time in id order", auth: true, query: filters, list: true, out: api.List[T]{}, status: http.StatusOK, handle: handleList(s, filters, idOf, list)},
		{method: http.MethodGet, pattern: item, tag: coll, summary: "Get a " + noun, auth: true, out: t, status: http.StatusOK, handle: handleGet(s, get)},
		{method: http.MethodPatch, pattern: item, tag: coll, summary: "Update a " + noun + " (absent fields stay as they are)", auth: true, in: u, out: t, status: http.StatusOK, handle: handleUpdate[U, PU](s, update)},
		{method: http.MethodDelete, pattern: item, tag: coll, summary: "Delete a " + noun, auth: true, status: http.StatusNoContent, handle: handleDelete(s, del)},
	}
}

func (s *Server) routes() []route {
	var rs []route
	rs = append(rs, crud[api.Router, api.RouterCreate, api.RouterUpdate](s, "routers", "router",
		s.createRouter, s.getRouter, s.listRouters, namedFilters, func(v *api.Router) string { return v.ID }, s.updateRouter, s.store.DeleteRouter)...)
	rs = append(rs, crud[api.Service, api.ServiceCreate, api.ServiceUpdate](s, "services", "service",
		s.createService, s.getService, s.listServices, namedFilters, func(v *api.Service) string { return v.ID }, s.updateService, s.store.DeleteService)...)
	rs = append(rs, crud[api.Identity, api.IdentityCreate, api.IdentityUpdate](s, "identities", "identity",
		s.createIdentity, s.store.GetIdentity, s.store.PageIdentities, namedFilters, func(v *api.Identity) string { return v.ID }, s.updateIdentity, s.store.DeleteIdentity)...)
	rs = append(rs, crud[api.ServicePolicy, api.ServicePolicyCreate, api.ServicePolicyUpdate](s, "service-policies", "service policy",
		s.createPolicy, s.store.GetServicePolicy, s.store.PageServicePolicies, namedFilters, func(v *api.ServicePolicy) string { return v.ID }, s.updatePolicy, s.store.DeleteServicePolicy)...)

	rs = append(rs, route{method: http.MethodGet, pattern: "/v1/services/{id}/routers", tag: "services", auth: true,
		summary: "List the routers whose roles select the service to host it, with what each last reported about it, a page at a time in id order",
		list:    true, out: api.List[api.ServiceRoute]{}, status: http.StatusOK, handle: s.serviceRoutes})
	rs = append(rs, route{method: http.MethodPost, pattern: "/v1/routers/{id}/reset-enrollment", tag: "routers", auth: true,
		summary: "Allow the router's next enrolment with any valid registration key, although it is enrolled (an enrolled router otherwise refuses keys created without allow_reenrollment); that enrolment supersedes the running router's certificate and spends the reset",
		out:     api.Router{}, status: http.StatusOK, handle: handleGet(s, s.resetEnrollment)})
	rs = append(rs, route{method: http.MethodPost, pattern: "/v1/identities/{id}/enrollment-token", tag: "identities", auth: true,
		summary: "Reissue an identity's one-time enrolment token ({} for the default ttl): revokes its earlier unused tokens; only this response contains the token. Enrolling with it issues a certificate for a new key under the same id; certificates issued earlier stay valid until they expire but are no longer renewed",
		in:      api.IdentityTokenReissue{}, out: api.Identity{}, status: http.StatusOK, handle: handleUpdate[api.IdentityTokenReissue](s, s.reissueIdentityToken)})
	rs = append(rs, route{method: http.MethodPost, pattern: "/v1/identities/{id}/enrollment-token/revoke", tag: "identities", auth: true,
		summary: "Revoke an identity's unused enrolment tokens (used ones and certificates are not touched)",
		out:     api.Identity{}, status: http.StatusOK, handle: handleGet(s, s.revokeIdentityTokens)})

	const keys, key = "/v1/registration-keys", "/v1/registration-keys/{id}"
	rs = append(rs,
		route{method: http.MethodPost, pattern: keys, tag: "registration-keys", summary: "Create a one-time registration key for a router; only this response contains the key", auth: true,
			in: api.RegistrationKeyCreate{}, out: api.RegistrationKey{}, status: http.StatusCreated, handle: handleCreate[api.RegistrationKeyCreate](s, s.createKey)},
		route{method: http.MethodGet, pattern: keys, tag: "registration-keys", summary: "List registration keys, a page at a time in id order", auth: true,
			query: keyFilters, list: true, out: api.List[api.RegistrationKey]{}, status: http.StatusOK,
			handle: handleList(s, keyFilters, func(v *api.RegistrationKey) string { return v.ID }, s.listKeys)},
		route{method: http.MethodGet, pattern: key, tag: "registration-keys", summary: "Get a registration key (without the key itself)", auth: true,
			out: api.RegistrationKey{}, status: http.StatusOK, handle: handleGet(s, s.getKey)},
		route{method: http.MethodDelete, pattern: key, tag: "registration-keys", summary: "Delete a registration key", auth: true,
			status: http.StatusNoContent, handle: handleDelete(s, s.deleteKey)},
		route{method: http.MethodPost, pattern: key + "/revoke", tag: "registration-keys", summary: "Revoke an unused registration key", auth: true,
			out: api.RegistrationKey{}, status: http.StatusOK, handle: handleGet(s, s.revokeKey)},
		route{method: http.MethodPost, pattern: "/v1/enroll", tag: "enrolment", summary: "Enrol a router or identity: a registration key or enrolment token and a CSR in, a certificate chain, the CA and the configuration out (no bearer token: the key authenticates)",
			in: api.EnrollRequest{}, out: api.EnrollResponse{}, status: http.StatusOK, handle: s.enroll},
		route{method: http.MethodPost, pattern: "/v1/renew", tag: "enrolment", summary: "Renew an identity's certificate: the current, unexpired certificate of an existing identity presented with mutual TLS and a CSR for a new key in, a certificate chain, the CA and the configuration out (routers renew over the control channel)",
			mtls: true, in: api.RenewRequest{}, out: api.EnrollResponse{}, status: http.StatusOK, handle: s.renew},
		route{method: http.MethodGet, pattern: "/v1/openapi.json", tag: "meta", summary: "This OpenAPI document",
			status: http.StatusOK, handle: serveOpenAPI},
	)
	return rs
}
