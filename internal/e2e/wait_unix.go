//go:build unix

package e2e

import (
	"os"
	"syscall"
)

// waitReadable blocks until the socket has data, an end of file or an error, without a read
// buffer: a 1-byte MSG_PEEK probe tells readiness, and the runtime poller does the waiting.
// A socket error (a reset) is consumed by the probe, so it is returned here.
func waitReadable(rc syscall.RawConn) error {
	var probe [1]byte
	var sockErr error
	err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), probe[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EAGAIN:
			return false
		case nil, syscall.EINTR, syscall.ENOTSOCK:
		default:
			sockErr = os.NewSyscallError("recvfrom", err)
		}
		return true
	})
	if err != nil {
		return err
	}
	return sockErr
}
