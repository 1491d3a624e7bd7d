// Package e2e is the end-to-end encryption between a dialing client identity and the router that
// hosts the service: Noise_XX_25519_AESGCM_SHA256 (github.com/flynn/noise) — ephemeral X25519 for
// forward secrecy, AES-256-GCM, mutual authentication — with each side's Noise static key bound to
// its controller-issued certificate.
//
// Binding: each end generates a Noise static key pair in memory and signs
// SHA-256(bindingContext || static public key) with its certificate's private key (the key the
// controller certified; it never leaves the host). The handshake payload, encrypted by Noise,
// carries the certificate chain and that signature. A peer accepts the handshake only if the
// chain verifies against the network CA, the URI SAN names the expected kind (the initiator
// must be an identity, the responder a router) and the signature covers the static key the Noise
// handshake proved possession of. A hub relaying the handshake holds neither a router's nor an
// identity's certificate key, so it cannot substitute its own static key: it relays ciphertext
// it cannot read or alter. (libp2p's Noise handshake binds identity keys the same way.)
//
// The prologue holds the target the client asked for, so a relay that redirects a stream to a
// different target makes the handshake fail.
//
// Capabilities: the client announces what it supports in message 1's payload (one byte of
// flags; a router that predates them ignores the payload), and the router answers with the flags
// both support in a trailing byte of its identity payload — only to a client that announced
// them, since one that predates them refuses the trailer. Both are covered by the handshake hash:
// a relay that alters either makes the handshake fail. capRekey: both ends rekey (Noise §11.3)
// every rekeyFrames frames in each direction, so that a stream stays within AES-GCM's usage limit
// (some 2^22 full frames, ~390 GB, per key).
//
// Transport: frames of a 2-byte length and one AEAD ciphertext (at most 65510 bytes of
// plaintext, so a frame fills exactly one multiplexer frame). An empty frame is the authenticated
// end of stream: Read returns io.EOF only after it, and a stream that ends without it fails with
// ErrTruncated — a broken relay or router can never pass for a complete transfer.
package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// Capability flags exchanged in the handshake (see the package comment).
const (
	capRekey = 1 << 0
	// allCaps is what this version supports.
	allCaps = capRekey
)

// bindingContext separates the static-key signature from every other use of certificate keys.
const bindingContext = "ztna e2e noise static key v1\x00"

// prologuePrefix versions the protocol; the target follows it.
const prologuePrefix = "ztna e2e v1\x00"

// ErrHandshake wraps every authentication failure of the handshake.
var ErrHandshake = errors.New("e2e: handshake failed")

// Peer is the authenticated other end of a Conn.
type Peer struct {
	Kind string // api.KindRouter for a client, api.KindIdentity for a router
	ID   string
	Cert *x509.Certificate
}

// Endpoint is one side's end-to-end key material: the certificate (followed through renewals)
// with its bound Noise static key, and the CA that peers' certificates must chain to.
// It is safe for concurrent use.
type Endpoint struct {
	cert  *pki.CertSlot
	roots *x509.CertPool
	caps  byte // capabilities this end announces (tests clear them to act as an earlier version)
	// The schedules of this end's connections; fields rather than package variables so that
	// tests that shorten them run in parallel with the rest.
	flushDelay  time.Duration // see Conn.holdHandshake
	rekeyFrames uint64        // see Conn.sealFrame

	mu     sync.Mutex
	forCrt *tls.Certificate // the certificate local was built from
	local  *local

	cache verifyCache
	peers peerStatics
}

// local is the current static key and the handshake payload that proves it.
type local struct {
	static  noise.DHKey
	key     *dhKey // static
	payload []byte
}

// NewEndpoint returns an endpoint presenting the certificate in slot and trusting ca.
func NewEndpoint(slot *pki.CertSlot, ca *x509.Certificate) *Endpoint {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &Endpoint{cert: slot, roots: roots, caps: allCaps, flushDelay: handshakeFlushDelay, rekeyFrames: rekeyFrames, cache: verifyCache{m: map[[32]byte]cached{}}, peers: peerStatics{m: map[string][]byte{}}}
}

