//go:build unix

package nettest

import (
	"net"
	"syscall"
	"testing"
)

// WaitReadable blocks until c has received data, without reading it: a test that needs bytes
// to be in a socket before the code under test looks at it waits on this, not on a sleep.
func WaitReadable(t testing.TB, c net.Conn) {
	t.Helper()
	sc, ok := c.(syscall.Conn)
	if !ok {
		t.Fatalf("WaitReadable: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var peekErr error
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return peekErr != syscall.EAGAIN // false: the poller waits for the socket to be readable
	})
	if err == nil {
		err = peekErr
	}
	if err != nil {
		t.Fatalf("WaitReadable: %v", err)
	}
}
