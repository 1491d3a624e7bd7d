//go:build !unix

package e2e

import "syscall"

// waitReadable cannot probe sockets here; the read itself waits (with its buffer).
func waitReadable(syscall.RawConn) error { return nil }
