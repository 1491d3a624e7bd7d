package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/flynn/noise"
	"go.uber.org/goleak"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
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

// Every public key of small order (RFC 7748 §6.1's all-zero shared secret) is refused, as the
// stock DH25519 refuses it; the list is libsodium's, each also checked against the stock DH.
func TestHandshakeDHRejectsLowOrderPoints(t *testing.T) {
	ff := func(first, last byte) []byte {
		b := bytes.Repeat([]byte{0xff}, 32)
		b[0], b[31] = first, last
		return b
	}
	points := map[string][]byte{
		"0":        make([]byte, 32),
		"1":        append([]byte{1}, make([]byte, 31)...),
		"order 8":  {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
		"order 8'": {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
		"p-1":      ff(0xec, 0x7f),
		"p":        ff(0xed, 0x7f),
		"p+1":      ff(0xee, 0x7f),
	}
	var d handshakeDH
	a, err := d.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range points {
		if _, err := noise.DH25519.DH(a.Private, p); err == nil {
			t.Fatalf("%s: the stock DH25519 accepts it: not a small-order point", name)
		}
		if _, err := d.DH(a.Private, p); err == nil {
			t.Errorf("DH with the small-order point %s succeeded", name)
		}
	}
	if _, err := d.DH(a.Private, make([]byte, 31)); err == nil {
		t.Error("DH with a 31-byte public key succeeded")
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
	ini, err := noise.NewHandshakeState(noise.Config{CipherSuite: newHandshakeDH(d.keys[0]).suite(), Pattern: noise.HandshakeXX, Initiator: true, StaticKeypair: static})
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

// TestHandshakeGuessesPeerStatics: from the second handshake between the same peers on, the DH
// on the peer's remembered static key runs ahead while its message is on the way — the client's
// "es" on the router's key, the router's "se" on the client's — and Noise uses it. A peer with a
// new static key (a restarted router) costs a missed guess, not a failed handshake.
func TestHandshakeGuessesPeerStatics(t *testing.T) {
	p := fabrictest.New(t)
	client := endpoint(p, api.KindIdentity, "alice")
	router := endpoint(p, api.KindRouter, "r1")
	const target = "db.example.com:5432"
	// used lists, per DH started ahead, whether Noise used it.
	used := func(d *handshakeDH) []bool {
		var out []bool
		for _, a := range d.ahead {
			out = append(out, a.used)
		}
		return out
	}
	run := func(router *Endpoint) (cl, rt []bool) {
		t.Helper()
		craw, rraw := tcpPair(t)
		in, hello, err := client.Initiate(target)
		if err != nil {
			t.Fatal(err)
		}
		resp, reply, err := router.Respond(target, "alice", hello)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			c, err := resp.Finish(rraw)
			if err == nil && c.Peer().ID != "alice" {
				err = errors.New("wrong peer")
			}
			done <- err
		}()
		c, err := in.Finish(craw, reply)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil { // carries the last handshake message
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return used(in.dh), used(resp.dh)
	}
	cl, rt := run(router)
	if len(cl) != 0 || len(rt) != 0 {
		t.Fatalf("first handshake: client %v, router %v; want nothing ahead (nothing to guess yet)", cl, rt)
	}
	cl, rt = run(router)
	if want := []bool{true}; !slices.Equal(cl, want) || !slices.Equal(rt, want) {
		t.Fatalf("second handshake: client %v, router %v; want %v each (the guessed statics hit)", cl, rt, want)
	}
	cl, _ = run(endpoint(p, api.KindRouter, "r1")) // same router id, new static key
	if want := []bool{false}; !slices.Equal(cl, want) {
		t.Fatalf("handshake with a restarted router: client %v, want %v (the guess misses)", cl, want)
	}
	cl, _ = run(router) // the client now remembers the restarted router's key, not this one's
	if want := []bool{false}; !slices.Equal(cl, want) {
		t.Fatalf("handshake back with the first router: client %v, want %v", cl, want)
	}
}

// The spare ephemeral keys are refilled in a burst once the pool is half empty, and every key
// handed out is a fresh one.
func TestSpareKeysRefill(t *testing.T) {
	var d handshakeDH
	seen := map[string]bool{}
	take := func() {
		k, err := d.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(k.Public)] {
			t.Fatal("an ephemeral key was handed out twice")
		}
		seen[string(k.Public)] = true
	}
	take() // starts the filler
	// Run the pool half empty: other tests may have left it anywhere.
	for len(spareKeys) >= cap(spareKeys)/2 {
		take()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(spareKeys) < cap(spareKeys) {
		if time.Now().After(deadline) {
			t.Fatalf("pool not refilled after it ran half empty: %d keys", len(spareKeys))
		}
		time.Sleep(time.Millisecond)
	}
	// A full pool has no filler left running: a process that stops making handshakes (a
	// client after Close) keeps no goroutine of this package.
	goleak.VerifyNone(t)
}
