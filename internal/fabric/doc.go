// Package fabric is the data-plane link layer: TLS 1.3 connections between routers or client
// identities and hubs, with certificates verified in both directions and the peer authorised by
// the kind in its ztna:// URI SAN, carrying many streams over one connection (xtaci/smux, protocol
// version 2 for per-stream flow control). A control stream on every link carries keepalives that
// measure the round-trip time and close a link whose peer has gone silent.
//
// Every other stream starts with a compact binary Request (what to open, for whom, plus the first
// end-to-end handshake message) answered by a Response (a result code, plus the handshake reply).
//
// Why smux over yamux or QUIC (measured on the 2-core target machine, see tests/bench): smux hands
// received frames to Stream.WriteTo without copying, so a hub relays a stream with no per-stream
// buffer while the stream is idle, and its buffers return to a shared pool once read; yamux keeps a
// per-stream receive buffer, writes every frame header as its own TLS record and copies bodies
// twice. QUIC in Go runs over UDP in user space and is far below 1 GB/s per stream here.
package fabric
