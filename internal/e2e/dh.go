package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/flynn/noise"
)

// handshakeDH is Noise's "25519" DH function, holding the key pairs of one handshake: this end's
// static key and the ephemeral key it generates.
//
// Why not noise.DH25519: it computes each DH with x/crypto's curve25519.X25519, which parses the
// scalar with ecdh.NewPrivateKey — a full scalar multiplication deriving a public key that is then
// thrown away. That doubled the cost of every DH: 16 instead of 8 multiplications per handshake,
// about 0.6 ms of a new stream's latency on the 2-core target machine. A fresh value per
// handshake keeps ephemeral keys no longer than the handshake state itself does.
//
// Why CIRCL's X25519 rather than crypto/ecdh's: its amd64 assembly (mulx/adx field arithmetic)
// is faster where the handshake spends its CPU. Measured on the 2-vCPU target machine: a DH
// 32 µs against 45 µs, a key generation 22 µs against 50 µs; four DHs sit on a new stream's
// critical path and ten multiplications make up most of its CPU. Both are constant time.
type handshakeDH struct {
	keys  []*dhKey
	ahead []*dhAhead // DHs started before Noise asks for them
}

// dhKey is an X25519 key pair.
type dhKey struct{ private, public x25519.Key }

func (k *dhKey) noiseKey() noise.DHKey {
	return noise.DHKey{Private: bytes.Clone(k.private[:]), Public: bytes.Clone(k.public[:])}
}

// errLowOrder is the DH with a public key of small order: its shared secret is all zeros and
// would contribute nothing to the handshake's keys.
var errLowOrder = errors.New("e2e: X25519 public key of small order")

// newDHKey generates a key pair from rng.
func newDHKey(rng io.Reader) (*dhKey, error) {
	k := new(dhKey)
	if _, err := io.ReadFull(rng, k.private[:]); err != nil {
		return nil, err
	}
	x25519.KeyGen(&k.public, &k.private)
	return k, nil
}

// dhAhead is a DH on a guessed peer static key, computed on another goroutine while this end
// waits for the peer's message: one X25519 multiplication (~50 µs on the 2-core target machine)
// off the new stream's critical path; a wrong guess only costs the CPU.
//
// Why not also run the DHs of one message in parallel (a reply's "es" alongside its "ee")? On
// the 2-vCPU target machine waking a second thread costs about what it saves: measured, the
// client's half of the handshake got slower (145–154 µs against 103–127 µs).
type dhAhead struct {
	priv   *dhKey
	pub    []byte
	done   chan struct{}
	secret []byte
	err    error
	used   bool // Noise asked for it (tests check that guesses hit)
}

func newHandshakeDH(static *dhKey) *handshakeDH {
	return &handshakeDH{keys: []*dhKey{static}}
}

func (d *handshakeDH) suite() noise.CipherSuite {
	return noise.NewCipherSuite(d, noise.CipherAESGCM, noise.HashSHA256)
}

// ephemeral is the key GenerateKeypair returned (nil before).
func (d *handshakeDH) ephemeral() *dhKey {
	if len(d.keys) < 2 {
		return nil
	}
	return d.keys[1]
}

// startDH starts computing DH(priv, pub) on another goroutine; DH(priv, pub) then waits for it
// instead of computing it again. Only the handshake's goroutine calls it. A pub that is no
// valid X25519 key is left to DH to reject.
func (d *handshakeDH) startDH(priv *dhKey, pub []byte) {
	if priv == nil || len(pub) != 32 {
		return
	}
	a := &dhAhead{priv: priv, pub: bytes.Clone(pub), done: make(chan struct{})}
	d.ahead = append(d.ahead, a)
	go func() {
		defer close(a.done)
		a.secret, a.err = sharedSecret(priv, a.pub)
	}()
}

