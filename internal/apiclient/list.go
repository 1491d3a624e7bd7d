package apiclient

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/ztna/ztna/internal/api"
)

// ListOption narrows or bounds a list call.
type ListOption func(*listQuery)

type listQuery struct {
	params  url.Values
	onePage bool
}

// Filter keeps the objects whose field matches value, selected by the controller: name,
// role (routers, services, identities, service policies) or router_id (registration keys).
func Filter(field, value string) ListOption {
	return func(q *listQuery) { q.params.Set(field, value) }
}

// PageSize asks for n items a page (the controller's default is api.DefaultListLimit, at
// most api.MaxListLimit).
func PageSize(n int) ListOption {
	return func(q *listQuery) { q.params.Set("limit", strconv.Itoa(n)) }
}

// FirstPageOnly stops after the first page (for a reachability check that must not read a
// whole fleet).
func FirstPageOnly() ListOption { return func(q *listQuery) { q.onePage = true } }

// list reads every page of a collection, following next_cursor, so that callers see the
// whole collection however the controller pages it.
func list[T any](ctx context.Context, c *Client, path string, opts []ListOption) ([]T, error) {
	q := listQuery{params: url.Values{}}
	for _, o := range opts {
		o(&q)
	}
	out := []T{}
	seen := map[string]bool{}
	for {
		p := path
		if len(q.params) > 0 {
			p += "?" + q.params.Encode()
		}
		l, err := get[api.List[T]](ctx, c, p)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.NextCursor == "" || q.onePage {
			return out, nil
		}
		if seen[l.NextCursor] {
			return nil, fmt.Errorf("GET %s: the controller returned cursor %q twice; it would list forever", path, l.NextCursor)
		}
		seen[l.NextCursor] = true
		q.params.Set("cursor", l.NextCursor)
	}
}
