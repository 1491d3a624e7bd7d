// Package fabric is the data-plane link layer: TLS 1.3 connections between routers or client
// identities and hubs, with certificates verified in both directions and the peer authorised by
// the kind in its ztna:// URI SAN, carrying many streams over one connection (package mux:
// per-stream windows, frames of up to 1 MiB written straight from the writer's goroutine). A
// control stream on every link carries keepalives that measure the round-trip time; a link whose
// peer sends nothing at all is first reported unhealthy and then closed.
//
// Every other stream starts with a compact binary Request (what to open, for whom, plus the first
// end-to-end handshake message) answered by a Response (a result code, plus the handshake reply).
// The request travels in the stream's first frame, so opening a stream costs no extra round.
//
// Once crypto/tls has run the handshake, package tlsrecord carries the records: a multiplexer
// frame leaves as whole TLS records in one write system call, and received records are
// decrypted straight into the frame's buffer, without crypto/tls's copies.
package fabric
