// Package tlsrecord carries the application data of a TLS 1.3 connection with a record layer of
// its own, once crypto/tls has run the handshake (certificates, verification, key exchange,
// ALPN: all of it stays crypto/tls's).
//
// Why: on the fabric's relay hops crypto/tls copies every byte twice more than record
// protection needs — on the way out into its record buffer and again into the batch that leaves
// in one system call, on the way in from the read buffer into its record buffer and from there
// out to the caller — and those copies were about a tenth of the data plane's CPU time. Here a
// write seals all its records into one buffer that leaves in one system call, and a read
// decrypts records straight into the caller's buffer. The kernel's TLS (kTLS) would be the
// usual way out; it is not available on the machines this runs on.
//
// The wire format is TLS 1.3's (RFC 8446 §5): the tests run a crypto/tls peer against this one
// in both directions, through key updates. What it adds to crypto/tls: key updates (§4.6.3)
// every 2^23 records, so that a long-lived link stays within AES-GCM's usage limit (§5.5),
// which crypto/tls leaves to the application; and a receive buffer that is only held while
// records are arriving, so an idle connection costs a few KiB.
//
// The traffic secrets come from crypto/tls's KeyLogWriter hook, the only way it hands them out,
// captured per connection in memory; see keyCapture.
package tlsrecord

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ztna/ztna/internal/bufpool"
	"github.com/ztna/ztna/internal/sockread"
)

const (
	maxPlaintext   = 1 << 14            // RFC 8446 §5.1
	maxCiphertext  = maxPlaintext + 256 // §5.2
	tagLen         = 16
	recordOverhead = recordHeaderLen + 1 + tagLen // header, inner content type, AEAD tag

	typeAlert           = 21
	typeHandshake       = 22
	typeApplicationData = 23

	msgNewSessionTicket = 4
	msgKeyUpdate        = 24
	// maxHandshakeMsg bounds a post-handshake message being reassembled.
	maxHandshakeMsg = 1 << 16

	alertCloseNotify       = 0
	alertUnexpectedMessage = 10
	alertBadRecordMAC      = 20
	alertRecordOverflow    = 22
	alertIllegalParameter  = 47
	alertDecodeError       = 50
	alertUserCanceled      = 90

	// maxEmptyRecords is how many records in a row one read accepts without any application
	// data in them (empty records, ignored messages): beyond, the peer is only keeping the
	// reader busy. crypto/tls allows as many.
	maxEmptyRecords = 16

	// probeSize is the receive buffer inside every Conn. An idle connection waits with it
	// (small messages are read and decrypted there); once a read fills it, or a record does not
	// fit, records are streaming and a pooled buffer of streamSize takes over until the
	// connection has caught up.
	probeSize  = 4 << 10
	streamSize = 256 << 10
)

// updateAfter is how many records this end seals under one key before updating it: far inside
// the AES-GCM limit (2^24.5). A peer that has sent askAfter records under one key (crypto/tls
// never updates by itself) is asked to update. Every Conn starts with these (tests shorten a
// Conn's own schedule).
const (
	updateAfter uint64 = 1 << 23
	askAfter           = 2 * updateAfter
)

// ErrRecordLimit: the peer kept sending under one key beyond AES-GCM's usage limit, ignoring
// requests to update it.
var ErrRecordLimit = errors.New("tlsrecord: peer exceeded the record limit of its key without a key update")