func generateX25519(rng io.Reader) (*dhKey, noise.DHKey, error) {
	k, err := newDHKey(rng)
	if err != nil {
		return nil, noise.DHKey{}, err
	}
	return k, k.noiseKey(), nil
}

// GenerateKeypair returns the handshake's ephemeral key: a spare generated ahead of time when
// there is one.
func (d *handshakeDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var k *dhKey
	select {
	case k = <-spareKeys:
	default:
		var err error
		if k, err = newDHKey(rng); err != nil {
			return noise.DHKey{}, err
		}
	}
	if len(spareKeys) < cap(spareKeys)/2 {
		refillSpares()
	}
	d.keys = append(d.keys, k)
	return k.noiseKey(), nil
}

// spareKeys holds ephemeral key pairs generated in the background, so that a handshake does not
// wait for a key generation: 50 µs on the 2-core target machine, on the critical path of every
// new stream at both ends. Each key serves one handshake.
//
// The pool is refilled in a burst, refillDelay after it ran half empty, not after every key
// taken: the handshake that took the key is still running, and on a small machine its other
// work — the router's target dial, running alongside its key agreement — needs the other CPU
// then. (Refilling at once put the dial after the key agreement: ~100 µs more per new stream.)
//
// The filler goroutine exits once the pool is full, so a process that stops making handshakes
// (a client after Close) has nothing of this package left running; the next handshake that
// finds the pool half empty starts a new one.
var (
	spareKeys = make(chan *dhKey, 16)
	filling   atomic.Bool // a filler goroutine is on its way or running
)

const refillDelay = 2 * time.Millisecond

// refillSpares starts a filler unless one is already on its way.
func refillSpares() {
	if filling.CompareAndSwap(false, true) {
		go fillSpares()
	}
}

func fillSpares() {
	time.Sleep(refillDelay)
	// Only the filler adds keys, so the pool cannot fill up between the check and the send.
	for len(spareKeys) < cap(spareKeys) {
		k, err := newDHKey(rand.Reader)
		if err != nil { // the system's randomness failed: handshakes generate their own
			filling.Store(false)
			return
		}
		spareKeys <- k
	}
	filling.Store(false)
	// Keys taken after the last check found no filler to start: look again.
	if len(spareKeys) < cap(spareKeys)/2 {
		refillSpares()
	}
}

func (d *handshakeDH) DH(private, public []byte) ([]byte, error) {
	priv, err := d.lookup(private)
	if err != nil {
		return nil, err
	}
	for _, a := range d.ahead {
		if a.priv == priv && bytes.Equal(a.pub, public) {
			<-a.done
			a.used = true
			return a.secret, a.err
		}
	}
	return sharedSecret(priv, public)
}

// sharedSecret computes DH(priv, public), refusing a public key of small order (an all-zero shared
// secret), as flynn/noise's DH25519 does.
func sharedSecret(priv *dhKey, public []byte) ([]byte, error) {
	if len(public) != x25519.Size {
		return nil, errors.New("e2e: X25519 public key must be 32 bytes")
	}
	var pub, shared x25519.Key
	copy(pub[:], public)
	ok := x25519.Shared(&shared, &priv.private, &pub)
	var zero x25519.Key
	if !ok || subtle.ConstantTimeCompare(shared[:], zero[:]) == 1 {
		return nil, errLowOrder
	}
	return shared[:], nil
}

func (d *handshakeDH) lookup(private []byte) (*dhKey, error) {
	for _, k := range d.keys {
		if subtle.ConstantTimeCompare(k.private[:], private) == 1 {
			return k, nil
		}
	}
	if len(private) != x25519.Size {
		return nil, errors.New("e2e: X25519 private key must be 32 bytes")
	}
	k := new(dhKey)
	copy(k.private[:], private)
	x25519.KeyGen(&k.public, &k.private)
	return k, nil
}

func (d *handshakeDH) DHLen() int     { return 32 }
func (d *handshakeDH) DHName() string { return "25519" }