// current returns the static key bound to the slot's current certificate, binding a new one
// after a renewal.
func (e *Endpoint) current() (*local, error) {
	cert := e.cert.Get()
	if cert == nil {
		return nil, errors.New("e2e: no certificate configured")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.forCrt == cert {
		return e.local, nil
	}
	l, err := bind(cert)
	if err != nil {
		return nil, err
	}
	e.forCrt, e.local = cert, l
	return l, nil
}

func bind(cert *tls.Certificate) (*local, error) {
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok || len(cert.Certificate) == 0 {
		return nil, errors.New("e2e: certificate has no signing key")
	}
	key, static, err := generateX25519(rand.Reader)
	if err != nil {
		return nil, err
	}
	sig, err := signBinding(signer, static.Public)
	if err != nil {
		return nil, fmt.Errorf("e2e: sign static key: %w", err)
	}
	// The chain without a self-signed root: the peer has the CA already.
	var chain [][]byte
	for i, der := range cert.Certificate {
		if i > 0 {
			if c, err := x509.ParseCertificate(der); err == nil && bytes.Equal(c.RawIssuer, c.RawSubject) {
				continue
			}
		}
		chain = append(chain, der)
	}
	if len(chain) > 255 {
		return nil, errors.New("e2e: certificate chain too long")
	}
	p := []byte{byte(len(chain))}
	for _, der := range chain {
		p = binary.BigEndian.AppendUint16(p, uint16(len(der)))
		p = append(p, der...)
	}
	p = binary.BigEndian.AppendUint16(p, uint16(len(sig)))
	p = append(p, sig...)
	return &local{static: static, key: key, payload: p}, nil
}

func bindingDigest(static []byte) []byte {
	h := sha256.New()
	h.Write([]byte(bindingContext))
	h.Write(static)
	return h.Sum(nil)
}

func signBinding(k crypto.Signer, static []byte) ([]byte, error) {
	msg := append([]byte(bindingContext), static...)
	switch k.Public().(type) {
	case *ecdsa.PublicKey:
		return k.Sign(rand.Reader, bindingDigest(static), crypto.SHA256)
	case ed25519.PublicKey:
		return k.Sign(rand.Reader, msg, crypto.Hash(0))
	case *rsa.PublicKey:
		return k.Sign(rand.Reader, bindingDigest(static), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		return nil, fmt.Errorf("unsupported key type %T", k.Public())
	}
}

func checkBinding(leaf *x509.Certificate, static, sig []byte) error {
	msg := append([]byte(bindingContext), static...)
	var alg x509.SignatureAlgorithm
	switch leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		alg = x509.ECDSAWithSHA256
	case ed25519.PublicKey:
		alg = x509.PureEd25519
	case *rsa.PublicKey:
		alg = x509.SHA256WithRSAPSS
	default:
		return fmt.Errorf("unsupported key type %T", leaf.PublicKey)
	}
	return leaf.CheckSignature(alg, msg, sig)
}

// verify checks a peer's handshake payload against the static key the handshake authenticated,
// and returns the capabilities the payload's trailer names.
func (e *Endpoint) verify(payload, static []byte, wantKind string) (Peer, byte, error) {
	key := sha256.Sum256(append(append(append([]byte(wantKind), 0), static...), payload...))
	if c, ok := e.cache.get(key); ok {
		return c.peer, c.caps, nil
	}
	p, caps, notAfter, err := e.verifySlow(payload, static, wantKind)
	if err != nil {
		return Peer{}, 0, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	e.cache.put(key, cached{peer: p, caps: caps, notAfter: notAfter})
	return p, caps, nil
}

func (e *Endpoint) verifySlow(payload, static []byte, wantKind string) (Peer, byte, time.Time, error) {
	if len(payload) < 1 {
		return Peer{}, 0, time.Time{}, errors.New("empty identity payload")
	}
	n := int(payload[0])
	rest := payload[1:]
	field := func() ([]byte, error) {
		if len(rest) < 2 {
			return nil, errors.New("truncated identity payload")
		}
		l := int(binary.BigEndian.Uint16(rest))
		if len(rest)-2 < l {
			return nil, errors.New("truncated identity payload")
		}
		f := rest[2 : 2+l]
		rest = rest[2+l:]
		return f, nil
	}
	var certs []*x509.Certificate
	for range n {
		der, err := field()
		if err != nil {
			return Peer{}, 0, time.Time{}, err
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Peer{}, 0, time.Time{}, fmt.Errorf("peer certificate: %w", err)
		}
		certs = append(certs, c)
	}
	sig, err := field()
	if err != nil {
		return Peer{}, 0, time.Time{}, err
	}
	var caps byte
	if len(rest) == 1 { // the capabilities trailer
		caps, rest = rest[0], rest[1:]
	}
	if len(certs) == 0 || len(rest) != 0 {
		return Peer{}, 0, time.Time{}, errors.New("malformed identity payload")
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: e.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return Peer{}, 0, time.Time{}, fmt.Errorf("peer certificate: %w", err)
	}
	kind, id, err := pki.Identity(leaf)
	if err != nil {
		return Peer{}, 0, time.Time{}, err
	}
	if kind != wantKind {
		return Peer{}, 0, time.Time{}, fmt.Errorf("peer is %s/%s, but only a %s may take this end", kind, id, wantKind)
	}
	if err := checkBinding(leaf, static, sig); err != nil {
		return Peer{}, 0, time.Time{}, fmt.Errorf("%s/%s: Noise static key not signed by its certificate key: %v", kind, id, err)
	}
	notAfter := leaf.NotAfter
	for _, c := range chains[0] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return Peer{Kind: kind, ID: id, Cert: leaf}, caps, notAfter, nil
}

// verifyCache remembers verified (payload, static key) pairs until the certificate expires:
// a client that dials the same router a thousand times pays for chain verification once.
type verifyCache struct {
	mu sync.Mutex
	m  map[[32]byte]cached
}

type cached struct {
	peer     Peer
	caps     byte
	notAfter time.Time
}

const verifyCacheSize = 4096

func (c *verifyCache) get(k [32]byte) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return cached{}, false
	}
	if time.Now().After(e.notAfter) {
		delete(c.m, k)
		return cached{}, false
	}
	return e, true
}

