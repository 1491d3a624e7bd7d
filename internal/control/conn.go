package control

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MaxFrameSize bounds one frame; a larger length prefix means a broken or hostile peer. A
// message larger than this travels as chunk frames to a peer that reassembles them (see
// Conn.SetPeerMaxMessage).
const MaxFrameSize = 1 << 20

// chunkSize is the payload of one chunk frame. Smaller than MaxFrameSize so that a heartbeat or
// its ack written between two chunks of a 20 MB snapshot waits behind at most 256 KiB (about
// 0.2 s at 10 Mbit/s, well inside a heartbeat interval).
const chunkSize = 256 << 10

// Message limits: the largest message one side reassembles from chunk frames. A controller
// holds at most one partial message per router session (RouterMaxMessage: a heartbeat with
// the health of 20,000 services is about 5 MB); a router holds at most one of its controller's
// (DefaultMaxMessage: a hub snapshot of 10,000 services, identities and policies is about
// 20 MB).
const (
	DefaultMaxMessage = 256 << 20
	RouterMaxMessage  = 16 << 20
)

// Frame header flags, in the top bits of the 4-byte length prefix. A peer that predates
// chunking reads them as a length above MaxFrameSize and refuses the frame, so chunks are sent
// only to a peer that announced a message limit (Hello.MaxMessage, Welcome.MaxMessage).
const (
	flagChunk  = 1 << 31 // the frame is one chunk of a larger envelope
	flagLast   = 1 << 30 // and the last one: the chunks so far form the envelope
	lengthMask = 1<<30 - 1
)

// WriteTimeout bounds one frame write, so that a peer that stopped reading cannot wedge the sender.
const WriteTimeout = 10 * time.Second

// ErrFrameTooLarge reports a length prefix above MaxFrameSize, or a message larger than the
// peer accepts.
var ErrFrameTooLarge = errors.New("control: frame exceeds the maximum size")

// TooLargeError is a message that cannot be sent: larger than the peer reassembles (Limit
// is MaxFrameSize for a peer without chunking). It wraps ErrFrameTooLarge.
type TooLargeError struct {
	Type  Type
	Size  int
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Limit <= MaxFrameSize {
		return fmt.Sprintf("control: %s message of %d bytes exceeds the peer's limit of %d bytes (the peer does not reassemble chunked messages: upgrade it)", e.Type, e.Size, e.Limit)
	}
	return fmt.Sprintf("control: %s message of %d bytes exceeds the peer's limit of %d bytes", e.Type, e.Size, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrFrameTooLarge }

// Conn frames Envelopes over a connection. Send is safe for concurrent use; Receive must be called
// from one goroutine.
type Conn struct {
	nc     net.Conn
	r      *bufio.Reader
	wmu    sync.Mutex // one frame at a time
	cmu    sync.Mutex // one chunked message at a time, so the receiver reassembles one
	nextID atomic.Uint64

	peerMax atomic.Int64 // the largest message the peer reassembles; 0: single frames only
	maxMsg  atomic.Int64 // the largest message Receive reassembles

	// Used by Receive only.
	partial []byte        // chunks of the message being reassembled
	idle    time.Duration // the caller's read deadline, as a silence allowance each chunk renews
}

// NewConn wraps an established (already authenticated) connection. It reassembles messages up
// to DefaultMaxMessage and sends the peer single frames until SetPeerMaxMessage.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, r: bufio.NewReader(nc)}
	c.maxMsg.Store(DefaultMaxMessage)
	return c
}

// SetMaxMessage sets the largest message Receive reassembles from chunks; the side announces it
// to its peer in its hello or welcome.
func (c *Conn) SetMaxMessage(n int64) { c.maxMsg.Store(n) }

// MaxMessage is the largest message Receive reassembles.
func (c *Conn) MaxMessage() int64 { return c.maxMsg.Load() }

