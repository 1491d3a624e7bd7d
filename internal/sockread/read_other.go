//go:build !unix

package sockread

import "syscall"

// Read cannot read sockets directly here: callers read the connection the usual way.
func Read(syscall.RawConn, []byte, bool) (int, error) { return 0, ErrUnsupported }
