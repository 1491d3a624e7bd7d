package fabric

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unreadBytes reports whether the kernel holds received bytes this process has not read yet:
// then the peer is not silent, this process is merely slow to read (starved of CPU).
func unreadBytes(c any) bool {
	n := 0
	onSocket(c, func(fd int) { n, _ = unix.IoctlGetInt(fd, unix.SIOCINQ) })
	return n > 0
}

// maxRetransmitInterval caps TCP's retransmit backoff on a link, so that the first packet after
// an outage leaves at most this long after the path is back (uncapped, the 6th retransmit
// waits 6.4 s and an outage of 6.3 s is noticed 12.6 s after it began).
const maxRetransmitInterval = time.Second

// tuneTCP fits the link's TCP connection to its timeout: retransmits at least every second
// (TCP_RTO_MAX_MS, Linux 6.15 and later; older kernels refuse it and keep their backoff), and
// TCP_USER_TIMEOUT at the link timeout, so the kernel neither gives up on unacknowledged data
// before the link would (it never does by default) nor keeps retransmitting into a dead path for
// minutes after the link has been closed.
func tuneTCP(c any, timeout time.Duration) {
	onSocket(c, func(fd int) {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_RTO_MAX_MS, int(maxRetransmitInterval/time.Millisecond))
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(timeout/time.Millisecond))
	})
}

// onSocket runs f on c's socket, if c has one.
func onSocket(c any, f func(fd int)) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { f(int(fd)) })
}
