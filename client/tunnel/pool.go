package tunnel

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
)

// pool hands out one local IPv4 address per service name. A name's first choice is derived
// from a hash of the name, so the same name usually gets the same address across restarts of
// the tunnel (programs and caches that kept an old answer still reach the right service);
// collisions move on to the next free address.
type pool struct {
	prefix netip.Prefix
	base   uint32 // the prefix's first address
	size   uint32 // usable addresses: all but the first and last of the prefix
	byName map[string]netip.Addr
	taken  map[netip.Addr]string
}

// newPool checks that prefix is an IPv4 prefix with room for at least two services.
func newPool(prefix netip.Prefix) (*pool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("address pool %s must be an IPv4 prefix such as 127.77.0.0/16", prefix)
	}
	if prefix.Bits() > 30 {
		return nil, fmt.Errorf("address pool %s is too small: use /30 or larger (127.77.0.0/16 by default)", prefix)
	}
	prefix = prefix.Masked()
	a := prefix.Addr().As4()
	return &pool{
		prefix: prefix,
		base:   binary.BigEndian.Uint32(a[:]),
		size:   uint32(1)<<(32-prefix.Bits()) - 2,
		byName: map[string]netip.Addr{},
		taken:  map[netip.Addr]string{},
	}, nil
}

// assign returns name's address, taking one if name has none yet; a new address is never one
// of avoid.
func (p *pool) assign(name string, avoid ...netip.Addr) (netip.Addr, error) {
	if a, ok := p.byName[name]; ok {
		return a, nil
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	first := h.Sum32() % p.size
	for i := range p.size {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], p.base+1+(first+i)%p.size)
		a := netip.AddrFrom4(b)
		if _, used := p.taken[a]; !used && !slices.Contains(avoid, a) {
			p.byName[name], p.taken[a] = a, name
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("address pool %s is exhausted (%d names): use a larger --address-pool", p.prefix, p.size)
}

// release frees name's address.
func (p *pool) release(name string) {
	if a, ok := p.byName[name]; ok {
		delete(p.byName, name)
		delete(p.taken, a)
	}
}
