// Package control is the control channel between a router and the controller (port 6262): the
// messages the two exchange and how they are framed on the wire.
//
// Transport: one TLS 1.3 connection per router, both sides authenticated by certificates from the
// network CA (ALPN "ztna-control/1"), carrying length-prefixed JSON frames: a 4-byte big-endian
// length, then one Envelope. A stream multiplexer would buy nothing here: the channel carries a few
// messages per second in both directions, so one ordered stream with request ids for the single
// request/response pair (certificate renewal) is enough. Messages above MaxFrameSize (the
// assignment of a router hosting 20,000 services, a 20 MB hub snapshot, the health of thousands
// of failing services) travel as chunk frames to a peer that announced how much it reassembles
// (Hello.MaxMessage, Welcome.MaxMessage); other frames pass between two chunks (conn.go). JSON keeps the
// channel debuggable and lets either side add fields without breaking the other: unknown fields are
// ignored and unknown message types are skipped, while ProtocolVersion guards incompatible changes.
//
// Conversation:
//
//	router                                   controller
//	hello{version, failure_domain, image} →
//	                                       ← welcome{id, name, roles, heartbeat interval,
//	                                                 fabric (hubs), control (controller endpoints)}
//	                                       ← assignment{services}   (on connect and on every change)
//	heartbeat{service health}             →
//	                                       ← heartbeat_ack{server time}
//	renew{csr}                            →
//	                                       ← renewed{certificate}   (same envelope id)
//	                                       ← revoked{reason}        (router deleted; then close)
//
//	hub-mode routers (hello.hub, role "hub") additionally:
//	                                       ← hub_snapshot{services, routers, identities, policies}
//	                                                                (after welcome and on every change)
//	renew{csr, kind: "hub"}               →
//	                                       ← renewed{hub certificate}
//	                                       ← error{message}         (fatal; then close)
package control
