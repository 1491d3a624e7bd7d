package e2e

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// handshakeDH must compute exactly what flynn/noise's own DH25519 computes: the wire protocol is
// Noise_XX_25519_AESGCM_SHA256 either way.
func TestHandshakeDHMatchesNoiseDH25519(t *testing.T) {
	for range 20 {
		var d handshakeDH
		a, err := d.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := noise.DH25519.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := d.DH(a.Private, b.Public)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := noise.DH25519.DH(b.Private, a.Public)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatal("shared secrets differ")
		}
		// A private key this handshake did not generate is parsed, not refused.
		fresh, err := (&handshakeDH{}).DH(a.Private, b.Public)
		if err != nil || !bytes.Equal(fresh, ours) {
			t.Fatalf("unknown private key: %v", err)
		}
	}
}

func TestHandshakeDHRejectsLowOrderPoint(t *testing.T) {
	var d handshakeDH
	a, err := d.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DH(a.Private, make([]byte, 32)); err == nil {
		t.Fatal("DH with the all-zero point succeeded")
	}
}

// One end with flynn/noise's stock DH25519, the other with handshakeDH: the handshake completes.
func TestHandshakeDHInteroperates(t *testing.T) {
	var d handshakeDH
	static, err := d.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stock := noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256)
	peerStatic, _ := stock.GenerateKeypair(rand.Reader)
	ini, err := noise.NewHandshakeState(noise.Config{CipherSuite: newSuite(d.keys[0]), Pattern: noise.HandshakeXX, Initiator: true, StaticKeypair: static})
	if err != nil {
		t.Fatal(err)
	}
	res, err := noise.NewHandshakeState(noise.Config{CipherSuite: stock, Pattern: noise.HandshakeXX, StaticKeypair: peerStatic})
	if err != nil {
		t.Fatal(err)
	}
	m1, _, _, _ := ini.WriteMessage(nil, nil)
	if _, _, _, err := res.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, _, _, _ := res.WriteMessage(nil, nil)
	if _, _, _, err := ini.ReadMessage(nil, m2); err != nil {
		t.Fatal(err)
	}
	m3, is, ir, err := ini.WriteMessage(nil, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	got, rr, rs, err := res.ReadMessage(nil, m3)
	if err != nil || string(got) != "hi" {
		t.Fatalf("final message: %q %v", got, err)
	}
	ct, _ := is.Encrypt(nil, nil, []byte("data"))
	if pt, err := rr.Decrypt(nil, nil, ct); err != nil || string(pt) != "data" {
		t.Fatal("initiator to responder failed", err)
	}
	ct, _ = rs.Encrypt(nil, nil, []byte("back"))
	if pt, err := ir.Decrypt(nil, nil, ct); err != nil || string(pt) != "back" {
		t.Fatal("responder to initiator failed", err)
	}
}