// Conn is an established TLS 1.3 connection. It is a net.Conn: Read and Write may run
// concurrently. As with crypto/tls, a write that fails (a deadline, a broken connection) may
// leave a partial record behind, so every later Write returns the same error.
type Conn struct {
	raw      net.Conn
	rc       syscall.RawConn // nil when raw is not a socket
	state    tls.ConnectionState
	isClient bool
	lastRead atomic.Int64 // sinceBase() when bytes last arrived

	updateAfter, askAfter uint64 // the key update schedule, see the constants

	// Set by the reader, acted on by the next write: the peer asked for a key update; this end
	// wants to ask the peer for one.
	peerAsked atomic.Bool
	askPeer   atomic.Bool

	rmu       sync.Mutex
	in        *half
	askedAt   uint64 // in.seq when askPeer was last set
	probe     [probeSize]byte
	stream    *[]byte // pooled, while records are streaming in
	probeFull bool    // the last read filled the probe
	rs, re    int     // received bytes not yet processed: rbuf()[rs:re]
	pending   []byte  // application data decrypted in place, not yet returned
	spill     []byte  // holds pending when it did not fit the caller's buffer
	hs        []byte  // a post-handshake message arriving over several records
	rerr      error   // sticky: why reading ended

	wmu  sync.Mutex
	out  *half
	werr error
}

var base = time.Now()

func sinceBase() int64 { return int64(time.Since(base)) }

func newConn(raw net.Conn, state tls.ConnectionState, in, out *half, leftover []byte, client bool) *Conn {
	c := &Conn{raw: raw, rc: sockread.RawConn(raw), state: state, in: in, out: out, isClient: client, updateAfter: updateAfter, askAfter: askAfter}
	c.lastRead.Store(sinceBase())
	if len(leftover) > 0 {
		buf := c.probe[:]
		if len(leftover) > len(buf) {
			c.stream = bufpool.Get(max(streamSize, len(leftover)))
			buf = *c.stream
		}
		c.re = copy(buf, leftover)
	}
	return c
}

// ConnectionState is the handshake's outcome (peer certificates, ALPN, cipher suite).
func (c *Conn) ConnectionState() tls.ConnectionState { return c.state }

// LastRead is when bytes last arrived from the peer.
func (c *Conn) LastRead() time.Time { return base.Add(time.Duration(c.lastRead.Load())) }

// Read reads application data.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.read(p, false)
}

// ReadFull reads exactly len(p) bytes. Unlike Read it may also use p's capacity beyond len(p)
// as scratch: a record whose content ends at len(p) is then decrypted straight into p too. The
// caller must own all of p's capacity.
func (c *Conn) ReadFull(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := c.read(p, true)
	if err == io.EOF && n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (c *Conn) rbuf() []byte {
	if c.stream != nil {
		return *c.stream
	}
	return c.probe[:]
}

// read fills p (all of it when full) with application data.
func (c *Conn) read(p []byte, full bool) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, empty := 0, 0
	for {
		if len(c.pending) > 0 {
			k := copy(p[n:], c.pending)
			c.pending = c.pending[k:]
			n += k
		}
		if n == len(p) || n > 0 && !full {
			return n, nil
		}
		if c.rerr != nil {
			return n, c.rerr
		}
		hdr, body, err := c.nextRecord()
		if err != nil {
			return n, c.fatal(err)
		}
		if body == nil {
			if err := c.fill(); err != nil {
				if full && n > 0 && c.rerr == nil {
					// A deadline in the middle: the caller will ask for all of it again.
					c.spill = append(c.spill[:0], p[:n]...)
					c.pending = c.spill
					return 0, err
				}
				return n, err
			}
			continue
		}
		room := len(p) - n
		if full {
			room = cap(p) - n
		}
		k, err := c.process(hdr, body, p[n:n], room >= len(body)-tagLen, len(p)-n)
		n += k
		if err != nil {
			return n, c.fatal(err)
		}
		if k > 0 || len(c.pending) > 0 || c.rerr != nil {
			empty = 0
		} else if empty++; empty > maxEmptyRecords {
			return n, c.fatal(alertErr(alertUnexpectedMessage, fmt.Sprintf("more than %d records in a row without data", maxEmptyRecords)))
		}
	}
}

