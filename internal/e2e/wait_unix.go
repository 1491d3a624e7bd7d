//go:build unix

package e2e

import (
	"io"
	"os"
	"syscall"
)

// readReady reads what the socket has into p, leaving the waiting to the runtime poller: the
// caller holds no buffer but p (small, part of the Conn) while the socket is idle, and a small
// message costs one read system call after the wake-up. With noWait, an idle socket returns
// errWouldBlock instead.
func readReady(rc syscall.RawConn, p []byte, noWait bool) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			switch rerr {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return noWait
			}
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
