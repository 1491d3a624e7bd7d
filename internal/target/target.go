// Package target is the one spelling of a service target that the hub (policy) and the router
// (its assigned-targets dialer) compare: both must agree on it, or a dial the policy allows is
// refused by the router, or worse, the other way round.
package target

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Addr is one address:port pair: a host name or IP address, and a port.
type Addr struct {
	Address string // normalised (NormalizeHost)
	Port    int
}

// String is host:port, with an IPv6 address in brackets ([fd77:7::2]:80): the form every
// command prints and parses.
func (a Addr) String() string { return net.JoinHostPort(a.Address, strconv.Itoa(a.Port)) }

// Normalize returns the Addr for an address and port as written in a service or a dial request.
func Normalize(address string, port int) Addr {
	return Addr{Address: NormalizeHost(address), Port: port}
}

// NormalizeHost returns the canonical spelling of a host name or address: a name in lower case
// without its trailing dot; an IP address in its RFC 5952 form (IPv6 lower case with the
// longest run of zero groups compressed, so FD77:7:0::2 and fd77:7:0:0:0:0:0:2 are both
// fd77:7::2), an IPv4-mapped IPv6 address as the IPv4 address it maps. Brackets around an
// IPv6 address are dropped.
func NormalizeHost(address string) string {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(address, "["), "]")); err == nil {
		return a.Unmap().String()
	}
	return strings.TrimSuffix(strings.ToLower(address), ".")
}
