package dataplane

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// tapListener records the raw bytes of every connection the hub accepts, in both directions:
// what crosses the network between the hub and its peers.
type tapListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*tapConn
}

type tapConn struct {
	net.Conn
	mu      sync.Mutex
	in, out bytes.Buffer // in: peer → hub, out: hub → peer
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, tc)
	l.mu.Unlock()
	return tc, nil
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// snapshot returns copies of both directions.
func (c *tapConn) snapshot() (in, out []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.in.Bytes()), bytes.Clone(c.out.Bytes())
}

// keyLog collects TLS secrets in NSS key log format: "LABEL <client random> <secret>".
type keyLog struct {
	mu      sync.Mutex
	secrets map[string][]byte // label + " " + client random hex → secret
}

func (k *keyLog) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.secrets == nil {
		k.secrets = map[string][]byte{}
	}
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			s, err := hex.DecodeString(f[2])
			if err == nil {
				k.secrets[f[0]+" "+f[1]] = s
			}
		}
	}
	return len(p), nil
}

func (k *keyLog) secret(label string, clientRandom []byte) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.secrets[label+" "+hex.EncodeToString(clientRandom)]
}

// tlsRecords splits a TLS byte stream into records.
func tlsRecords(b []byte) (recs [][]byte) {
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			break
		}
		recs = append(recs, b[:5+n])
		b = b[5+n:]
	}
	return recs
}

// decryptTLS13 returns the plaintext of one direction of a recorded TLS 1.3 connection — what
// the hub itself could read — given the peer→hub and hub→peer bytes and the key log.
// fromClient selects the direction. It fails if the connection cannot be decrypted, so a test
// using it cannot pass vacuously.
func decryptTLS13(in, out []byte, fromClient bool, kl *keyLog) ([]byte, error) {
	inRecs, outRecs := tlsRecords(in), tlsRecords(out)
	if len(inRecs) == 0 || len(outRecs) == 0 {
		return nil, fmt.Errorf("no TLS records recorded")
	}
	// The peer dialed the hub: in starts with the ClientHello, out with the ServerHello.
	ch, sh := inRecs[0], outRecs[0]
	if ch[0] != 22 || ch[5] != 1 || sh[0] != 22 || sh[5] != 2 {
		return nil, fmt.Errorf("recording does not start with ClientHello/ServerHello")
	}
	random := ch[11:43]
	sidLen := int(sh[43])
	suite := binary.BigEndian.Uint16(sh[44+sidLen:])
	recs, hsLabel, appLabel := inRecs, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"
	if !fromClient {
		recs, hsLabel, appLabel = outRecs, "SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"
	}
	hsKey, err := recordKey(suite, kl.secret(hsLabel, random))
	if err != nil {
		return nil, err
	}
	appKey, err := recordKey(suite, kl.secret(appLabel, random))
	if err != nil {
		return nil, err
	}
	var plain []byte
	inHandshake := true
	for _, r := range recs[1:] {
		if r[0] != 23 { // change_cipher_spec (compatibility) and plaintext records
			continue
		}
		if inHandshake {
			if _, err := hsKey.open(r); err == nil {
				continue
			}
			inHandshake = false
		}
		pt, err := appKey.open(r)
		if err != nil {
			return nil, fmt.Errorf("application record %d: %w", appKey.seq, err)
		}
		pt = bytes.TrimRight(pt, "\x00")
		if len(pt) > 0 && pt[len(pt)-1] == 23 { // inner content type: application data
			plain = append(plain, pt[:len(pt)-1]...)
		}
	}
	return plain, nil
}

type recordCipher struct {
	aead cipher.AEAD
	iv   []byte
	seq  uint64
}

func recordKey(suite uint16, secret []byte) (*recordCipher, error) {
	if secret == nil {
		return nil, fmt.Errorf("secret missing from key log")
	}
	var h func() hash.Hash
	var keyLen int
	switch suite {
	case 0x1301:
		h, keyLen = sha256.New, 16
	case 0x1302:
		h, keyLen = sha512.New384, 32
	case 0x1303:
		h, keyLen = sha256.New, 32
	default:
		return nil, fmt.Errorf("cipher suite %#x", suite)
	}
	key, err := expandLabel(h, secret, "key", keyLen)
	if err != nil {
		return nil, err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	if err != nil {
		return nil, err
	}
	var aead cipher.AEAD
	if suite == 0x1303 {
		aead, err = chacha20poly1305.New(key)
	} else {
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			aead, err = cipher.NewGCM(b)
		}
	}
	return &recordCipher{aead: aead, iv: iv}, err
}

// expandLabel is HKDF-Expand-Label from RFC 8446 section 7.1, with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	return hkdf.Expand(h, secret, string(info), n)
}

func (c *recordCipher) open(rec []byte) ([]byte, error) {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[4:], c.seq)
	for i := range nonce {
		nonce[i] ^= c.iv[i]
	}
	pt, err := c.aead.Open(nil, nonce, rec[5:], rec[:5])
	if err == nil {
		c.seq++
	}
	return pt, err
}
