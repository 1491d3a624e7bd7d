// Package edgeapi serves the controller's edge API over HTTPS: the management REST API
// (/v1, bearer token) that Terraform and the CLI use, enrolment (POST /v1/enroll, the key
// authenticates) and the OpenAPI document that describes both.
package edgeapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ztna/ztna/controller/issuer"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

// maxBody bounds request bodies; the largest legitimate one is a CSR.
const maxBody = 1 << 20

// Endpoints are the controller addresses handed to routers and identities in registration
// keys and enrolment responses.
type Endpoints struct {
	Edge    []string // https://host:port
	Control []string // host:port
	Fabric  []string // host:port
}

// Config configures a Server.
type Config struct {
	Store  store.Store
	Issuer *issuer.Issuer
	// Token is the admin bearer token; only its hash is kept.
	Token     string
	Endpoints Endpoints
	// AttestationKeys are the trusted build keys routers' attestations are checked against.
	AttestationKeys control.TrustedKeys
	Logger          *slog.Logger
}

// Server is the edge API's http.Handler.
type Server struct {
	store     store.Store
	issuer    *issuer.Issuer
	tokenHash [32]byte
	endpoints Endpoints
	attKeys   control.TrustedKeys
	log       *slog.Logger
	mux       *http.ServeMux
	metrics   *metrics
}

// New returns the edge API handler.
func New(cfg Config) (*Server, error) {
	if len(cfg.Token) < 16 {
		return nil, errors.New("admin token must be at least 16 characters")
	}
	if len(cfg.Endpoints.Edge) == 0 {
		return nil, errors.New("at least one edge endpoint is needed for registration keys")
	}
	s := &Server{
		store:     cfg.Store,
		issuer:    cfg.Issuer,
		tokenHash: sha256.Sum256([]byte(cfg.Token)),
		endpoints: cfg.Endpoints,
		attKeys:   cfg.AttestationKeys,
		log:       cfg.Logger,
		mux:       http.NewServeMux(),
		metrics:   newMetrics(),
	}
	byPattern := map[string]map[string]route{}
	for _, rt := range s.routes() {
		if byPattern[rt.pattern] == nil {
			byPattern[rt.pattern] = map[string]route{}
		}
		byPattern[rt.pattern][rt.method] = rt
	}
	for pattern, methods := range byPattern {
		s.mux.Handle(pattern, s.dispatch(methods))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, &api.Problem{Type: api.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no API endpoint %s; see /v1/openapi.json", r.URL.Path)})
	})
	return s, nil
}

// ServeHTTP logs every request (never bodies: they carry keys) and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	_, pattern := s.mux.Handler(r)
	s.metrics.request(pattern, r.Method, rec.status)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// dispatch picks the route by method, answering 405 as a problem, and enforces the token.
func (s *Server) dispatch(methods map[string]route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := methods[r.Method]
		if !ok {
			var allow []string
			for m := range methods {
				allow = append(allow, m)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, &api.Problem{Type: api.ProblemMethod, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
				Detail: fmt.Sprintf("%s is not supported on %s", r.Method, r.URL.Path)})
			return
		}
		if rt.auth && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ztna"`)
			writeProblem(w, &api.Problem{Type: api.ProblemUnauthorized, Title: "Unauthorized", Status: http.StatusUnauthorized,
				Detail: "send the admin token as \"Authorization: Bearer <token>\" (ZTNA_TOKEN)"})
			return
		}
		rt.handle(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// decode reads one JSON object into v (a pointer), rejecting unknown fields, field names that
// match only case-insensitively, duplicate keys, a null body, trailing data and bodies over
// maxBody; the problem names the offending field where JSON allows it. Every route's body
// goes through it.
func decode(w http.ResponseWriter, r *http.Request, v any) *api.Problem {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &api.Problem{Type: api.ProblemTooLarge, Title: "Request too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body exceeds %d bytes", maxBody)}
	} else if err != nil {
		return malformed("cannot read the body: "+err.Error(), nil)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return malformed("the body must hold exactly one JSON object", nil)
		}
		return strictFields(data, reflect.TypeOf(v))
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return malformed("the body is empty; send a JSON object", nil)
	case errors.As(err, &syn):
		return malformed(fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn), nil)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return malformed("a field has the wrong type", []api.FieldError{{Field: field, Detail: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return malformed("the body has a field this API does not know", []api.FieldError{{Field: f, Detail: "unknown field; check the spelling against /v1/openapi.json"}})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("the JSON body ends early", nil)
	}
	return malformed(err.Error(), nil)
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case goKind == "slice":
		return "an array"
	}
	return "an object"
}

func malformed(detail string, fields []api.FieldError) *api.Problem {
	return &api.Problem{Type: api.ProblemMalformed, Title: "Malformed request", Status: http.StatusBadRequest, Detail: detail, Errors: fields}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, p *api.Problem) {
	if pr, ok := w.(*problemRecorder); ok {
		pr.problemType = p.Type
	}
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// problemFor maps store and validation errors to problems; anything else is a 500 whose
// cause is logged, not shown.
func (s *Server) problemFor(r *http.Request, err error) *api.Problem {
	var fe api.FieldErrors
	var conflict *store.ConflictError
	var ref *store.ReferenceError
	switch {
	case errors.As(err, &fe):
		return &api.Problem{Type: api.ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "one or more fields are invalid", Errors: fe}
	case errors.As(err, &conflict):
		return &api.Problem{Type: api.ProblemConflict, Title: "Conflict", Status: http.StatusConflict, Detail: conflict.Error(),
			Errors: []api.FieldError{{Field: conflict.Field, Detail: fmt.Sprintf("%q is already taken; choose another %s", conflict.Value, conflict.Field)}}}
	case errors.As(err, &ref):
		return &api.Problem{Type: api.ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest, Detail: ref.Error(),
			Errors: []api.FieldError{{Field: ref.Field, Detail: "does not exist"}}}
	case errors.Is(err, store.ErrNotFound):
		return &api.Problem{Type: api.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, store.ErrKeyUsed):
		return &api.Problem{Type: api.ProblemConflict, Title: "Conflict", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		s.log.WarnContext(r.Context(), "store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		return &api.Problem{Type: api.ProblemStoreUnavailable, Title: "Store unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the controller's database cannot be reached right now; nothing was changed: send the request again later (see Retry-After); if this persists, check that the database is running"}
	case errors.Is(err, store.ErrFull):
		s.log.ErrorContext(r.Context(), "store out of disk space", "method", r.Method, "path", r.URL.Path, "err", err)
		return &api.Problem{Type: api.ProblemInsufficientStorage, Title: "Insufficient storage", Status: http.StatusInsufficientStorage,
			Detail: "the controller's database has no disk space left; nothing was changed: free space on the database's disk, then send the request again"}
	}
	s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &api.Problem{Type: api.ProblemInternal, Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "the controller could not complete the request; its log has the cause"}
}

// storeRetryAfter is the Retry-After of a 503: about how long a PostgreSQL restart or
// failover takes, short enough that clients notice the store is back soon after it is.
const storeRetryAfter = 2 * time.Second

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := s.problemFor(r, err)
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(storeRetryAfter/time.Second)))
	}
	writeProblem(w, p)
}
