// Package regkey encodes and parses the one copy-pasteable string that enrols a router
// (registration key) or an identity (enrolment token): ztna-key-v1.<base64url(JSON)>. The
// string carries the one-time secret, the controller's edge endpoints and the CA fingerprint
// to pin, so nothing else has to be configured on the enrolling host.
package regkey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/pki"
)

// Prefix starts every key; a later format gets a new version.
const Prefix = "ztna-key-v1."

// SecretBytes is the size of the one-time secret (256 bits).
const SecretBytes = 32

// Kinds of keys.
const (
	KindRouter   = "router"
	KindIdentity = "identity"
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed registration key")

// Key is a decoded registration key or enrolment token. Its String and LogValue never show
// the secret; Encode does.
type Key struct {
	ID      string   `json:"id"`
	Secret  string   `json:"secret"` // base64url of SecretBytes random bytes
	Kind    string   `json:"kind"`
	Edge    []string `json:"edge"`              // edge API base URLs
	Control []string `json:"control,omitempty"` // control channel host:port (informative)
	Fabric  []string `json:"fabric,omitempty"`  // fabric host:port (informative)
	CA      string   `json:"ca"`                // CA fingerprint sha256:<hex>
	Exp     int64    `json:"exp"`               // unix seconds; the controller's record decides
}

// NewSecret returns a fresh base64url secret of SecretBytes random bytes.
func NewSecret() string {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns SHA-256 of the secret: the only form the controller stores. A 256-bit random
// secret needs no salt or slow hash: it cannot be guessed.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Matches compares the secret against a stored hash in constant time.
func Matches(storedHash []byte, secret string) bool {
	return subtle.ConstantTimeCompare(storedHash, Hash(secret)) == 1
}

// Encode returns the copy-pasteable key string, secret included.
func (k *Key) Encode() string {
	b, err := json.Marshal(k)
	if err != nil {
		panic(err) // plain strings and ints always marshal
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b)
}

// String identifies the key without revealing the secret, so a key printed by mistake
// (fmt, errors, logs) leaks nothing usable.
func (k *Key) String() string { return fmt.Sprintf("%s key %s (secret redacted)", k.Kind, k.ID) }

// LogValue keeps the secret out of structured logs.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("kind", k.Kind))
}

// ExpiresAt returns Exp as a time.
func (k *Key) ExpiresAt() time.Time { return time.Unix(k.Exp, 0) }

// Parse decodes and checks a key string. Surrounding white space (from copy-paste) is
// ignored. Errors wrap ErrMalformed and say what is wrong, never echoing the secret.
func Parse(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	payload, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return nil, fmt.Errorf("%w: it must start with %q; copy the whole key", ErrMalformed, Prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not base64url; was the key truncated or wrapped?", ErrMalformed, Prefix)
	}
	var k Key
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("%w: its payload is not valid JSON; was the key truncated?", ErrMalformed)
	}
	if err := k.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &k, nil
}

func (k *Key) validate() error {
	if k.ID == "" {
		return errors.New("no key id")
	}
	sec, err := base64.RawURLEncoding.DecodeString(k.Secret)
	if err != nil || len(sec) != SecretBytes {
		return fmt.Errorf("the secret must be %d bytes of base64url", SecretBytes)
	}
	if k.Kind != KindRouter && k.Kind != KindIdentity {
		return fmt.Errorf("kind %q is neither %q nor %q", k.Kind, KindRouter, KindIdentity)
	}
	if len(k.Edge) == 0 {
		return errors.New("no controller edge address")
	}
	for _, e := range k.Edge {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("edge address %q is not an https:// URL", e)
		}
	}
	if err := pki.ValidFingerprint(k.CA); err != nil {
		return err
	}
	return nil
}
