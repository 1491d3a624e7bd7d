package sockread

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Readv reads what the socket has into the buffers in turn (one readv system call), waiting in
// the runtime poller like Read: a caller can place data straight where it belongs, between
// headers it will fill in later.
func Readv(rc syscall.RawConn, iovs [][]byte) (int, error) {
	return rawRead(rc, false, "readv", func(fd int) (int, error) { return unix.Readv(fd, iovs) })
}
