//go:build !unix

package e2e

import "syscall"

// readReady cannot read sockets directly here: ReadFrom reads through the reader (with its
// buffer).
func readReady(syscall.RawConn, []byte, bool) (int, error) { return 0, errNoRawRead }
