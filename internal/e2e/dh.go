package e2e

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"io"
	"sync"
	"time"

	"github.com/flynn/noise"
)

// handshakeDH is Noise's "25519" DH function on crypto/ecdh, holding the parsed private keys of
// one handshake: this end's static key and the ephemeral key it generates.
//
// Why not noise.DH25519: it computes each DH with x/crypto's curve25519.X25519, which parses the
// scalar with ecdh.NewPrivateKey — a full scalar multiplication deriving a public key that is then
// thrown away. That doubled the cost of every DH: 16 instead of 8 multiplications per handshake,
// about 0.6 ms of a new stream's latency on the 2-core target machine. A fresh value per
// handshake keeps ephemeral keys no longer than the handshake state itself does.
type handshakeDH struct {
	keys  []*ecdh.PrivateKey
	ahead []*dhAhead // DHs started before Noise asks for them
}

// dhAhead is a DH on a guessed peer static key, computed on another goroutine while this end
// waits for the peer's message: one X25519 multiplication (~50 µs on the 2-core target machine)
// off the new stream's critical path; a wrong guess only costs the CPU.
//
// Why not also run the DHs of one message in parallel (a reply's "es" alongside its "ee")? On
// the 2-vCPU target machine waking a second thread costs about what it saves: measured, the
// client's half of the handshake got slower (145–154 µs against 103–127 µs).
type dhAhead struct {
	priv   *ecdh.PrivateKey
	pub    []byte
	done   chan struct{}
	secret []byte
	err    error
	used   bool // Noise asked for it (tests check that guesses hit)
}

func newHandshakeDH(static *ecdh.PrivateKey) *handshakeDH {
	return &handshakeDH{keys: []*ecdh.PrivateKey{static}}
}

func (d *handshakeDH) suite() noise.CipherSuite {
	return noise.NewCipherSuite(d, noise.CipherAESGCM, noise.HashSHA256)
}

// ephemeral is the key GenerateKeypair returned (nil before).
func (d *handshakeDH) ephemeral() *ecdh.PrivateKey {
	if len(d.keys) < 2 {
		return nil
	}
	return d.keys[1]
}

// startDH starts computing DH(priv, pub) on another goroutine; DH(priv, pub) then waits for it
// instead of computing it again. Only the handshake's goroutine calls it. A pub that is no
// valid X25519 key is left to DH to reject.
func (d *handshakeDH) startDH(priv *ecdh.PrivateKey, pub []byte) {
	if priv == nil || len(pub) != 32 {
		return
	}
	a := &dhAhead{priv: priv, pub: bytes.Clone(pub), done: make(chan struct{})}
	d.ahead = append(d.ahead, a)
	go func() {
		defer close(a.done)
		a.secret, a.err = x25519(priv, a.pub)
	}()
}

func generateX25519(rng io.Reader) (*ecdh.PrivateKey, noise.DHKey, error) {
	k, err := ecdh.X25519().GenerateKey(rng)
	if err != nil {
		return nil, noise.DHKey{}, err
	}
	return k, noise.DHKey{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// GenerateKeypair returns the handshake's ephemeral key: a spare generated ahead of time when
// there is one.
func (d *handshakeDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	spareOnce.Do(func() { go fillSpares() })
	var k *ecdh.PrivateKey
	select {
	case k = <-spareKeys:
		if len(spareKeys) < cap(spareKeys)/2 {
			select {
			case refillSpares <- struct{}{}:
			default: // a refill is already due
			}
		}
	default:
		var err error
		if k, err = ecdh.X25519().GenerateKey(rng); err != nil {
			return noise.DHKey{}, err
		}
	}
	d.keys = append(d.keys, k)
	return noise.DHKey{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// spareKeys holds ephemeral key pairs generated in the background, so that a handshake does not
// wait for a key generation: 50 µs on the 2-core target machine, on the critical path of every
// new stream at both ends. Each key serves one handshake.
//
// The pool is refilled in a burst, refillDelay after it ran half empty, not after every key
// taken: the handshake that took the key is still running, and on a small machine its other
// work — the router's target dial, running alongside its key agreement — needs the other CPU
// then. (Refilling at once put the dial after the key agreement: ~100 µs more per new stream.)
var (
	spareKeys    = make(chan *ecdh.PrivateKey, 16)
	refillSpares = make(chan struct{}, 1)
	spareOnce    sync.Once
)

const refillDelay = 2 * time.Millisecond

func fillSpares() {
	for {
		for len(spareKeys) < cap(spareKeys) {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil { // the system's randomness failed: handshakes generate their own
				break
			}
			spareKeys <- k
		}
		<-refillSpares
		time.Sleep(refillDelay)
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
	return x25519(priv, public)
}

func x25519(priv *ecdh.PrivateKey, public []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(public)
	if err != nil {
		return nil, err
	}
	// ECDH fails on a low-order public key (an all-zero shared secret), as X25519 does.
	return priv.ECDH(pub)
}

func (d *handshakeDH) lookup(private []byte) (*ecdh.PrivateKey, error) {
	for _, k := range d.keys {
		if subtle.ConstantTimeCompare(k.Bytes(), private) == 1 {
			return k, nil
		}
	}
	return ecdh.X25519().NewPrivateKey(private)
}

func (d *handshakeDH) DHLen() int     { return 32 }
func (d *handshakeDH) DHName() string { return "25519" }
