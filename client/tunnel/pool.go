package tunnel

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
)

// pool hands out one local address per service name, from an IPv4 or an IPv6 prefix. A name's
// first choice is derived from a hash of the name, so the same name usually gets the same
// address across restarts of the tunnel (programs and caches that kept an old answer still
// reach the right service); collisions move on to the next free address.
type pool struct {
	prefix netip.Prefix
	flag   string // the setting the prefix came from, for errors
	// size counts the usable addresses: all but the first and last of the prefix (of its first
	// 2^64 addresses for a wide IPv6 prefix: offsets are added to the low 64 bits).
	size   uint64
	byName map[string]netip.Addr
	taken  map[netip.Addr]string
}

// newPool checks that prefix is an IPv4 prefix with room for at least two services.
func newPool(prefix netip.Prefix) (*pool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("address pool %s must be an IPv4 prefix such as 127.77.0.0/16 (IPv6 goes in --address-pool6)", prefix)
	}
	if prefix.Bits() > 30 {
		return nil, fmt.Errorf("address pool %s is too small: use /30 or larger (127.77.0.0/16 by default)", prefix)
	}
	return makePool(prefix, "--address-pool"), nil
}

// newPool6 checks that prefix is an IPv6 prefix with room for at least two services, and not
// one whose addresses mean something else (IPv4-mapped, loopback, link-local, multicast).
func newPool6(prefix netip.Prefix) (*pool, error) {
	a := prefix.Addr()
	if !prefix.IsValid() || !a.Is6() || a.Is4In6() {
		return nil, fmt.Errorf("IPv6 address pool %s must be an IPv6 prefix such as %s", prefix, ExamplePool6)
	}
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return nil, fmt.Errorf("IPv6 address pool %s: use a unique-local prefix such as %s", prefix, ExamplePool6)
	}
	if prefix.Bits() > 126 {
		return nil, fmt.Errorf("IPv6 address pool %s is too small: use /126 or larger (%s is typical)", prefix, ExamplePool6)
	}
	return makePool(prefix, "--address-pool6"), nil
}

func makePool(prefix netip.Prefix, flag string) *pool {
	prefix = prefix.Masked()
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	size := ^uint64(0) - 1
	if hostBits < 64 {
		size = uint64(1)<<hostBits - 2
	}
	return &pool{prefix: prefix, flag: flag, size: size, byName: map[string]netip.Addr{}, taken: map[netip.Addr]string{}}
}

// at returns the address at offset from the prefix's first address.
func (p *pool) at(offset uint64) netip.Addr {
	if p.prefix.Addr().Is4() {
		b := p.prefix.Addr().As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(offset))
		return netip.AddrFrom4(b)
	}
	b := p.prefix.Addr().As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+offset)
	return netip.AddrFrom16(b)
}

// assign returns name's address, taking one if name has none yet; a new address is never one
// of avoid.
func (p *pool) assign(name string, avoid ...netip.Addr) (netip.Addr, error) {
	if a, ok := p.byName[name]; ok {
		return a, nil
	}
	var first uint64
	if p.prefix.Addr().Is4() {
		// The 32-bit hash keeps IPv4 addresses what they were before IPv6 pools existed.
		h := fnv.New32a()
		h.Write([]byte(name))
		first = uint64(h.Sum32()) % p.size
	} else {
		h := fnv.New64a()
		h.Write([]byte(name))
		first = h.Sum64() % p.size
	}
	// Only taken and avoided addresses are skipped, so a free one is found within
	// len(taken)+len(avoid)+1 steps even in a huge pool.
	for i := range p.size {
		a := p.at(1 + (first+i)%p.size)
		if _, used := p.taken[a]; !used && !slices.Contains(avoid, a) {
			p.byName[name], p.taken[a] = a, name
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("address pool %s is exhausted (%d names): use a larger %s", p.prefix, p.size, p.flag)
}

// release frees name's address.
func (p *pool) release(name string) {
	if a, ok := p.byName[name]; ok {
		delete(p.byName, name)
		delete(p.taken, a)
	}
}