// SetPeerMaxMessage records what the peer announced it reassembles (Hello.MaxMessage or
// Welcome.MaxMessage): larger messages are then sent as chunks, up to n bytes. Zero (a peer
// that predates chunking) limits every message to one frame.
func (c *Conn) SetPeerMaxMessage(n int64) { c.peerMax.Store(n) }

// NextID returns a fresh envelope ID for a request.
func (c *Conn) NextID() uint64 { return c.nextID.Add(1) }

// Send writes one message: one frame, or chunk frames between which other messages may be
// sent. A message larger than the peer accepts is not sent: the error is a *TooLargeError, and
// the peer is told with an Undeliverable message, so both sides can log its size.
func (c *Conn) Send(typ Type, id uint64, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("control: encode %s: %w", typ, err)
	}
	frame, err := json.Marshal(Envelope{Type: typ, ID: id, Body: raw})
	if err != nil {
		return fmt.Errorf("control: encode %s: %w", typ, err)
	}
	if len(frame) <= MaxFrameSize {
		return c.write(typ, 0, frame)
	}
	limit := max(c.peerMax.Load(), MaxFrameSize)
	if int64(len(frame)) > limit {
		tooLarge := &TooLargeError{Type: typ, Size: len(frame), Limit: limit}
		if typ != TypeUndeliverable {
			c.Send(TypeUndeliverable, 0, Undeliverable{Type: typ, Size: len(frame), Limit: limit})
		}
		return tooLarge
	}
	c.cmu.Lock()
	defer c.cmu.Unlock()
	for len(frame) > 0 {
		n := min(len(frame), chunkSize)
		flags := uint32(flagChunk)
		if n == len(frame) {
			flags |= flagLast
		}
		if err := c.write(typ, flags, frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
	}
	return nil
}

// write sends one frame with the header flags.
func (c *Conn) write(typ Type, flags uint32, payload []byte) error {
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, flags|uint32(len(payload)))
	copy(buf[4:], payload)
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

// Receive reads the next message, reassembling chunked ones. It honours the read deadline as an
// allowance for silence: each chunk of a long message renews it.
func (c *Conn) Receive() (Envelope, error) {
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return Envelope{}, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := h & lengthMask
		chunk, last := h&flagChunk != 0, h&flagLast != 0
		if n > MaxFrameSize || (last && !chunk) {
			return Envelope{}, fmt.Errorf("%w (%d bytes announced)", ErrFrameTooLarge, h&^flagChunk)
		}
		if !chunk {
			frame := make([]byte, n)
			if _, err := io.ReadFull(c.r, frame); err != nil {
				return Envelope{}, fmt.Errorf("control: truncated frame: %w", err)
			}
			return decodeFrame(frame)
		}
		if limit := c.maxMsg.Load(); int64(len(c.partial))+int64(n) > limit {
			size := len(c.partial) + int(n)
			c.partial = nil
			return Envelope{}, fmt.Errorf("%w: a chunked message passed %d bytes, more than the %d this side accepts", ErrFrameTooLarge, size, limit)
		}
		at := len(c.partial)
		c.partial = slices.Grow(c.partial, int(n))[:at+int(n)]
		if _, err := io.ReadFull(c.r, c.partial[at:]); err != nil {
			return Envelope{}, fmt.Errorf("control: truncated chunk: %w", err)
		}
		if last {
			frame := c.partial
			c.partial = nil
			return decodeFrame(frame)
		}
		if c.idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(c.idle))
		}
	}
}

func decodeFrame(frame []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return Envelope{}, fmt.Errorf("control: malformed frame: %w", err)
	}
	if env.Type == "" {
		return Envelope{}, errors.New("control: frame without a message type")
	}
	return env, nil
}

// SetReadDeadline sets the deadline for Receive; while a chunked message arrives, every chunk
// moves it as far ahead again.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.idle = 0
	if !t.IsZero() {
		c.idle = time.Until(t)
	}
	return c.nc.SetReadDeadline(t)
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// RemoteAddr is the peer's address, for logs.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
