package hub

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/internal/target"
)

// Snapshot is everything a hub needs to authorise and route dials, pushed by the controller
// whenever it changes. It mirrors the management API's objects (internal/api), so the
// controller fills it field by field.
type Snapshot struct {
	Services   []Service
	Routers    []Router
	Identities []Identity
	Policies   []Policy
}

// Service is a service and the router roles that host it.
type Service struct {
	control.Service
	RouterRoles []string
}

// Router is a router that may host services, with its operator-set static cost (in
// milliseconds, added to the link's round-trip time when routing) and its latest enrolment:
// links with a certificate issued before EnrolledAt are refused (zero refuses none).
type Router struct {
	ID         string
	Roles      []string
	Cost       int
	EnrolledAt time.Time
}

// Identity is a client identity and its roles.
type Identity struct {
	ID    string
	Roles []string
}

// Policy lets identities holding any of IdentityRoles dial the named services.
type Policy struct {
	IdentityRoles []string
	ServiceNames  []string
}

// index is a compiled Snapshot; it is immutable once built.
type index struct {
	byAddr  map[string][]*service // normalised address → services at that address
	allowed map[string][]*service // identity id → services it may dial, by name; every listed identity has a key
	routers map[string]time.Time  // listed router ids → latest enrolment
	// fromController: built from a snapshot Update installed, not the empty one New starts with.
	fromController bool
}

type service struct {
	Service
	routers []hostRef // routers whose roles match, in snapshot order
}

type hostRef struct {
	id   string
	cost int
}

// compile indexes a snapshot. Role intersections go through role → routers and role →
// policies maps, and duplicates are dropped with per-item stamps, so the work is linear in the
// snapshot plus its output (the nested scans this replaces took 13.4 s for 4k objects sharing
// one role). Services (identities) with the same role set share one host (allowed) list, so a
// role shared by everyone costs one list, not one per object.
func compile(s Snapshot) *index {
	ix := &index{byAddr: map[string][]*service{}, allowed: map[string][]*service{}, routers: map[string]time.Time{}}
	routersByRole := map[string][]int{}
	for i, r := range s.Routers {
		ix.routers[r.ID] = r.EnrolledAt
		for _, role := range r.Roles {
			routersByRole[role] = append(routersByRole[role], i)
		}
	}
	routerSeen := make([]int, len(s.Routers)) // service number+1 that last took the router
	byName := map[string]*service{}
	hostsByRoles := map[string][]hostRef{}
	for n, in := range s.Services {
		key := roleKey(in.RouterRoles)
		refs, ok := hostsByRoles[key] // services with the same roles share one immutable list
		if !ok {
			var hosts []int
			for _, role := range in.RouterRoles {
				for _, ri := range routersByRole[role] {
					if routerSeen[ri] != n+1 {
						routerSeen[ri] = n + 1
						hosts = append(hosts, ri)
					}
				}
			}
			slices.Sort(hosts) // snapshot order
			for _, ri := range hosts {
				refs = append(refs, hostRef{id: s.Routers[ri].ID, cost: s.Routers[ri].Cost})
			}
			hostsByRoles[key] = refs
		}
		svc := &service{Service: in, routers: refs}
		addr := target.NormalizeHost(in.Address)
		ix.byAddr[addr] = append(ix.byAddr[addr], svc)
		byName[in.Name] = svc
	}
	policiesByRole := map[string][]int{}
	for i, p := range s.Policies {
		for _, role := range p.IdentityRoles {
			policiesByRole[role] = append(policiesByRole[role], i)
		}
	}
	policySeen := make([]int, len(s.Policies)) // identity number+1 that last took the policy
	serviceSeen := map[*service]int{}          // identity number+1 that last took the service
	allowedByRoles := map[string][]*service{}  // identities with the same roles share one immutable list
	for n, id := range s.Identities {
		key := roleKey(id.Roles)
		if mine, ok := allowedByRoles[key]; ok {
			ix.allowed[id.ID] = mine
			continue
		}
		var mine []*service
		for _, role := range id.Roles {
			for _, pi := range policiesByRole[role] {
				if policySeen[pi] == n+1 {
					continue
				}
				policySeen[pi] = n + 1
				for _, name := range s.Policies[pi].ServiceNames {
					if svc, ok := byName[name]; ok && serviceSeen[svc] != n+1 {
						serviceSeen[svc] = n + 1
						mine = append(mine, svc)
					}
				}
			}
		}
		// Names are unique in mine (byName keeps one service per name), which authorize's
		// binary search relies on.
		slices.SortFunc(mine, func(a, b *service) int { return cmp.Compare(a.Name, b.Name) })
		ix.allowed[id.ID] = mine
		allowedByRoles[key] = mine
	}
	return ix
}

// roleKey names a set of roles independently of order and repeats.
func roleKey(roles []string) string {
	set := slices.Clone(roles)
	slices.Sort(set)
	return strings.Join(slices.Compact(set), "\x00")
}

// allows reports whether svc is among mine, which compile sorted by unique name.
func allows(mine []*service, svc *service) bool {
	i, found := slices.BinarySearchFunc(mine, svc.Name, func(m *service, name string) int { return cmp.Compare(m.Name, name) })
	return found && mine[i] == svc
}

// authorize returns the service identity may reach at hostport, or false when no
// policy allows it — whether or not such a service exists, so that services an identity may
// not use stay invisible to it.
func (ix *index) authorize(identity, hostport string) (*service, bool) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, false
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, false
	}
	t := target.Normalize(host, port)
	mine := ix.allowed[identity]
	for _, svc := range ix.byAddr[t.Address] {
		if svc.HasPort(t.Port) && allows(mine, svc) {
			return svc, true
		}
	}
	return nil, false
}

// admits reports whether peer may hold a link to the hub: an identity or router the snapshot
// lists. Before the controller's first snapshot (the empty index New starts with) the hub knows
// nobody, so it refuses nobody: every dial is refused anyway until Update. From the first
// snapshot on, a peer it does not list is shut out, even when it lists none of that kind (the
// network's last identity deleted). The controller's snapshots list every identity and router.
func (ix *index) admits(peer fabric.Peer) bool {
	if !ix.fromController {
		return true
	}
	switch peer.Kind {
	case api.KindIdentity:
		_, listed := ix.allowed[peer.ID]
		return listed
	case api.KindRouter:
		_, listed := ix.routers[peer.ID]
		return listed
	}
	return true
}

// admitLink is admits for a link's peer (ErrNotListed) and, for a router, its certificate:
// one issued before the router's latest enrolment (the router was enrolled again, with a new
// key, say after its host was lost) is ErrSuperseded.
func (ix *index) admitLink(l *fabric.Link) error {
	peer := l.Peer()
	if !ix.admits(peer) {
		return ErrNotListed
	}
	if peer.Kind == api.KindRouter && pki.Superseded(pki.IssuedAt(l.PeerCertificate()), ix.routers[peer.ID]) {
		return ErrSuperseded
	}
	return nil
}

// visible lists the services identity may dial.
func (ix *index) visible(identity string) []fabric.ServiceInfo {
	out := []fabric.ServiceInfo{}
	for _, svc := range ix.allowed[identity] {
		out = append(out, fabric.ServiceInfo{
			Name: svc.Name, Address: svc.Address, Port: svc.Port,
			PortRanges: svc.PortRanges, Protocol: svc.Protocol,
		})
	}
	return out
}
