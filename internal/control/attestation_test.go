package control

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func signed(t *testing.T, priv ed25519.PrivateKey, a Attestation) Attestation {
	t.Helper()
	msg, err := a.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = &AttestationSignature{KeyID: AttestationKeyID(priv.Public().(ed25519.PublicKey)), Ed25519: ed25519.Sign(priv, msg)}
	return a
}

func publicPEM(t *testing.T, pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestAttestationSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	trusted, err := ParseTrustedKeys(publicPEM(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	a := Attestation{RouterVersion: "1.3.0-rc1", HardeningProfile: "ztna-v2", BuildTime: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), BaseImage: "debian-12",
		Packages: &PackageSet{Count: 185, Digest: "sha256:00", SecurityIndexDate: time.Date(2026, 12, 6, 2, 54, 29, 0, time.UTC)}}

	// The file is indented JSON; the router decodes it and the hello re-encodes it: the
	// signature must survive both.
	file, _ := json.MarshalIndent(signed(t, priv, a), "", "  ")
	var read Attestation
	if err := json.Unmarshal(file, &read); err != nil {
		t.Fatal(err)
	}
	hello, _ := json.Marshal(read)
	var received Attestation
	json.Unmarshal(hello, &received)

	tampered := signed(t, priv, a)
	tampered.RouterVersion = "9.9.9"
	badSig := signed(t, priv, a)
	badSig.Signature.Ed25519 = append([]byte(nil), badSig.Signature.Ed25519...)
	badSig.Signature.Ed25519[0] ^= 1
	forged := signed(t, other, a)
	forged.Signature.KeyID = AttestationKeyID(pub) // claims the trusted key

	for name, tt := range map[string]struct {
		a    *Attestation
		want AttestationStatus
	}{
		"signed by a trusted key": {&received, AttestationVerified},
		"unsigned":                {&a, AttestationUnsigned},
		"none":                    {nil, AttestationMissing},
		"altered after signing":   {&tampered, AttestationBadSignature},
		"signature altered":       {&badSig, AttestationBadSignature},
		"other key, trusted id":   {&forged, AttestationBadSignature},
		"untrusted key":           {ptr(signed(t, other, a)), AttestationUntrustedKey},
	} {
		if got := trusted.Verify(tt.a); got != tt.want {
			t.Errorf("%s: %s, want %s", name, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseTrustedKeys(t *testing.T) {
	pub1, _, _ := ed25519.GenerateKey(rand.Reader)
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	keys, err := ParseTrustedKeys(append(publicPEM(t, pub1), publicPEM(t, pub2)...))
	if err != nil || len(keys) != 2 || !keys[AttestationKeyID(pub2)].Equal(pub2) {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for in, want := range map[string]string{
		"": "no PEM PUBLIC KEY block",
		"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n": `PEM block "PRIVATE KEY": want PUBLIC KEY`,
	} {
		if _, err := ParseTrustedKeys([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTrustedKeys(%q) = %v, want %q", in, err, want)
		}
	}
}
