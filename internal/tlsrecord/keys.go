package tlsrecord

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// suite is a TLS 1.3 cipher suite: its AEAD and the hash of its key schedule (RFC 8446 §B.4).
type suite struct {
	id     uint16
	hash   func() hash.Hash
	keyLen int
	aead   func(key []byte) (cipher.AEAD, error)
	// recordLimit is how many records one key may protect before it must be updated; zero:
	// no limit that a connection could reach.
	recordLimit uint64
}

// gcmRecordLimit: RFC 8446 §5.5 — "for AES-GCM, up to 2^24.5 full-size records (about 24
// million) may be encrypted on a given connection while keeping a safety margin of
// approximately 2^-57". 2^24.5 rounded down.
const gcmRecordLimit = 23_726_566

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var suites = []*suite{
	{id: tls.TLS_AES_128_GCM_SHA256, hash: sha256.New, keyLen: 16, aead: newGCM, recordLimit: gcmRecordLimit},
	{id: tls.TLS_AES_256_GCM_SHA384, hash: sha512.New384, keyLen: 32, aead: newGCM, recordLimit: gcmRecordLimit},
	{id: tls.TLS_CHACHA20_POLY1305_SHA256, hash: sha256.New, keyLen: 32, aead: chacha20poly1305.New},
}

func suiteByID(id uint16) (*suite, error) {
	for _, s := range suites {
		if s.id == id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("tlsrecord: cipher suite %s is not a TLS 1.3 suite", tls.CipherSuiteName(id))
}

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func (s *suite) expandLabel(secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out, err := hkdf.Expand(s.hash, secret, string(info), n)
	if err != nil { // only for lengths beyond 255 hash blocks, never asked for here
		panic(err)
	}
	return out
}

// half is one direction's record protection: the traffic secret, the key and IV derived from
// it, and the record sequence number (RFC 8446 §5.3).
type half struct {
	suite  *suite
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
	nbuf   [12]byte // the current record's nonce
}

func newHalf(s *suite, secret []byte) (*half, error) {
	h := &half{suite: s}
	return h, h.setSecret(secret)
}

func (h *half) setSecret(secret []byte) error {
	aead, err := h.suite.aead(h.suite.expandLabel(secret, "key", h.suite.keyLen))
	if err != nil {
		return err
	}
	clear(h.secret)
	h.secret, h.aead, h.seq = secret, aead, 0
	copy(h.iv[:], h.suite.expandLabel(secret, "iv", len(h.iv)))
	return nil
}

// update moves to the next traffic secret, as a KeyUpdate does (RFC 8446 §7.2).
func (h *half) update() error {
	return h.setSecret(h.suite.expandLabel(h.secret, "traffic upd", h.suite.hash().Size()))
}

// nonce is the per-record nonce: the sequence number, left-padded, XORed with the IV.
func (h *half) nonce() []byte {
	h.nbuf = h.iv
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], h.seq)
	for i, b := range seq {
		h.nbuf[4+i] ^= b
	}
	return h.nbuf[:]
}
