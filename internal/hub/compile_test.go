package hub

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/ztna/ztna/internal/control"
)

// referenceDecisions is the specification compile's indexes must match, written as the direct
// nested scans the indexed compile replaced: a service is hosted by every router sharing one of
// its roles (in snapshot order), and an identity may dial a named service when a policy sharing
// one of its roles lists that name (the last service of a name wins).
func referenceDecisions(s Snapshot) (hosts map[*Service][]hostRef, allowed map[string][]string) {
	shared := func(a, b []string) bool {
		for _, x := range a {
			if slices.Contains(b, x) {
				return true
			}
		}
		return false
	}
	hosts = map[*Service][]hostRef{}
	byName := map[string]*Service{}
	for i := range s.Services {
		in := &s.Services[i]
		for _, r := range s.Routers {
			if shared(r.Roles, in.RouterRoles) {
				hosts[in] = append(hosts[in], hostRef{id: r.ID, cost: r.Cost})
			}
		}
		byName[in.Name] = in
	}
	allowed = map[string][]string{}
	for _, id := range s.Identities {
		mine := []string{}
		for _, p := range s.Policies {
			if !shared(id.Roles, p.IdentityRoles) {
				continue
			}
			for _, name := range p.ServiceNames {
				if _, ok := byName[name]; ok && !slices.Contains(mine, name) {
					mine = append(mine, name)
				}
			}
		}
		slices.Sort(mine)
		allowed[id.ID] = mine
	}
	return hosts, allowed
}

func randomSnapshot(r *rand.Rand) Snapshot {
	roles := func(pool int) []string {
		var out []string
		for range r.IntN(4) {
			out = append(out, "role"+strconv.Itoa(r.IntN(pool))) // repeats on purpose
		}
		return out
	}
	pool := 1 + r.IntN(6)
	var s Snapshot
	names := 1 + r.IntN(12)
	for i := range r.IntN(15) {
		name := "svc" + strconv.Itoa(r.IntN(names)) // duplicate names on purpose
		addr := "10.0.0." + strconv.Itoa(r.IntN(3))
		s.Services = append(s.Services, Service{
			Service:     control.Service{ID: strconv.Itoa(i), Name: name, Address: addr, Port: 1 + r.IntN(3), Protocol: "tcp"},
			RouterRoles: roles(pool),
		})
	}
	for i := range r.IntN(8) {
		s.Routers = append(s.Routers, Router{ID: "r" + strconv.Itoa(i%5), Roles: roles(pool), Cost: r.IntN(10)})
	}
	for i := range r.IntN(10) {
		s.Identities = append(s.Identities, Identity{ID: "id" + strconv.Itoa(i%7), Roles: roles(pool)})
	}
	for range r.IntN(10) {
		var svcNames []string
		for range r.IntN(5) {
			svcNames = append(svcNames, "svc"+strconv.Itoa(r.IntN(names+2))) // some missing
		}
		s.Policies = append(s.Policies, Policy{IdentityRoles: roles(pool), ServiceNames: svcNames})
	}
	return s
}

// TestCompileMatchesReference compares compile with the reference on random snapshots (shared
// and repeated roles, duplicate names and ids, missing services): every authorize decision,
// every visible list and every service's hosts must be equal.
func TestCompileMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 18))
	for n := range 3000 {
		s := randomSnapshot(r)
		ix := compile(s)
		hosts, allowed := referenceDecisions(s)

		for id, want := range allowed {
			var got []string
			for _, v := range ix.visible(id) {
				got = append(got, v.Name)
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("snapshot %d %+v: visible(%s) = %v, want %v", n, s, id, got, want)
			}
		}
		if len(ix.allowed) != len(allowed) {
			t.Fatalf("snapshot %d: %d identities listed, want %d", n, len(ix.allowed), len(allowed))
		}
		lastByName := map[string]int{}
		for i, in := range s.Services {
			lastByName[in.Name] = i
		}
		for _, id := range append(slices.Collect(func(yield func(string) bool) {
			for k := range allowed {
				if !yield(k) {
					return
				}
			}
		}), "stranger") {
			for a := range 3 {
				for port := range 4 {
					hostport := fmt.Sprintf("10.0.0.%d:%d", a, port)
					got, ok := ix.authorize(id, hostport)
					// Reference: the first service at that address and port whose name the
					// identity may dial and which is the one service of that name.
					var want *Service
					for i := range s.Services {
						in := &s.Services[i]
						if in.Address == fmt.Sprintf("10.0.0.%d", a) && in.HasPort(port) &&
							lastByName[in.Name] == i && slices.Contains(allowed[id], in.Name) {
							want = in
							break
						}
					}
					switch {
					case want == nil && ok:
						t.Fatalf("snapshot %d %+v: authorize(%s, %s) = %s, want refused", n, s, id, hostport, got.ID)
					case want != nil && !ok:
						t.Fatalf("snapshot %d %+v: authorize(%s, %s) refused, want %s", n, s, id, hostport, want.ID)
					case want != nil && got.ID != want.ID:
						t.Fatalf("snapshot %d %+v: authorize(%s, %s) = %s, want %s", n, s, id, hostport, got.ID, want.ID)
					case want != nil && !slices.Equal(got.routers, hosts[want]):
						t.Fatalf("snapshot %d: %s hosted by %v, want %v", n, want.ID, got.routers, hosts[want])
					}
				}
			}
		}
	}
}

// benchSnapshot has n services, routers, identities and policies. Disjoint: team i's identity,
// policy, service and router share role i. Shared: all share one role, so every identity may
// dial every service on every router (the output itself is quadratic).
func benchSnapshot(n int, shared bool) Snapshot {
	var s Snapshot
	for i := range n {
		role := "team" + strconv.Itoa(i)
		if shared {
			role = "everyone"
		}
		name := "svc" + strconv.Itoa(i)
		s.Services = append(s.Services, Service{
			Service:     control.Service{ID: name, Name: name, Address: "svc" + strconv.Itoa(i) + ".internal", Port: 443, Protocol: "tcp"},
			RouterRoles: []string{role},
		})
		s.Routers = append(s.Routers, Router{ID: "r" + strconv.Itoa(i), Roles: []string{role}})
		s.Identities = append(s.Identities, Identity{ID: "id" + strconv.Itoa(i), Roles: []string{role}})
		s.Policies = append(s.Policies, Policy{IdentityRoles: []string{role}, ServiceNames: []string{name}})
	}
	return s
}

func BenchmarkCompile(b *testing.B) {
	for _, c := range []struct {
		shared bool
		sizes  []int
	}{{false, []int{1000, 5000, 10000}}, {true, []int{1000, 2000, 4000}}} {
		for _, n := range c.sizes {
			s := benchSnapshot(n, c.shared)
			b.Run(fmt.Sprintf("shared=%v/n=%d", c.shared, n), func(b *testing.B) {
				for b.Loop() {
					compile(s)
				}
			})
		}
	}
}
