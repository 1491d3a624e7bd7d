//go:build !linux

package tunnel

import "syscall"

// freebind is Linux-only; elsewhere the pool's addresses must be configured on an interface.
var freebind func(network, address string, c syscall.RawConn) error
