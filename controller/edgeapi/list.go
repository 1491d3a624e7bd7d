package edgeapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// Query parameters of list routes. Filters select in the store (store.Page), never by
// slicing a full list in memory.
const (
	paramLimit  = "limit"
	paramCursor = "cursor"
	// filterName keeps the object with this exact name.
	filterName = "name"
	// filterRole keeps objects holding the role: routers' and identities' roles, services'
	// router_roles, policies' identity_roles.
	filterRole = "role"
	// filterRouterID keeps registration keys of one router.
	filterRouterID = "router_id"
)

// cursorPrefix versions the opaque cursor, so its encoding can change without a client
// mistaking an old one for a position.
const cursorPrefix = "id1:"

func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

func decodeCursor(c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	id, ok := strings.CutPrefix(string(b), cursorPrefix)
	return id, ok && id != ""
}

// parsePage reads limit, cursor and the filters a route accepts; anything else is refused,
// so a misspelt or unsupported filter (there are no tenants yet) is not silently ignored.
func parsePage(r *http.Request, filters []string) (store.Page, *api.Problem) {
	p := store.Page{Limit: api.DefaultListLimit}
	var fe api.FieldErrors
	bad := func(field, detail string) { fe = append(fe, api.FieldError{Field: field, Detail: detail}) }
	q := r.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		v := q[k]
		if len(v) > 1 {
			bad(k, "given more than once; give it once")
			continue
		}
		switch {
		case k == paramLimit:
			n, err := strconv.Atoi(v[0])
			switch {
			case err != nil || n < 1:
				bad(k, fmt.Sprintf("%q is not a positive whole number; give 1 to %d (default %d)", v[0], api.MaxListLimit, api.DefaultListLimit))
			case n > api.MaxListLimit:
				bad(k, fmt.Sprintf("%d is over the maximum of %d; ask for at most %d and follow next_cursor", n, api.MaxListLimit, api.MaxListLimit))
			default:
				p.Limit = n
			}
		case k == paramCursor:
			id, ok := decodeCursor(v[0])
			if !ok {
				bad(k, "not a cursor this API returned; pass next_cursor of the previous page as is, or leave cursor out to start over")
			}
			p.After = id
		case slices.Contains(filters, k) && v[0] == "":
			bad(k, "empty; give a value or leave the filter out")
		case slices.Contains(filters, k) && k == filterName:
			p.Name = v[0]
		case slices.Contains(filters, k) && k == filterRole:
			p.Roles = []string{v[0]}
		case slices.Contains(filters, k) && k == filterRouterID:
			p.Subject = v[0]
		default:
			bad(k, "unknown query parameter; this list accepts "+strings.Join(append([]string{paramLimit, paramCursor}, filters...), ", "))
		}
	}
	if fe != nil {
		return p, &api.Problem{Type: api.ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "one or more query parameters are invalid", Errors: fe}
	}
	return p, nil
}

// handleList serves one page: it asks the store for one object more than the limit to learn
// whether another page follows, without a count query.
func handleList[Out any](s *Server, filters []string, idOf func(*Out) string, fn func(context.Context, store.Page) ([]Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, prob := parsePage(r, filters)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		limit := p.Limit
		p.Limit++
		out, err := fn(r.Context(), p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		l := api.List[Out]{Items: out}
		if len(out) > limit {
			l.Items = out[:limit]
			l.NextCursor = encodeCursor(idOf(&out[limit-1]))
		}
		writeJSON(w, http.StatusOK, l)
	}
}

// eachRouter calls fn for every router holding one of roles, reading them from the store a
// page at a time so that memory stays bounded by a page, not by the fleet.
func (s *Server) eachRouter(ctx context.Context, roles []string, fn func(*api.Router)) error {
	if len(roles) == 0 {
		return nil // no role selects no router (an empty Page.Roles would select all)
	}
	p := store.Page{Roles: roles, Limit: api.MaxListLimit}
	for {
		rs, err := s.store.PageRouters(ctx, p)
		if err != nil {
			return err
		}
		for i := range rs {
			fn(&rs[i])
		}
		if len(rs) < p.Limit {
			return nil
		}
		p.After = rs[len(rs)-1].ID
	}
}
