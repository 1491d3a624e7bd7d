package sockread

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Readv reads what the socket has into the buffers in turn (one readv system call), waiting in
// the runtime poller like Read: a caller can place data straight where it belongs, between
// headers it will fill in later.
func Readv(rc syscall.RawConn, iovs [][]byte) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Readv(int(fd), iovs)
			switch rerr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("readv", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
