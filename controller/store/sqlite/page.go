package sqlite

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// where renders a page's keyset condition and filters; rolesPath is the JSON path of the
// document's role list.
func where(p store.Page, rolesPath string) (string, []any, error) {
	conds, args := []string{"id > ?"}, []any{p.After}
	if p.Name != "" {
		conds, args = append(conds, "name = ?"), append(args, p.Name)
	}
	if len(p.Roles) > 0 {
		roles, err := json.Marshal(p.Roles)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, `EXISTS (SELECT 1 FROM json_each(doc, '`+rolesPath+`') WHERE value IN (SELECT value FROM json_each(?)))`)
		args = append(args, string(roles))
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// page reads one page of documents in id order: the primary key's index serves both the
// condition and the order, so a page costs its own rows (plus those a filter skips).
func (d docTable[T]) page(ctx context.Context, s *Store, p store.Page) ([]T, error) {
	cond, args, err := where(p, d.rolesPath)
	if err != nil {
		return nil, err
	}
	return d.query(ctx, s, `SELECT doc FROM `+d.table+cond+` ORDER BY id LIMIT ?`, append(args, p.Limit)...)
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
	q, args := `SELECT `+keyColumns+` FROM keys WHERE kind = ? AND id > ?`, []any{kind, p.After}
	if p.Subject != "" {
		q, args = q+` AND subject_id = ?`, append(args, p.Subject)
	}
	return queryKeys(ctx, s, q+` ORDER BY id LIMIT ?`, append(args, p.Limit)...)
}

// Count implements store.Store: two aggregate queries in one read transaction, so the
// numbers belong together.
func (s *Store) Count(ctx context.Context) (store.Counts, error) {
	c := store.Counts{RoutersByStatus: map[string]int{}}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return c, classify(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT json_extract(doc, '$.status'), count(*) FROM routers GROUP BY 1`)
	if err != nil {
		return c, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return c, classify(err)
		}
		c.RoutersByStatus[status] = n
		c.Routers += n
	}
	if err := rows.Err(); err != nil {
		return c, classify(err)
	}
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM services), (SELECT count(*) FROM identities), (SELECT count(*) FROM service_policies)`).
		Scan(&c.Services, &c.Identities, &c.ServicePolicies)
	return c, classify(err)
}
