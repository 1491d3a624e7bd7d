package fabric

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// unreadBytes reports whether the kernel holds received bytes this process has not read yet:
// then the peer is not silent, this process is merely slow to read (starved of CPU).
func unreadBytes(c any) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n > 0
}