// nextRecord returns the next whole record in the receive buffer, or a nil body when more bytes
// must be read first.
func (c *Conn) nextRecord() (hdr, body []byte, err error) {
	buf := c.rbuf()[c.rs:c.re]
	if len(buf) < recordHeaderLen {
		return nil, nil, nil
	}
	length := int(binary.BigEndian.Uint16(buf[3:5]))
	switch {
	case buf[0] != typeApplicationData:
		return nil, nil, alertErr(alertUnexpectedMessage, fmt.Sprintf("record of type %d after the handshake", buf[0]))
	case length > maxCiphertext:
		return nil, nil, alertErr(alertRecordOverflow, fmt.Sprintf("record of %d bytes", length))
	case length < tagLen+1:
		return nil, nil, alertErr(alertDecodeError, fmt.Sprintf("record of %d bytes cannot hold an AEAD tag and a content type", length))
	case len(buf) < recordHeaderLen+length:
		return nil, nil, nil
	}
	c.rs += recordHeaderLen + length
	return buf[:recordHeaderLen], buf[recordHeaderLen : recordHeaderLen+length], nil
}

// process decrypts one record — into dst (which has room for its whole inner plaintext) when
// direct, else in place — and acts on it. It returns how many bytes of application data it put
// at dst, at most want; the rest is left pending.
func (c *Conn) process(hdr, body, dst []byte, direct bool, want int) (int, error) {
	if !direct {
		dst = body[:0]
	}
	if lim := c.in.suite.recordLimit; lim > 0 && c.in.seq >= lim {
		return 0, ErrRecordLimit
	}
	inner, err := c.in.aead.Open(dst, c.in.nonce(), body, hdr)
	if err != nil {
		return 0, alertErr(alertBadRecordMAC, "record failed authentication (corrupted or forged on the way)")
	}
	c.in.seq++
	if c.in.seq-c.askedAt >= c.askAfter {
		// The peer does not update its key by itself: ask it to, now rather than with the next
		// write, which a connection that only reads may never make.
		c.askedAt = c.in.seq
		c.askPeer.Store(true)
		go c.WriteBuffers(nil)
	}
	if len(inner) > maxPlaintext+1 { // §5.4: padding counts too
		return 0, alertErr(alertRecordOverflow, fmt.Sprintf("record with %d bytes of inner plaintext", len(inner)))
	}
	// The inner plaintext is content, content type, zero padding (§5.4).
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, alertErr(alertUnexpectedMessage, "record without a content type")
	}
	typ, content := inner[i], inner[:i]
	if len(c.hs) > 0 && typ != typeHandshake { // §5.1
		return 0, alertErr(alertUnexpectedMessage, "a handshake message interrupted by another record")
	}
	switch typ {
	case typeApplicationData:
		if !direct {
			c.pending = content
			return 0, nil
		}
		if len(content) <= want {
			return len(content), nil
		}
		// Decrypted into the caller's spare capacity beyond what it asked for: keep the rest.
		c.spill = append(c.spill[:0], content[want:]...)
		c.pending = c.spill
		return want, nil
	case typeAlert:
		return 0, c.alert(content)
	case typeHandshake:
		return 0, c.handshakeMessages(content)
	default:
		return 0, alertErr(alertUnexpectedMessage, fmt.Sprintf("record of content type %d", typ))
	}
}

func (c *Conn) alert(content []byte) error {
	if len(content) != 2 {
		return alertErr(alertDecodeError, "malformed alert")
	}
	switch content[1] {
	case alertCloseNotify:
		c.rerr = io.EOF
		return nil
	case alertUserCanceled: // a warning; close_notify follows
		return nil
	}
	c.rerr = fmt.Errorf("tlsrecord: peer sent alert: %w", tls.AlertError(content[1]))
	return nil
}

