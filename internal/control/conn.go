package control

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MaxFrameSize bounds one frame; a larger length prefix means a broken or hostile peer.
const MaxFrameSize = 1 << 20

// WriteTimeout bounds one frame write, so that a peer that stopped reading cannot wedge the sender.
const WriteTimeout = 10 * time.Second

// ErrFrameTooLarge reports a length prefix above MaxFrameSize.
var ErrFrameTooLarge = errors.New("control: frame exceeds the maximum size")

// Conn frames Envelopes over a connection. Send is safe for concurrent use; Receive must be called
// from one goroutine.
type Conn struct {
	nc     net.Conn
	r      *bufio.Reader
	wmu    sync.Mutex
	nextID atomic.Uint64
}

// NewConn wraps an established (already authenticated) connection.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc, r: bufio.NewReader(nc)}
}

// NextID returns a fresh envelope ID for a request.
func (c *Conn) NextID() uint64 { return c.nextID.Add(1) }

// Send writes one message.
func (c *Conn) Send(typ Type, id uint64, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("control: encode %s: %w", typ, err)
	}
	frame, err := json.Marshal(Envelope{Type: typ, ID: id, Body: raw})
	if err != nil {
		return fmt.Errorf("control: encode %s: %w", typ, err)
	}
	if len(frame) > MaxFrameSize {
		return fmt.Errorf("%w (%s message of %d bytes)", ErrFrameTooLarge, typ, len(frame))
	}
	buf := make([]byte, 4+len(frame))
	binary.BigEndian.PutUint32(buf, uint32(len(frame)))
	copy(buf[4:], frame)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(buf); err != nil {
		return fmt.Errorf("control: send %s: %w", typ, err)
	}
	return nil
}

// Receive reads the next message. It honours the connection's read deadline.
func (c *Conn) Receive() (Envelope, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return Envelope{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return Envelope{}, fmt.Errorf("%w (%d bytes announced)", ErrFrameTooLarge, n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return Envelope{}, fmt.Errorf("control: truncated frame: %w", err)
	}
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return Envelope{}, fmt.Errorf("control: malformed frame: %w", err)
	}
	if env.Type == "" {
		return Envelope{}, errors.New("control: frame without a message type")
	}
	return env, nil
}

// SetReadDeadline sets the deadline for Receive.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// RemoteAddr is the peer's address, for logs.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
