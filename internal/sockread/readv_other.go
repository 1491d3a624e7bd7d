//go:build !linux

package sockread

import "syscall"

// Readv is not available here: callers read into one buffer.
func Readv(syscall.RawConn, [][]byte) (int, error) { return 0, ErrUnsupported }
