// Package sockread reads a socket without holding a buffer while it waits for data: the runtime
// poller does the waiting, and the caller chooses the buffer once bytes have arrived. An idle
// stream or link then costs no receive buffer, and a small message costs one read system call
// after the wake-up.
package sockread

import (
	"errors"
	"net"
	"syscall"
)

// ErrUnsupported: the platform or the connection cannot be read directly; read it the usual way.
var ErrUnsupported = errors.New("sockread: no direct socket reads here")

// ErrWouldBlock: Read without waiting found the socket idle.
var ErrWouldBlock = errors.New("sockread: socket idle")

// RawConn returns the raw socket of r when r is a TCP or Unix socket itself, or nil. A type
// that wraps a socket (and may expose it by embedding) is not read around: its own Read and
// Write may do more than the socket's.
func RawConn(r any) syscall.RawConn {
	var sc syscall.Conn
	switch c := r.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
