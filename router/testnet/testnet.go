// Package testnet gives router tests real TCP endpoints on loopback: an open port that accepts and
// closes connections, and a port known to be closed.
package testnet

import (
	"net"
	"testing"

	"github.com/ztna/ztna/internal/nettest"
)

// OpenPort listens on a loopback port until the test ends, accepting and closing connections.
func OpenPort(t testing.TB) int {
	t.Helper()
	return nettest.Serve(t, func(c net.Conn) { c.Close() }).Port
}

// ClosedPort returns a loopback port that was just listening and no longer is.
func ClosedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
