//go:build unix

package e2e

import (
	"syscall"
)

// waitReadable blocks until the socket has data, an end of file or an error, without a read
// buffer: a 1-byte MSG_PEEK probe tells readiness, and the runtime poller does the waiting.
func waitReadable(rc syscall.RawConn) error {
	var probe [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), probe[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}
