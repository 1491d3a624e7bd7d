package controlclient

import (
	"fmt"
	"net"
	"slices"
	"strconv"
)

// rotation is the list of control endpoints a router dials in turn: the controller's list (as
// last pushed in a welcome, or as the router started with), then the fallbacks it lacks.
type rotation struct {
	primary, fallback []string
	list              []string
	next              int
}

func newRotation(primary, fallback []string) *rotation {
	r := &rotation{fallback: fallback}
	r.set(primary)
	return r
}

func (r *rotation) set(primary []string) {
	r.primary = primary
	r.list = slices.Clone(primary)
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
