package store

import (
	"context"

	"github.com/ztna/ztna/internal/api"
)

// Page asks for one page of a collection in id order (keyset pagination): the objects whose
// id is greater than After, at most Limit of them, that pass every filter set. Ordering by
// the primary key makes a page a range read of its index, and a listing that walks pages
// while objects are created or deleted sees every object that existed throughout exactly
// once: new ids land before or after the cursor, never shift what is left to read.
type Page struct {
	After string // "" from the first object
	Limit int    // > 0
	// Name keeps only the object with this exact name ("" for any).
	Name string
	// Roles keeps only objects holding at least one of these roles ("" or nil for any): a
	// router's or identity's roles, a service's router_roles, a policy's identity_roles.
	Roles []string
	// Subject keeps only keys of this router or identity (PageKeys; "" for any).
	Subject string
}

// Counts is the size of every collection and the routers by recorded status, read in one
// go for metrics (ObjectCounter) rather than by listing every table.
type Counts struct {
	Routers, Services, Identities, ServicePolicies int
	// RoutersByStatus counts routers by their stored status (api.Router* constants).
	RoutersByStatus map[string]int
}

// Pager is the paginated, filtered reading of the collections that the management API
// lists. Every Store implements it.
type Pager interface {
	PageRouters(ctx context.Context, p Page) ([]api.Router, error)
	PageServices(ctx context.Context, p Page) ([]api.Service, error)
	PageIdentities(ctx context.Context, p Page) ([]api.Identity, error)
	PageServicePolicies(ctx context.Context, p Page) ([]api.ServicePolicy, error)
	// PageKeys pages keys of one kind; Name and Roles do not apply to keys.
	PageKeys(ctx context.Context, kind string, p Page) ([]Key, error)
	// Count counts every collection and the routers by status with aggregate queries.
	Count(ctx context.Context) (Counts, error)
}
