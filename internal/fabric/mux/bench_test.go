package mux

import (
	"io"
	"net"
	"testing"
)

// The cost the multiplexer adds to one loopback hop: 64-byte ping-pong over a stream against the
// same over the bare TCP connection, and bulk throughput in 1 MiB writes.

func pingPong(b *testing.B, a, c io.ReadWriter) {
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		a.Write(msg)
		if _, err := io.ReadFull(a, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPingPongTCP(b *testing.B) {
	a, c := tcpPair(b)
	pingPong(b, a, c)
}

func BenchmarkPingPongMux(b *testing.B) {
	a, c := streamPair(b)
	pingPong(b, a, c)
}

func BenchmarkThroughputMux(b *testing.B) {
	a, c := streamPair(b)
	go io.Copy(io.Discard, c)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := a.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func streamPair(b *testing.B) (net.Conn, net.Conn) {
	cs, ss := sessions(b, DefaultConfig())
	x, _ := cs.OpenStream()
	x.Write([]byte{0})
	y, err := ss.AcceptStream()
	if err != nil {
		b.Fatal(err)
	}
	y.Read(make([]byte, 1))
	return x, y
}

// The same with the fabric's budget (16 KiB initial windows, grown from the session window
// while read): a single stream must move as fast as with 4 MiB granted up front.
func BenchmarkThroughputMuxBudgeted(b *testing.B) {
	cfg := DefaultConfig()
	cfg.InitialWindow = 16 << 10
	cs, ss := sessions(b, cfg)
	x, _ := cs.OpenStream()
	x.Write([]byte{0})
	y, err := ss.AcceptStream()
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, y)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := x.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
