// Package fabric is the data-plane link layer: TLS 1.3 connections between routers or client
// identities and hubs, with certificates verified in both directions and the peer authorised by
// the kind in its ztna:// URI SAN, carrying many streams over one connection (xtaci/smux, protocol
// version 2 for per-stream flow control). A control stream on every link carries keepalives that
// measure the round-trip time; a link whose peer sends nothing at all is first reported
// unhealthy and then closed.
//
// Every other stream starts with a compact binary Request (what to open, for whom, plus the first
// end-to-end handshake message) answered by a Response (a result code, plus the handshake reply).
//
// Why smux: a hub relays a stream from one link to another with smux's Stream.WriteTo, which
// hands over the received frame buffers without copying and holds no buffer while the stream is
// idle; received frames come from a shared pool; protocol v2 gives every stream its own window,
// so one slow reader cannot stall its link. yamux keeps a per-stream receive buffer until
// Shrink, has no WriteTo (a relay needs a buffer per direction), writes every frame header as a
// separate write (a TLS record and, here, a system call of its own) and copies bodies twice.
// yamux does add less latency per hop: 64-byte ping-pong over one loopback TCP connection on the
// 2-core target machine measured 26 µs bare, 38 µs with yamux, 51 µs with smux (smux passes each
// frame through two goroutines). QUIC in Go runs in user space over UDP, far below 1 GB/s per
// stream on two cores.
//
// smux v1.5.34 returns a frame buffer consumed through Stream.Read to the wrong pool class, so
// readers that move bulk data use WriteTo where they can (the hub's relay, the router's
// end-to-end decryption); Read is for small reads and for SDK users.
package fabric
