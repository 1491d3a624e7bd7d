package tlsrecord

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Client runs the client side of a TLS 1.3 handshake over raw with crypto/tls and cfg, and
// returns the connection that carries the application data. ctx bounds the handshake.
func Client(ctx context.Context, raw net.Conn, cfg *tls.Config) (*Conn, error) {
	return handshake(ctx, raw, cfg, true)
}

// Server runs the server side of a TLS 1.3 handshake over raw; see Client.
func Server(ctx context.Context, raw net.Conn, cfg *tls.Config) (*Conn, error) {
	return handshake(ctx, raw, cfg, false)
}

func handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, client bool) (*Conn, error) {
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	// A server would otherwise send a session ticket under the application traffic key inside
	// the handshake, and the records written here would reuse its sequence number. Links are
	// long-lived: resumption would buy nothing.
	cfg.SessionTicketsDisabled = true
	cfg.ClientSessionCache = nil
	keys := &keyCapture{next: cfg.KeyLogWriter}
	cfg.KeyLogWriter = keys
	bc := &boundedConn{Conn: raw}
	var tc *tls.Conn
	if client {
		tc = tls.Client(bc, cfg)
	} else {
		tc = tls.Server(bc, cfg)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	state := tc.ConnectionState()
	if state.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("tlsrecord: negotiated %s, want TLS 1.3", tls.VersionName(state.Version))
	}
	s, err := suiteByID(state.CipherSuite)
	if err != nil {
		return nil, err
	}
	clientSecret, serverSecret, err := keys.take()
	if err != nil {
		return nil, err
	}
	readSecret, writeSecret := serverSecret, clientSecret
	if !client {
		readSecret, writeSecret = clientSecret, serverSecret
	}
	in, err := newHalf(s, readSecret)
	if err != nil {
		return nil, err
	}
	out, err := newHalf(s, writeSecret)
	if err != nil {
		return nil, err
	}
	return newConn(raw, state, in, out, bc.pend, client), nil
}

// boundedConn is what crypto/tls reads the handshake through: it hands over at most one record
// at a time, so that when the handshake is done crypto/tls holds none of the records that
// follow it. Those stay in pend for the Conn.
type boundedConn struct {
	net.Conn
	pend []byte // read from the connection, not yet handed to crypto/tls
	left int    // bytes of the current record not yet handed over
}

// recordHeaderLen is the length of a TLS record header: type, legacy version, length.
const recordHeaderLen = 5

func (c *boundedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for c.left == 0 && len(c.pend) < recordHeaderLen || len(c.pend) == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	if c.left == 0 {
		c.left = recordHeaderLen + int(binary.BigEndian.Uint16(c.pend[3:5]))
	}
	n := copy(p[:min(len(p), c.left)], c.pend)
	c.pend = c.pend[n:]
	c.left -= n
	return n, nil
}

func (c *boundedConn) fill() error {
	var buf [4096]byte
	n, err := c.Conn.Read(buf[:])
	c.pend = append(c.pend, buf[:n]...)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// keyCapture receives crypto/tls's secrets in NSS key log format — the only way crypto/tls
// hands out the traffic secrets — and keeps the two application traffic secrets of this one
// connection in memory. Nothing is written anywhere unless the caller's own KeyLogWriter (a
// debugging aid) is set, which still gets every line.
type keyCapture struct {
	next io.Writer

	mu             sync.Mutex
	client, server []byte
}

func (k *keyCapture) Write(line []byte) (int, error) {
	if k.next != nil {
		k.next.Write(line)
	}
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	var dst *[]byte
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		dst = &k.client
	case "SERVER_TRAFFIC_SECRET_0":
		dst = &k.server
	default: // handshake secrets: of no use once the handshake is done
		return len(line), nil
	}
	secret := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(secret, f[2]); err != nil {
		return 0, err
	}
	k.mu.Lock()
	*dst = secret
	k.mu.Unlock()
	return len(line), nil
}

func (k *keyCapture) take() (client, server []byte, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client == nil || k.server == nil {
		return nil, nil, errors.New("tlsrecord: crypto/tls did not report the traffic secrets")
	}
	client, server = k.client, k.server
	k.client, k.server = nil, nil
	return client, server, nil
}
