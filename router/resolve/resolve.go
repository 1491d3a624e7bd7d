// Package resolve builds the DNS resolver a router uses for service FQDNs: the host's resolver, or
// the customer's DNS server named with --dns-server host:port (services often live in private
// zones that only the customer's DNS knows).
package resolve

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// New returns the host resolver when server is empty; otherwise a resolver that sends every query
// to server ("host:port", UDP with TCP fallback as the answer requires).
func New(server string) (*net.Resolver, error) {
	if server == "" {
		return net.DefaultResolver, nil
	}
	if err := Validate(server); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	return &net.Resolver{
		PreferGo: true, // the cgo resolver would ignore Dial and ask the host's servers
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		},
	}, nil
}

// Validate checks a --dns-server value.
func Validate(server string) error {
	host, port, err := net.SplitHostPort(server)
	if err != nil || host == "" {
		return fmt.Errorf("DNS server %q must be host:port, e.g. 10.0.0.2:53", server)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("DNS server %q: port must be 1-65535", server)
	}
	return nil
}
