package ztnarouter

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/ztna/ztna/internal/control"
)

// Signer signs attestations. keyFileSigner holds an Ed25519 key from a file; a KMS-held key
// fits behind the same two methods.
type Signer interface {
	// KeyID names the public key, as control.AttestationKeyID does.
	KeyID() string
	Sign(ctx context.Context, msg []byte) ([]byte, error)
}

type keyFileSigner struct {
	key ed25519.PrivateKey
	id  string
}

// loadKeyFile reads a PEM PKCS#8 Ed25519 private key (`openssl genpkey -algorithm ed25519`).
func loadKeyFile(path string) (*keyFileSigner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("attestation_key_file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("attestation_key_file %s: want a PEM PRIVATE KEY (openssl genpkey -algorithm ed25519 -out build.key)", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("attestation_key_file %s: %w", path, err)
	}
	ed, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("attestation_key_file %s: a %T key, want Ed25519", path, key)
	}
	return &keyFileSigner{key: ed, id: control.AttestationKeyID(ed.Public().(ed25519.PublicKey))}, nil
}

func (s *keyFileSigner) KeyID() string { return s.id }

func (s *keyFileSigner) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(s.key, msg), nil
}

// sign adds signer's signature to a.
func sign(ctx context.Context, signer Signer, a *control.Attestation) error {
	msg, err := a.SignedBytes()
	if err != nil {
		return err
	}
	sig, err := signer.Sign(ctx, msg)
	if err != nil {
		return fmt.Errorf("signing the attestation with %s: %w", signer.KeyID(), err)
	}
	a.Signature = &control.AttestationSignature{KeyID: signer.KeyID(), Ed25519: sig}
	return nil
}