// handshakeMessages handles post-handshake messages: key updates, and session tickets, which
// are ignored (a link never resumes).
func (c *Conn) handshakeMessages(content []byte) error {
	if len(content) == 0 {
		return alertErr(alertUnexpectedMessage, "empty handshake record")
	}
	c.hs = append(c.hs, content...)
	for len(c.hs) >= 4 {
		typ, length := c.hs[0], int(c.hs[1])<<16|int(c.hs[2])<<8|int(c.hs[3])
		if length > maxHandshakeMsg {
			return alertErr(alertDecodeError, fmt.Sprintf("handshake message of %d bytes", length))
		}
		if len(c.hs) < 4+length {
			return nil
		}
		body := c.hs[4 : 4+length]
		c.hs = c.hs[4+length:]
		switch {
		case typ == msgNewSessionTicket && c.isClient:
		case typ == msgKeyUpdate:
			if length != 1 {
				return alertErr(alertDecodeError, "malformed KeyUpdate")
			}
			if body[0] > 1 {
				return alertErr(alertIllegalParameter, fmt.Sprintf("KeyUpdate request_update %d", body[0]))
			}
			if len(c.hs) > 0 { // §5.1: messages before a key change must end with its record
				return alertErr(alertUnexpectedMessage, "KeyUpdate not at the end of its record")
			}
			if err := c.in.update(); err != nil {
				return err
			}
			c.askedAt = 0
			c.askPeer.Store(false) // the peer has just moved to a new key
			if body[0] == 1 {
				c.peerAsked.Store(true)
			}
		default:
			return alertErr(alertUnexpectedMessage, fmt.Sprintf("handshake message of type %d after the handshake", typ))
		}
	}
	if len(c.hs) == 0 {
		c.hs = nil
	}
	return nil
}

// fill reads more bytes into the receive buffer; pending is empty.
func (c *Conn) fill() error {
	if c.rs == c.re {
		c.rs, c.re = 0, 0
		if c.stream != nil {
			// Caught up. If more is waiting, records are still streaming: keep the buffer.
			// Otherwise the connection may go idle, and waits holding only its probe.
			n, err := c.readSocket(*c.stream, true)
			if err != sockread.ErrWouldBlock {
				return c.received(n, err)
			}
			bufpool.Put(c.stream)
			c.stream = nil
		}
	}
	// What the next record needs in the buffer: its header, then all of it.
	need := recordHeaderLen
	if buf := c.rbuf()[c.rs:c.re]; len(buf) >= recordHeaderLen {
		need += int(binary.BigEndian.Uint16(buf[3:5]))
	}
	if c.stream == nil && (c.probeFull || need > probeSize) {
		c.stream = bufpool.Get(streamSize)
		c.re = copy(*c.stream, c.probe[c.rs:c.re])
		c.rs = 0
	} else if len(c.rbuf())-c.rs < need {
		buf := c.rbuf()
		c.re = copy(buf, buf[c.rs:c.re])
		c.rs = 0
	}
	n, err := c.readSocket(c.rbuf()[c.re:], false)
	return c.received(n, err)
}

// readSocket reads into p, waiting in the runtime poller (not at all with noWait: then an idle
// socket returns sockread.ErrWouldBlock).
func (c *Conn) readSocket(p []byte, noWait bool) (int, error) {
	if c.rc != nil {
		n, err := sockread.Read(c.rc, p, noWait)
		if err != sockread.ErrUnsupported {
			return n, err
		}
		c.rc = nil
	}
	if noWait { // no way to look without waiting: assume the worst, that nothing is there
		return 0, sockread.ErrWouldBlock
	}
	return c.raw.Read(p)
}

