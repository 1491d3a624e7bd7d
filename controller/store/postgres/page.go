package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// where renders a page's keyset condition and filters after the arguments in args;
// rolesKey is the document's key of its role list.
func where(p store.Page, rolesKey string, args []any) (string, []any) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := []string{"id > " + arg(p.After)}
	if p.Name != "" {
		conds = append(conds, "name = "+arg(p.Name))
	}
	if len(p.Roles) > 0 {
		conds = append(conds, "doc->'"+rolesKey+"' ?| "+arg(p.Roles)+"::text[]")
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// page reads one page of documents in id order: the primary key's index serves both the
// condition and the order, so a page costs its own rows (plus those a filter skips).
func (d docTable[T]) page(ctx context.Context, s *Store, p store.Page) ([]T, error) {
	cond, args := where(p, d.rolesPath, nil)
	args = append(args, p.Limit)
	return d.query(ctx, s, `SELECT doc FROM `+d.table+cond+` ORDER BY id LIMIT $`+strconv.Itoa(len(args)), args...)
}

// PageRouters implements store.Store.
func (s *Store) PageRouters(ctx context.Context, p store.Page) ([]api.Router, error) {
	return routers.page(ctx, s, p)
}

// PageServices implements store.Store.
func (s *Store) PageServices(ctx context.Context, p store.Page) ([]api.Service, error) {
	return services.page(ctx, s, p)
}

// PageIdentities implements store.Store.
func (s *Store) PageIdentities(ctx context.Context, p store.Page) ([]api.Identity, error) {
	return identities.page(ctx, s, p)
}

// PageServicePolicies implements store.Store.
func (s *Store) PageServicePolicies(ctx context.Context, p store.Page) ([]api.ServicePolicy, error) {
	return policies.page(ctx, s, p)
}

// PageKeys implements store.Store.
func (s *Store) PageKeys(ctx context.Context, kind string, p store.Page) ([]store.Key, error) {
	q, args := `SELECT `+keyColumns+` FROM keys WHERE kind = $1 AND id > $2`, []any{kind, p.After}
	if p.Subject != "" {
		args = append(args, p.Subject)
		q += ` AND subject_id = $3`
	}
	args = append(args, p.Limit)
	return queryKeys(ctx, s, q+` ORDER BY id LIMIT $`+strconv.Itoa(len(args)), args...)
}

// Count implements store.Store: one statement, so the numbers come from one snapshot.
func (s *Store) Count(ctx context.Context) (store.Counts, error) {
	c := store.Counts{RoutersByStatus: map[string]int{}}
	var byStatus []byte
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT COALESCE(jsonb_object_agg(status, n), '{}') FROM (SELECT doc->>'status' AS status, count(*) AS n FROM routers GROUP BY 1) r),
		(SELECT count(*) FROM services), (SELECT count(*) FROM identities), (SELECT count(*) FROM service_policies)`).
		Scan(&byStatus, &c.Services, &c.Identities, &c.ServicePolicies)
	if err != nil {
		return c, classify(err)
	}
	if err := json.Unmarshal(byStatus, &c.RoutersByStatus); err != nil {
		return c, err
	}
	for _, n := range c.RoutersByStatus {
		c.Routers += n
	}
	return c, nil
}
