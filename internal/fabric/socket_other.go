//go:build !linux

package fabric

import "time"

// unreadBytes cannot look into the socket here.
func unreadBytes(any) bool { return false }

// tuneTCP leaves the system's retransmit settings alone here.
func tuneTCP(any, time.Duration) {}
