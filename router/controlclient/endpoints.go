package controlclient

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
)

// rotation is the list of control endpoints a router dials in turn: the controller's list (as
// last pushed in a welcome, or as the router started with) in this router's own order, then
// the fallbacks it lacks.
//
// The order is rendezvous hashing of the router's id with each endpoint: stable per router
// (a restart dials the same replica first), different across routers, so a fleet spreads
// evenly over the replicas. Before it, every router dialled the list in order and one
// replica held every session (2,505 to 0). Adding or removing a replica moves only the
// routers whose first choice it is.
type rotation struct {
	seed              string // the router's id
	primary, fallback []string
	list              []string
	next              int
}

func newRotation(seed string, primary, fallback []string) *rotation {
	r := &rotation{seed: seed, fallback: fallback}
	r.set(primary)
	return r
}

// Preference orders endpoints for the router seed (rendezvous hashing, highest weight first).
func Preference(seed string, endpoints []string) []string {
	weight := func(e string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(seed))
		h.Write([]byte{0})
		h.Write([]byte(e))
		return h.Sum64()
	}
	out := slices.Clone(endpoints)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(weight(b), weight(a)) })
	return out
}

func (r *rotation) set(primary []string) {
	r.primary = primary
	r.list = Preference(r.seed, primary)
	for _, f := range r.fallback {
		if !slices.Contains(r.list, f) {
			r.list = append(r.list, f)
		}
	}
}

// pick returns the endpoint to dial next.
func (r *rotation) pick() string {
	e := r.list[r.next%len(r.list)]
	r.next++
	return e
}

// replace installs the controller's list and reports whether it changed. The rotation goes on
// after current (the endpoint of the session that brought the list): when that session ends,
// the next attempt goes to another endpoint.
func (r *rotation) replace(primary []string, current string) bool {
	if slices.Equal(primary, r.primary) {
		return false
	}
	r.set(primary)
	r.next = slices.Index(r.list, current) + 1
	return true
}

// ValidEndpoints checks a pushed control endpoint list (see ValidAddrs).
func ValidEndpoints(list []string) ([]string, error) { return ValidAddrs("control endpoint", list) }

// ValidAddrs checks a pushed list of what addresses (host:port each, port 1–65535) and drops
// duplicates; an invalid entry rejects the whole list, so that a mistake on the controller's
// side leaves the router with the list it has.
func ValidAddrs(what string, list []string) ([]string, error) {
	var out []string
	for _, e := range list {
		host, port, err := net.SplitHostPort(e)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, e, err)
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s %q is not host:port", what, e)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}
