//go:build unix

package sockread

import (
	"io"
	"os"
	"syscall"
)

// Read reads what the socket has into p, waiting for data (and honouring the connection's read
// deadline) in the runtime poller. With noWait an idle socket returns ErrWouldBlock instead. The
// end of the stream is io.EOF.
func Read(rc syscall.RawConn, p []byte, noWait bool) (int, error) {
	return rawRead(rc, noWait, "read", func(fd int) (int, error) { return syscall.Read(fd, p) })
}

// rawRead runs the read system call read once the socket has data.
func rawRead(rc syscall.RawConn, noWait bool, name string, read func(fd int) (int, error)) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = read(int(fd))
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
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, os.NewSyscallError(name, rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
