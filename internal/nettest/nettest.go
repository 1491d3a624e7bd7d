// Package nettest gives tests real loopback TCP connections: a connected pair, a service that
// handles each accepted connection, and a relay that delays what crosses it like a long network
// path. Nothing here fakes the network.
package nettest

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TCPPair returns both ends of a loopback TCP connection, closed when the test ends.
func TCPPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-accepted
	if a == nil {
		c.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); a.Close() })
	return c.(*net.TCPConn), a.(*net.TCPConn)
}

// Serve runs handle, in a goroutine of its own, for every connection to a new loopback listener
// until the test ends, and returns the listener's address.
func Serve(t testing.TB, handle func(net.Conn)) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

// DelayRelay listens on loopback and relays every connection to target, holding each byte for
// delay in each direction: a path with a round trip of 2*delay and no bandwidth limit of its own
// (it buffers whatever the sender sends, so TCP's own window never waits on it). It returns the
// address to dial instead of target; it stops when the test ends.
func DelayRelay(t testing.TB, target string, delay time.Duration) string {
	t.Helper()
	return Serve(t, func(c net.Conn) {
		u, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			return
		}
		go delayCopy(u, c, delay)
		delayCopy(c, u, delay)
	}).String()
}

// delayCopy copies src to dst, each chunk leaving delay after it arrived; at the end it closes
// both.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	q := make(chan chunk, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ch := range q {
			time.Sleep(time.Until(ch.due))
			if _, err := dst.Write(ch.b); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 256<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{time.Now().Add(delay), bytes.Clone(buf[:n])}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	dst.Close()
	src.Close()
}