func (c *verifyCache) put(k [32]byte, v cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= verifyCacheSize {
		for old := range c.m { // map order is random: evicts an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// peerStatics remembers the Noise static key each peer proved last time, by what this end knows
// before the handshake (a client: the target; a router: the identity the hub announces), so the
// DH on that key can start while the peer's message is still on its way. A renewed or restarted
// peer has a new key: the guess misses and the DH is computed when Noise needs it.
type peerStatics struct {
	mu sync.Mutex
	m  map[string][]byte
}

const peerStaticsSize = 4096

func (p *peerStatics) get(hint string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[hint]
}

func (p *peerStatics) put(hint string, static []byte) {
	if hint == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.m[hint]; ok && bytes.Equal(old, static) {
		return
	}
	if len(p.m) >= peerStaticsSize {
		for k := range p.m { // map order is random: evicts an arbitrary entry
			delete(p.m, k)
			break
		}
	}
	p.m[hint] = bytes.Clone(static)
}

func prologue(target string) []byte { return []byte(prologuePrefix + target) }

// Initiator is a client's handshake in progress.
type Initiator struct {
	e      *Endpoint
	dh     *handshakeDH
	hs     *noise.HandshakeState
	local  *local
	target string
	caps   byte // announced in hello
}

// Initiate starts a handshake with the router that will host target; hello goes to the router
// inside the stream-open request.
func (e *Endpoint) Initiate(target string) (in *Initiator, hello []byte, err error) {
	l, err := e.current()
	if err != nil {
		return nil, nil, err
	}
	dh := newHandshakeDH(l.key)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: dh.suite(), Pattern: noise.HandshakeXX, Initiator: true,
		Prologue: prologue(target), StaticKeypair: l.static,
	})
	if err != nil {
		return nil, nil, err
	}
	var announce []byte
	if e.caps != 0 {
		announce = []byte{e.caps}
	}
	hello, _, _, err = hs.WriteMessage(nil, announce)
	if err != nil {
		return nil, nil, err
	}
	// The reply's "es": DH(our ephemeral, the router's static), if we can guess the router.
	dh.startDH(dh.ephemeral(), e.peers.get(target))
	return &Initiator{e: e, dh: dh, hs: hs, local: l, target: target, caps: e.caps}, hello, nil
}

// Finish processes the router's reply, which must prove a router certificate, and returns the
// encrypted connection; the last handshake message goes to raw with the connection's first write
// (or alone, see handshakeFlushDelay).
func (in *Initiator) Finish(raw net.Conn, reply []byte) (*Conn, error) {
	payload, _, _, err := in.hs.ReadMessage(nil, reply)
	if err != nil {
		return nil, fmt.Errorf("%w: router reply: %v", ErrHandshake, err)
	}
	peer, caps, err := in.e.verify(payload, in.hs.PeerStatic(), api.KindRouter)
	if err != nil {
		return nil, err
	}
	if caps&^in.caps != 0 {
		return nil, fmt.Errorf("%w: router %s answered capabilities %#x to an announcement of %#x", ErrHandshake, peer.ID, caps, in.caps)
	}
	in.e.peers.put(in.target, in.hs.PeerStatic())
	msg3, send, recv, err := in.hs.WriteMessage(make([]byte, 2, 2+len(in.local.payload)+64), in.local.payload)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(msg3, uint16(len(msg3)-2))
	c := newConn(raw, peer, in.target, send, recv, caps, in.e.rekeyFrames)
	c.holdHandshake(msg3, in.e.flushDelay)
	return c, nil
}

// Responder is a router's handshake in progress.
type Responder struct {
	e        *Endpoint
	dh       *handshakeDH
	hs       *noise.HandshakeState
	target   string
	identity string
	caps     byte // agreed with the client
}

// Respond processes a client's hello for target and returns the reply to send back in the
// stream-open response. identity is who the hub says is dialing ("" if unknown); it only lets
// the handshake start a DH early, and authenticates nothing: Finish proves the identity.
func (e *Endpoint) Respond(target, identity string, hello []byte) (r *Responder, reply []byte, err error) {
	l, err := e.current()
	if err != nil {
		return nil, nil, err
	}
	dh := newHandshakeDH(l.key)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: dh.suite(), Pattern: noise.HandshakeXX, Initiator: false,
		Prologue: prologue(target), StaticKeypair: l.static,
	})
	if err != nil {
		return nil, nil, err
	}
	announced, _, _, err := hs.ReadMessage(nil, hello)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client hello: %v", ErrHandshake, err)
	}
	payload, caps := l.payload, byte(0)
	if len(announced) > 0 && e.caps != 0 { // a client that knows capabilities: answer with ours
		caps = announced[0] & e.caps
		payload = append(slices.Clip(l.payload), caps)
	}
	reply, _, _, err = hs.WriteMessage(nil, payload)
	if err != nil {
		return nil, nil, err
	}
	if identity != "" {
		// The client's last message's "se": DH(our ephemeral, its static), while the reply is
		// on its way.
		dh.startDH(dh.ephemeral(), e.peers.get(identity))
	}
	return &Responder{e: e, dh: dh, hs: hs, target: target, identity: identity, caps: caps}, reply, nil
}

// Finish reads the client's last handshake message from raw, which must prove an identity
// certificate, and returns the encrypted connection. The caller bounds it with a deadline on raw.
func (r *Responder) Finish(raw net.Conn) (*Conn, error) {
	var h [2]byte
	if _, err := readFull(raw, h[:]); err != nil {
		return nil, fmt.Errorf("e2e: read handshake: %w", err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(h[:]))
	if _, err := readFull(raw, msg); err != nil {
		return nil, fmt.Errorf("e2e: read handshake: %w", err)
	}
	payload, recv, send, err := r.hs.ReadMessage(nil, msg)
	if err != nil {
		return nil, fmt.Errorf("%w: client identity: %v", ErrHandshake, err)
	}
	peer, _, err := r.e.verify(payload, r.hs.PeerStatic(), api.KindIdentity)
	if err != nil {
		return nil, err
	}
	if peer.ID == r.identity {
		r.e.peers.put(r.identity, r.hs.PeerStatic())
	}
	return newConn(raw, peer, r.target, send, recv, r.caps, r.e.rekeyFrames), nil
}
