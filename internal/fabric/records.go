package fabric

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/ztna/ztna/internal/tlsrecord"
)

// Records chooses what carries a link's TLS records once crypto/tls has run the handshake.
// Both ends choose independently: the wire is RFC 8446 records either way.
type Records string

const (
	// RecordsTLSRecord (the default): internal/tlsrecord seals a multiplexer frame into one
	// write and decrypts records straight into the frame's buffer, and updates keys.
	RecordsTLSRecord Records = "tlsrecord"
	// RecordsCryptoTLS: crypto/tls's own records, the way back should tlsrecord misbehave;
	// each byte is copied twice more per direction and keys are never updated (crypto/tls
	// answers the peer's KeyUpdates).
	RecordsCryptoTLS Records = "crypto-tls"
)

// RecordsEnv names the environment variable that sets the records of every link a process
// opens or accepts whose LinkConfig leaves Records empty (hubs, routers, clients and the SDK
// alike, and the processes tests start).
const RecordsEnv = "ZTNA_FABRIC_RECORDS"

// ParseRecords checks a configured value; empty means the default.
func ParseRecords(s string) (Records, error) {
	switch r := Records(s); r {
	case "":
		return RecordsTLSRecord, nil
	case RecordsTLSRecord, RecordsCryptoTLS:
		return r, nil
	}
	return "", fmt.Errorf("fabric records %q: want %q or %q", s, RecordsTLSRecord, RecordsCryptoTLS)
}

// records is what c asks for: its Records, else RecordsEnv's, else the default.
func (c *LinkConfig) records() (Records, error) {
	if c.Records != "" {
		return ParseRecords(string(c.Records))
	}
	r, err := ParseRecords(os.Getenv(RecordsEnv))
	if err != nil {
		return "", fmt.Errorf("%s: %w", RecordsEnv, err)
	}
	return r, nil
}

// recordConn is a TLS connection past its handshake, with when bytes last arrived.
type recordConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
	LastRead() time.Time
}

// handshake runs crypto/tls's handshake over raw and returns the connection that carries the
// records: tlsrecord's, or crypto/tls's own.
func handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, client bool, rec Records) (recordConn, error) {
	if rec == RecordsTLSRecord {
		if client {
			return tlsrecord.Client(ctx, raw, cfg)
		}
		return tlsrecord.Server(ctx, raw, cfg)
	}
	clock := &readClock{Conn: raw}
	clock.last.Store(time.Now().UnixNano())
	var tc *tls.Conn
	if client {
		tc = tls.Client(clock, cfg)
	} else {
		tc = tls.Server(clock, cfg)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return &stdRecords{Conn: tc, clock: clock}, nil
}

// stdRecords is a crypto/tls connection whose socket reads are timed, for the link's silence
// check.
type stdRecords struct {
	*tls.Conn
	clock *readClock
}

func (s *stdRecords) LastRead() time.Time { return time.Unix(0, s.clock.last.Load()) }

// readClock notes when bytes last arrived from the socket.
type readClock struct {
	net.Conn
	last atomic.Int64 // unix ns
}

func (c *readClock) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}
