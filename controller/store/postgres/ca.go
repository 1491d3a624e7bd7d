package postgres

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/pki"
)

// Why the CA lives in the database: every replica must sign with one network CA. The
// database is the one thing replicas already share and it serialises the first start (two
// replicas starting on an empty database cannot create two CAs), whereas a shared directory
// needs a shared file system or a copy step and races on creation. The private key is stored
// sealed — AES-256-GCM under a key derived from a secret every replica is given in a file —
// so the database (and its backups) alone never yield the CA key.

// MinCASecretLen is the least number of bytes of the CA secret.
const MinCASecretLen = 32

// caKeyVersion prefixes the sealed key so that the format can change later.
const caKeyVersion = 1

// ErrCASecret says the CA secret does not open the CA key in the database.
var ErrCASecret = errors.New("the network CA key in the database cannot be decrypted with this CA secret: every replica must be given the same secret (or the stored CA was altered)")

// LoadOrCreateCA returns the network CA kept in the database, creating it (named commonName)
// if there is none yet; created reports whether this call created it. Replicas starting at
// the same time agree on one CA: the first insert wins and the others read it.
func (s *Store) LoadOrCreateCA(ctx context.Context, secret []byte, commonName string) (ca *pki.CA, created bool, err error) {
	if len(secret) < MinCASecretLen {
		return nil, false, fmt.Errorf("the CA secret has %d bytes; it needs at least %d random bytes (e.g. openssl rand -base64 48)", len(secret), MinCASecretLen)
	}
	ca, err = s.loadCA(ctx, secret)
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return ca, false, err
	}
	fresh, err := pki.NewCA(commonName)
	if err != nil {
		return nil, false, err
	}
	keyPEM, err := fresh.KeyPEM()
	if err != nil {
		return nil, false, err
	}
	sealed, err := seal(secret, keyPEM, fresh.Cert.Raw)
	if err != nil {
		return nil, false, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO network_ca (id, cert_pem, key_sealed, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING`,
		string(fresh.CertPEM), sealed, store.Now())
	if err != nil {
		return nil, false, fmt.Errorf("store the network CA: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return fresh, true, nil
	}
	// Another replica stored its CA first: use that one.
	ca, err = s.loadCA(ctx, secret)
	return ca, false, err
}

func (s *Store) loadCA(ctx context.Context, secret []byte) (*pki.CA, error) {
	var certPEM string
	var sealed []byte
	if err := s.pool.QueryRow(ctx, `SELECT cert_pem, key_sealed FROM network_ca WHERE id = 1`).Scan(&certPEM, &sealed); err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertPEM([]byte(certPEM))
	if err != nil {
		return nil, fmt.Errorf("network CA in the database: %w", err)
	}
	keyPEM, err := unseal(secret, sealed, cert.Raw)
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCA([]byte(certPEM), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("network CA in the database: %w", err)
	}
	return ca, nil
}

// aead derives the sealing key from the secret.
func aead(secret []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, "ztna network CA key v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts the CA key; the certificate is the associated data, so a sealed key only
// opens next to the certificate it belongs to.
func seal(secret, keyPEM, certDER []byte) ([]byte, error) {
	g, err := aead(secret)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+g.NonceSize(), 1+g.NonceSize()+len(keyPEM)+g.Overhead())
	out[0] = caKeyVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[1:], keyPEM, certDER), nil
}

func unseal(secret, sealed, certDER []byte) ([]byte, error) {
	g, err := aead(secret)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+g.NonceSize() || sealed[0] != caKeyVersion {
		return nil, errors.New("network CA in the database: the sealed key has an unknown format (written by a newer controller?)")
	}
	nonce := sealed[1 : 1+g.NonceSize()]
	keyPEM, err := g.Open(nil, nonce, sealed[1+g.NonceSize():], certDER)
	if err != nil {
		return nil, ErrCASecret
	}
	return keyPEM, nil
}
