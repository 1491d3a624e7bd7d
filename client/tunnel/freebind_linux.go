package tunnel

import (
	"errors"
	"syscall"
)

// freebind lets a listener bind an IPv6 address of the pool. Linux treats a prefix routed as
// local (ip -6 route add local <prefix> dev lo) as this host's for traffic, as it does 127/8,
// but bind() accepts only addresses configured on an interface unless the socket is freebind.
func freebind(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
	})
	return errors.Join(err, serr)
}
