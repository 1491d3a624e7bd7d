// Package policy answers the controller's authorisation questions from plain data, with no
// I/O, so the edge API, the control channel and the hub decide them the same way: which
// routers host a service (role match), and which services an identity may dial (service
// policies: least privilege, nothing is allowed unless a policy names it).
package policy

import (
	"slices"

	"github.com/ztna/ztna/internal/api"
)

// RolesIntersect reports whether a and b share a role.
func RolesIntersect(a, b []string) bool {
	return slices.ContainsFunc(a, func(r string) bool { return slices.Contains(b, r) })
}

// Hosts reports whether router r hosts service s: one of its roles is one of the service's
// router roles.
func Hosts(r *api.Router, s *api.Service) bool { return RolesIntersect(r.Roles, s.RouterRoles) }

// MayDial reports whether the identity may dial the named service: some policy holds one
// of the identity's roles and names the service.
func MayDial(id *api.Identity, serviceName string, policies []api.ServicePolicy) bool {
	for i := range policies {
		p := &policies[i]
		if RolesIntersect(id.Roles, p.IdentityRoles) && slices.Contains(p.ServiceNames, serviceName) {
			return true
		}
	}
	return false
}

// Dialable returns the services the identity may dial, in the order given.
func Dialable(id *api.Identity, services []api.Service, policies []api.ServicePolicy) []api.Service {
	out := []api.Service{}
	for _, s := range services {
		if MayDial(id, s.Name, policies) {
			out = append(out, s)
		}
	}
	return out
}
