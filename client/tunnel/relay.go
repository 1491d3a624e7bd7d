package tunnel

import (
	"errors"
	"io"
	"net"
)

// Stream is a connection whose sending side can be ended on its own (TCP connections and the
// SDK's end-to-end streams both are).
type Stream interface {
	net.Conn
	CloseWrite() error
}

// aborter is a stream that can end without its clean end-of-stream marker, so the peer sees a
// failure instead of a complete stream (the SDK's end-to-end streams can).
type aborter interface{ Abort() error }

// Relay copies both directions between a local connection and an overlay stream until both
// have ended, then closes both. A clean end in one direction is passed on as a half-close; a
// failure in either direction aborts both ends (a TCP reset locally, a truncated stream on the
// overlay), so neither side mistakes a broken stream for a complete one. It returns the first
// failure, or nil when both directions ended cleanly.
func Relay(local *net.TCPConn, remote Stream) error {
	errc := make(chan error, 1)
	go func() {
		err := pass(local, remote) // overlay → local
		if err != nil {
			abort(local, remote) // also ends the other direction
		}
		errc <- err
	}()
	// local → overlay on this goroutine, which runs on at once: the program's first bytes,
	// usually waiting in the socket by the time the overlay stream is up, then leave with the
	// end-to-end handshake's last message in one frame (see e2e.Conn).
	err := pass(remote, local)
	if err != nil {
		abort(local, remote)
		<-errc
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	return errors.Join(local.Close(), remote.Close())
}

// pass copies src to dst until src ends cleanly, then half-closes dst. The overlay stream does
// the copying: its WriteTo (when it is src) and ReadFrom (when it is dst) hold a buffer only
// while a frame is in flight, so idle connections cost no buffer memory, and ReadFrom seals up to
// 1 MiB per write. io.Copy alone would not get there for local → overlay: a *net.TCPConn source
// is an io.WriterTo, which io.Copy prefers, and it copies through a 32 KiB buffer into Write.
func pass(dst, src Stream) error {
	var err error
	if rf, ok := dst.(io.ReaderFrom); ok && !isTCP(dst) {
		_, err = rf.ReadFrom(src)
	} else {
		_, err = io.Copy(dst, src)
	}
	if err != nil {
		return err
	}
	return dst.CloseWrite()
}

func isTCP(c Stream) bool {
	_, ok := c.(*net.TCPConn)
	return ok
}

func abort(local *net.TCPConn, remote Stream) {
	local.SetLinger(0) // close with RST, not FIN
	local.Close()
	if a, ok := remote.(aborter); ok {
		a.Abort()
	} else {
		remote.Close()
	}
}