// received accounts for a read of n bytes at the end of the receive buffer.
func (c *Conn) received(n int, err error) error {
	if n > 0 {
		c.lastRead.Store(sinceBase())
		c.re += n
		c.probeFull = c.stream == nil && c.re == len(c.probe)
		return nil
	}
	switch {
	case err == nil:
		return io.ErrNoProgress
	case isTimeout(err): // the caller may read again
		return err
	case err == io.EOF && (c.rs != c.re || len(c.hs) > 0):
		c.rerr = io.ErrUnexpectedEOF
	default:
		c.rerr = err
	}
	return c.rerr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Write sends p as application data records, in one system call.
func (c *Conn) Write(p []byte) (int, error) {
	v := [1][]byte{p}
	return c.WriteBuffers(v[:])
}

// WriteBuffers sends the buffers as application data records, in one system call; each buffer
// starts a new record, so that a reader asking for exactly one buffer's bytes gets them
// decrypted straight into place.
func (c *Conn) WriteBuffers(v [][]byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	size := 2 * keyUpdateLen
	for _, b := range v {
		size += len(b) + (len(b)+maxPlaintext-1)/maxPlaintext*recordOverhead
	}
	bp := bufpool.Get(size)
	defer bufpool.Put(bp)
	out := (*bp)[:0]
	// An answer to the peer's request must not request one back (§4.6.3); a request of ours
	// made moot by it is dropped with it.
	if ask, asked := c.askPeer.Swap(false), c.peerAsked.Swap(false); ask || asked {
		out = c.sealKeyUpdate(out, ask && !asked)
	}
	n := 0
	for _, b := range v {
		for len(b) > 0 {
			k := min(len(b), maxPlaintext)
			out = c.seal(out, typeApplicationData, b[:k])
			b = b[k:]
			n += k
			if c.out.seq >= c.updateAfter {
				out = c.sealKeyUpdate(out, false)
			}
		}
	}
	if len(out) == 0 {
		return 0, nil
	}
	if _, err := c.raw.Write(out); err != nil {
		c.werr = err
		return 0, err
	}
	return n, nil
}

// keyUpdateLen is the length of a record carrying a KeyUpdate message.
const keyUpdateLen = recordOverhead + 5

// sealKeyUpdate appends a KeyUpdate under the current key and moves to the next one.
func (c *Conn) sealKeyUpdate(out []byte, askPeer bool) []byte {
	msg := []byte{msgKeyUpdate, 0, 0, 1, 0}
	if askPeer {
		msg[4] = 1
	}
	out = c.seal(out, typeHandshake, msg)
	if err := c.out.update(); err != nil { // the suite's own KDF failed: nothing sensible is left
		panic(err)
	}
	return out
}

// seal appends one record carrying content of type typ.
func (c *Conn) seal(out []byte, typ byte, content []byte) []byte {
	o := len(out)
	out = append(out, typeApplicationData, 3, 3, 0, 0)
	out = append(out, content...)
	out = append(out, typ)
	binary.BigEndian.PutUint16(out[o+3:], uint16(len(content)+1+tagLen))
	hdr := out[o : o+recordHeaderLen]
	out = c.out.aead.Seal(out[:o+recordHeaderLen], c.out.nonce(), out[o+recordHeaderLen:], hdr)
	c.out.seq++
	return out
}

// alertError is a protocol failure that ends the connection with a fatal alert.
type alertError struct {
	alert uint8
	msg   string
}

func alertErr(alert uint8, msg string) error { return &alertError{alert: alert, msg: msg} }

func (e *alertError) Error() string {
	return fmt.Sprintf("tlsrecord: %s: %v", e.msg, tls.AlertError(e.alert))
}

// fatal makes err the connection's reading error and, for a protocol failure, tells the peer
// with an alert if that can be done without waiting behind a write in progress or a full
// socket.
func (c *Conn) fatal(err error) error {
	c.rerr = err
	var ae *alertError
	if !errors.As(err, &ae) || c.rc == nil || !c.wmu.TryLock() {
		return err
	}
	defer c.wmu.Unlock()
	if c.werr == nil {
		rec := c.seal(nil, typeAlert, []byte{2, ae.alert})
		c.rc.Write(func(fd uintptr) bool {
			syscall.Write(int(fd), rec)
			return true
		})
		c.werr = err
	}
	return err
}

// Close closes the connection without close_notify: links end when they failed or went silent,
// and close_notify would first wait behind a write stuck on a silent peer. What the connection
// carries tells a clean end from a truncated one.
func (c *Conn) Close() error { return c.raw.Close() }

func (c *Conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }
