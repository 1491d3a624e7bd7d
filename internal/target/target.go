// Package target is the one spelling of a service target that the hub (policy) and the router
// (its assigned-targets dialer) compare: both must agree on it, or a dial the policy allows is
// refused by the router, or worse, the other way round.
package target

import (
	"net"
	"strconv"
	"strings"
)

// Addr is one address:port pair: a host name or IP address, and a port.
type Addr struct {
	Address string // normalised: lower case, no trailing dot
	Port    int
}

func (a Addr) String() string { return net.JoinHostPort(a.Address, strconv.Itoa(a.Port)) }

// Normalize returns the Addr for an address and port as written in a service or a dial request.
func Normalize(address string, port int) Addr {
	return Addr{Address: NormalizeHost(address), Port: port}
}

// NormalizeHost returns the canonical spelling of a host name or address.
func NormalizeHost(address string) string {
	return strings.TrimSuffix(strings.ToLower(address), ".")
}
