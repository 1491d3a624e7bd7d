package control

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// AttestationSignature is a build key's Ed25519 signature of an attestation.
type AttestationSignature struct {
	// KeyID names the key (AttestationKeyID of its public key).
	KeyID string `json:"key_id"`
	// Ed25519 is the signature of the attestation's SignedBytes.
	Ed25519 []byte `json:"ed25519"`
}

// SignedBytes is what a build signs: the attestation without its signature, as compact JSON in
// the struct's field order (what encoding/json writes), so the router can re-encode what it
// read and the controller re-encode what it received and both get the bytes that were signed.
func (a Attestation) SignedBytes() ([]byte, error) {
	a.Signature = nil
	return json.Marshal(a)
}

// AttestationKeyID names an attestation signing key: "ed25519:" and the first 16 hex digits of
// the SHA-256 of the public key.
func AttestationKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// AttestationStatus is the controller's verdict on a router's attestation.
type AttestationStatus string

const (
	// AttestationVerified: signed by a trusted build key.
	AttestationVerified AttestationStatus = "verified"
	// AttestationUnsigned: the image's attestation carries no signature.
	AttestationUnsigned AttestationStatus = "unsigned"
	// AttestationUntrustedKey: signed by a key the controller does not trust.
	AttestationUntrustedKey AttestationStatus = "untrusted_key"
	// AttestationBadSignature: the signature does not match (altered, or not this key's).
	AttestationBadSignature AttestationStatus = "bad_signature"
	// AttestationMissing: the router reported no attestation (not booted from a built image).
	AttestationMissing AttestationStatus = "missing"
)

// TrustedKeys are the build keys whose attestations a controller accepts, by key id.
type TrustedKeys map[string]ed25519.PublicKey

// ParseTrustedKeys reads PEM "PUBLIC KEY" blocks (PKIX, Ed25519: `openssl pkey -pubout`).
func ParseTrustedKeys(data []byte) (TrustedKeys, error) {
	keys := TrustedKeys{}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY (an Ed25519 public key: openssl pkey -in build.key -pubout)", block.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		ed, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, want Ed25519", pub)
		}
		keys[AttestationKeyID(ed)] = ed
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM PUBLIC KEY block")
	}
	return keys, nil
}

// Verify says whether a is signed by one of the keys.
func (k TrustedKeys) Verify(a *Attestation) AttestationStatus {
	switch {
	case a == nil:
		return AttestationMissing
	case a.Signature == nil:
		return AttestationUnsigned
	}
	pub, ok := k[a.Signature.KeyID]
	if !ok {
		return AttestationUntrustedKey
	}
	msg, err := a.SignedBytes()
	if err != nil || !ed25519.Verify(pub, msg, a.Signature.Ed25519) {
		return AttestationBadSignature
	}
	return AttestationVerified
}
