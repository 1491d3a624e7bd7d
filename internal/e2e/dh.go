package e2e

import (
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
	keys []*ecdh.PrivateKey
}

func newSuite(static *ecdh.PrivateKey) noise.CipherSuite {
	return noise.NewCipherSuite(&handshakeDH{keys: []*ecdh.PrivateKey{static}}, noise.CipherAESGCM, noise.HashSHA256)
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
// wait for a key generation: 40 µs on the 2-core target machine, on the critical path of every
// new stream at both ends. Each key serves one handshake; at most a few wait unused.
var (
	spareKeys = make(chan *ecdh.PrivateKey, 4)
	spareOnce sync.Once
)

func fillSpares() {
	for {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil { // the system's randomness failed: handshakes generate their own
			time.Sleep(time.Second)
			continue
		}
		spareKeys <- k
	}
}

func (d *handshakeDH) DH(private, public []byte) ([]byte, error) {
	priv, err := d.lookup(private)
	if err != nil {
		return nil, err
	}
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
