package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flynn/noise"

	"github.com/ztna/ztna/internal/bufpool"
	"github.com/ztna/ztna/internal/sockread"
)

const (
	tagSize = 16
	// maxFrame is the largest frame on the wire (length prefix included). The 2-byte length keeps
	// frames small enough that a frame in flight costs little memory.
	maxFrame = 4*16384 - 8
	// MaxPlaintext is the most plaintext one frame carries.
	MaxPlaintext = maxFrame - 2 - tagSize
	// batchFrames frames leave in one write to the underlying stream (at most 1 MiB: one
	// multiplexer frame, one system call per hop), so bulk data costs few system calls.
	batchFrames = 16
	batchSize   = batchFrames * maxFrame
)

// ErrTruncated is returned by Read when the stream ended without the authenticated
// end-of-stream frame: the peer, a relay or a link failed, and data may be missing.
var ErrTruncated = fmt.Errorf("e2e: stream ended before the peer closed it: %w", io.ErrUnexpectedEOF)

// ErrWriteClosed is returned by Write after CloseWrite or Close.
var ErrWriteClosed = errors.New("e2e: write after close")

// Conn is an end-to-end encrypted stream. It is a net.Conn: reads and writes may run
// concurrently with each other; deadlines apply to the underlying stream. As with crypto/tls,
// a write that fails part-way (a write deadline, a broken link) leaves the stream unusable
// for writing, and every later Write returns the same error.
type Conn struct {
	raw        net.Conn
	peer       Peer
	target     string
	rekey      bool // both ends rekey every rekeyEvery frames
	rekeyEvery uint64

	rmu   sync.Mutex
	recv  *noise.CipherState
	rerr  error   // sticky: io.EOF after the end-of-stream frame, or a failure
	plain []byte  // decrypted bytes not yet returned, inside rbuf
	rbuf  *[]byte // pooled; held only while a frame is partly read or not yet consumed
	hdr   [2]byte // frame length being read
	hdrN  int     // bytes of hdr read so far
	bodyN int     // bytes of the current frame body read so far
	short bool    // the last ReadFrom read was short: wait for data before taking a buffer

	wmu     sync.Mutex
	send    *noise.CipherState
	werr    error
	wclosed bool
	probe   [probeSize]byte     // ReadFrom's read of an idle socket
	iov     [batchFrames][]byte // ReadFrom's frame slots for one readv

	// The client's last handshake message leaves with its first write, saving a frame and a
	// system call at every hop of the new stream's first exchange; a read, Close, a ReadFrom
	// whose source is idle, or handshakeFlushDelay without a write sends it alone, so a server
	// that speaks first never waits for it.
	hsMsg     []byte      // guarded by wmu
	hsTimer   *time.Timer // guarded by wmu
	hsPending atomic.Bool // hsMsg is set: lets Read check without taking wmu
}

// handshakeFlushDelay is how long the client's last handshake message waits for the first write
// to travel with. A client that neither reads nor writes within it sends the message alone.
const handshakeFlushDelay = 2 * time.Millisecond

// probeSize is how much ReadFrom reads from a socket that was idle: enough for most requests
// and replies of interactive protocols in one system call, small enough to keep in every Conn.
const probeSize = 2048

func newConn(raw net.Conn, peer Peer, target string, send, recv *noise.CipherState, caps byte, rekeyEvery uint64) *Conn {
	return &Conn{raw: raw, peer: peer, target: target, send: send, recv: recv, short: true, rekey: caps&capRekey != 0, rekeyEvery: rekeyEvery}
}

// rekeyFrames is how many frames each direction carries under one key when both ends agreed to
// rekey: 64 GiB of full frames, far inside AES-GCM's limit.
const rekeyFrames uint64 = 1 << 20

// sealFrame appends the encryption of pt to out and moves to the next key on schedule.
func (c *Conn) sealFrame(out, pt []byte) ([]byte, error) {
	out, err := c.send.Encrypt(out, nil, pt)
	if err == nil && c.rekey && c.send.Nonce()%c.rekeyEvery == 0 {
		c.send.Rekey()
	}
	return out, err
}

// holdHandshake makes msg (length-prefixed) the first bytes of the next write, or sends it
// alone after delay.
func (c *Conn) holdHandshake(msg []byte, delay time.Duration) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hsMsg = msg
	c.hsPending.Store(true)
	c.hsTimer = time.AfterFunc(delay, func() {
		// The timer may wait for the write lock: whoever holds it sends the message or has
		// sent it (a ReadFrom sends it before waiting for its source), and a holder that sends
		// nothing — holdHandshake itself, on a busy machine — lets go soon.
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.sendHeldHandshake()
	})
}

// flushHandshake sends the held handshake message for a reader, if it has not left yet. It
// never waits for the write lock, so a Read is never held up behind a Write: whoever holds the
// lock (a Write, CloseWrite, or a ReadFrom about to send or wait for its source) sends the
// message itself, and the timer set in holdHandshake remains as a backstop.
func (c *Conn) flushHandshake() {
	if !c.wmu.TryLock() {
		return
	}
	defer c.wmu.Unlock()
	c.sendHeldHandshake()
}

// sendHeldHandshake sends the held handshake message, if any; the caller holds wmu.
func (c *Conn) sendHeldHandshake() {
	if c.hsMsg == nil || c.werr != nil {
		return
	}
	c.send1(nil)
}

// Peer is the authenticated other end.
func (c *Conn) Peer() Peer { return c.peer }

// Addr names the far end of an end-to-end stream: the target the client asked for.
type Addr struct{ Target string }

// Network is "ztna".
func (Addr) Network() string { return "ztna" }

func (a Addr) String() string { return a.Target }

// LocalAddr is the local address of the link the stream travels on.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr is the target this stream reaches.
func (c *Conn) RemoteAddr() net.Addr { return Addr{Target: c.target} }

// SetDeadline sets the read and write deadlines of the underlying stream.
func (c *Conn) SetDeadline(t time.Time) error { return c.raw.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying stream.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying stream.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// Read reads decrypted data. It returns io.EOF only after the peer's authenticated end of
// stream, and ErrTruncated if the stream ended without it.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.hsPending.Load() {
		c.flushHandshake()
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.plain) > 0 {
		return c.takePlain(p), nil
	}
	if c.rerr != nil {
		return 0, c.rerr
	}
	n, err := c.readFrameHeader()
	if err != nil {
		return 0, err
	}
	// A caller buffer that holds the whole frame receives it directly and is decrypted in
	// place: no copy and no pooled buffer.
	if c.rbuf == nil && len(p) >= n {
		k, err := readFull(c.raw, p[:n])
		if err != nil {
			if k > 0 { // keep the partial frame for the next call (a deadline may have hit)
				c.rbuf = bufpool.Get(maxFrame)
				c.bodyN = copy(*c.rbuf, p[:k])
			}
			return 0, c.readErr(err)
		}
		c.hdrN = 0
		pt, err := c.open(p[:n], p[:0])
		if err != nil {
			return 0, err
		}
		return len(pt), nil
	}
	pt, err := c.readFrameBody(n)
	if err != nil {
		return 0, err
	}
	c.plain = pt
	return c.takePlain(p), nil
}

func (c *Conn) takePlain(p []byte) int {
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	if len(c.plain) == 0 {
		c.releaseRead()
	}
	return n
}

func (c *Conn) releaseRead() {
	if c.rbuf != nil {
		bufpool.Put(c.rbuf)
		c.rbuf, c.plain = nil, nil
	}
}

// readFrameHeader returns the ciphertext length of the next frame.
func (c *Conn) readFrameHeader() (int, error) {
	for c.hdrN < 2 {
		k, err := c.raw.Read(c.hdr[c.hdrN:])
		c.hdrN += k
		if err != nil && c.hdrN < 2 {
			return 0, c.readErr(err)
		}
	}
	n := int(binary.BigEndian.Uint16(c.hdr[:]))
	return n, c.checkFrame(n)
}

// checkFrame rejects a ciphertext length no sender produces.
func (c *Conn) checkFrame(n int) error {
	if n < tagSize || n > maxFrame-2 {
		c.rerr = fmt.Errorf("e2e: malformed frame of %d bytes", n)
		return c.rerr
	}
	return nil
}

// readFrameBody reads the rest of a frame of n ciphertext bytes into the pooled buffer and
// returns the decrypted plaintext, which stays in that buffer.
func (c *Conn) readFrameBody(n int) ([]byte, error) {
	if c.rbuf == nil {
		c.rbuf = bufpool.Get(maxFrame)
	}
	buf := (*c.rbuf)[:n]
	k, err := readFull(c.raw, buf[c.bodyN:])
	c.bodyN += k
	if err != nil {
		return nil, c.readErr(err)
	}
	c.hdrN, c.bodyN = 0, 0
	pt, err := c.open(buf, buf[:0])
	if err != nil {
		c.releaseRead()
		return nil, err
	}
	if len(pt) == 0 {
		c.releaseRead()
	}
	return pt, nil
}

// open decrypts a frame into dst (ct[:0] decrypts in place); an empty plaintext is the end of
// stream.
func (c *Conn) open(ct, dst []byte) ([]byte, error) {
	pt, err := c.recv.Decrypt(dst, nil, ct)
	if err == nil && c.rekey && c.recv.Nonce()%c.rekeyEvery == 0 {
		c.recv.Rekey()
	}
	if err != nil {
		c.rerr = fmt.Errorf("e2e: frame failed authentication (tampered or corrupted stream): %w", err)
		return nil, c.rerr
	}
	if len(pt) == 0 {
		c.rerr = io.EOF
		return nil, io.EOF
	}
	return pt, nil
}

// readErr classifies a failed read of the underlying stream. Timeouts keep the partial frame
// for the next call; anything else ends the stream, and an end without the end-of-stream frame
// is a truncation.
func (c *Conn) readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	c.releaseRead()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		c.rerr = ErrTruncated
	} else {
		c.rerr = fmt.Errorf("%w (%v)", ErrTruncated, err)
	}
	return c.rerr
}

// WriteTo decrypts the stream into w until the peer's end of stream (then it returns nil),
// holding a buffer only while a frame is in flight, so an idle stream costs no buffer memory.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if c.hsPending.Load() {
		c.flushHandshake()
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var total int64
	if len(c.plain) > 0 {
		k, err := w.Write(c.plain)
		total += int64(k)
		c.releaseRead()
		if err != nil {
			return total, err
		}
	}
	if wt, ok := c.raw.(io.WriterTo); ok && c.rerr == nil && c.hdrN == 0 && c.rbuf == nil {
		return c.pushTo(wt, w, total)
	}
	for {
		if c.rerr != nil {
			if c.rerr == io.EOF {
				return total, nil
			}
			return total, c.rerr
		}
		n, err := c.readFrameHeader()
		var pt []byte
		if err == nil {
			pt, err = c.readFrameBody(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		k, err := w.Write(pt)
		total += int64(k)
		c.releaseRead()
		if err != nil {
			return total, err
		}
	}
}

// Write encrypts p into frames of at most MaxPlaintext bytes and sends them in batches of up to
// batchFrames frames per write to the underlying stream.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	frames := min((len(p)+MaxPlaintext-1)/MaxPlaintext, batchFrames)
	bp := bufpool.Get(min(len(p)+frames*(2+tagSize), batchSize))
	defer bufpool.Put(bp)
	written := 0
	for len(p) > 0 {
		out := (*bp)[:0]
		batched := 0
		for len(p) > batched && cap(out)-len(out) >= 2+tagSize+min(len(p)-batched, MaxPlaintext) {
			n := min(len(p)-batched, MaxPlaintext)
			out = binary.BigEndian.AppendUint16(out, uint16(n+tagSize))
			var err error
			if out, err = c.sealFrame(out, p[batched:batched+n]); err != nil {
				c.werr = err
				return written, err
			}
			batched += n
		}
		if err := c.send1(out); err != nil {
			return written, err
		}
		written += batched
		p = p[batched:]
	}
	return written, nil
}

// send1 writes sealed frames to the underlying stream in one write, after the held handshake
// message if there is one.
func (c *Conn) send1(frames []byte) error {
	if c.hsMsg != nil {
		c.hsTimer.Stop()
		frames = append(c.hsMsg, frames...)
		c.hsMsg = nil
		c.hsPending.Store(false)
	}
	if _, err := c.raw.Write(frames); err != nil {
		c.werr = fmt.Errorf("e2e: write: %w", err)
		return c.werr
	}
	return nil
}

func (c *Conn) writable() error {
	if c.werr != nil {
		return c.werr
	}
	if c.wclosed {
		return ErrWriteClosed
	}
	return nil
}

// sealAndSend encrypts pt after the 2-byte header in frame (pt may alias frame[2:]) and sends
// the frame with one write.
func (c *Conn) sealAndSend(frame, pt []byte) error {
	binary.BigEndian.PutUint16(frame, uint16(len(pt)+tagSize))
	out, err := c.sealFrame(frame[:2], pt)
	if err != nil {
		c.werr = err
		return err
	}
	return c.send1(out)
}

// creditWaiter is a stream that can wait for the peer's flow-control credit (mux.Stream).
type creditWaiter interface{ AwaitCredit() (int, error) }

// ReadFrom encrypts everything r yields until io.EOF. It does not end the stream: call
// CloseWrite for that. When r is a socket, ReadFrom waits for data before taking a buffer, so an
// idle stream costs no buffer memory; a read that fills its buffer is followed by reads of up to
// batchFrames frames, sent with one write.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	rc := sockread.RawConn(r)
	var total int64
	for {
		if c.hsMsg != nil && (rc == nil || !c.short) {
			// About to wait on r while holding the write lock: the held handshake message
			// cannot wait with it (a server that speaks first would never get it).
			if err := c.send1(nil); err != nil {
				return total, err
			}
		}
		if c.short && rc != nil {
			n, err := c.readProbe(rc)
			total += int64(n)
			switch {
			case err == io.EOF:
				return total, nil
			case err == sockread.ErrUnsupported:
				rc = nil
			case err != nil:
				return total, err
			}
			continue
		}
		size := batchSize
		if c.short {
			size = maxFrame
		}
		// Read no more than the stream may send now (at least a frame): a batch read ahead
		// of credit is a buffer held for as long as the reader stalls, and a router with 1,000
		// stalled downloads held 1 MiB for each (+148 MB RSS).
		if cw, ok := c.raw.(creditWaiter); ok {
			credit, err := cw.AwaitCredit()
			if err != nil {
				c.werr = fmt.Errorf("e2e: write: %w", err)
				return total, c.werr
			}
			size = min(size, max(1, credit/maxFrame)*maxFrame)
		}
		bp := bufpool.Get(size)
		n, rerr, werr := c.readAndSeal(r, rc, (*bp)[:size])
		bufpool.Put(bp)
		total += int64(n)
		switch {
		case werr != nil:
			return total, werr
		case rerr == io.EOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// readProbe waits for the socket to have data, reads up to len(c.probe) bytes of it and sends
// them as one frame. A full probe means more is waiting: the next read is a large one.
func (c *Conn) readProbe(rc syscall.RawConn) (int, error) {
	n, err := sockread.Read(rc, c.probe[:], c.hsMsg != nil)
	if err == sockread.ErrWouldBlock { // nothing for the held handshake message to travel with
		return 0, c.send1(nil)
	}
	if n == 0 {
		return 0, err
	}
	c.short = n < len(c.probe)
	bp := bufpool.Get(2 + n + tagSize)
	defer bufpool.Put(bp)
	frame := *bp
	copy(frame[2:], c.probe[:n])
	if werr := c.sealAndSend(frame[:2], frame[2:2+n]); werr != nil {
		return 0, werr
	}
	return n, err
}

// readAndSeal reads once from r and seals what it got into frames in place, at the head of buf.
// A socket is read with one readv straight into each frame's plaintext slot. Another reader
// reads into the tail of buf, and each frame's plaintext moves to its slot: the head is left
// free by as many bytes as the frames add, so a sealed frame never overwrites plaintext not yet
// sealed.
func (c *Conn) readAndSeal(r io.Reader, rc syscall.RawConn, buf []byte) (n int, rerr, werr error) {
	frames := len(buf) / maxFrame
	inPlace := false
	if rc != nil {
		for i := range frames {
			c.iov[i] = buf[i*maxFrame+2 : i*maxFrame+2+MaxPlaintext]
		}
		n, rerr = sockread.Readv(rc, c.iov[:frames])
		clear(c.iov[:frames])
		inPlace = rerr != sockread.ErrUnsupported
	}
	off := frames * (2 + tagSize)
	if !inPlace {
		n, rerr = r.Read(buf[off : off+frames*MaxPlaintext])
	}
	c.short = n < frames*MaxPlaintext
	if n == 0 {
		return 0, rerr, nil
	}
	out := buf[:0]
	for done := 0; done < n; {
		k := min(n-done, MaxPlaintext)
		o := len(out)
		pt := buf[o+2 : o+2+k]
		if !inPlace {
			copy(pt, buf[off+done:off+done+k])
		}
		done += k
		binary.BigEndian.PutUint16(buf[o:], uint16(k+tagSize))
		sealed, err := c.sealFrame(buf[o:o+2], pt)
		if err != nil {
			c.werr = err
			return 0, rerr, err
		}
		out = buf[:o+len(sealed)]
	}
	if err := c.send1(out); err != nil {
		return 0, rerr, err
	}
	return n, rerr, nil
}

// CloseWrite sends the authenticated end of stream; the peer's Read then returns io.EOF.
// Reading continues to work.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closeWriteLocked()
}

func (c *Conn) closeWriteLocked() error {
	if err := c.writable(); err != nil {
		if c.wclosed {
			return nil
		}
		return err
	}
	var frame [2 + tagSize]byte
	err := c.sealAndSend(frame[:], nil)
	c.wclosed = true
	return err
}

// closeWriteTimeout bounds how long Close waits to deliver the end of stream to a peer that
// does not read.
const closeWriteTimeout = 5 * time.Second

// Close ends the stream gracefully: it sends the end of stream (if CloseWrite did not) and
// closes the underlying stream.
func (c *Conn) Close() error {
	c.raw.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	c.wmu.Lock()
	err := c.closeWriteLocked()
	c.wmu.Unlock()
	if cerr := c.raw.Close(); err == nil {
		err = cerr
	}
	c.rmu.Lock()
	c.releaseRead()
	c.rmu.Unlock()
	return err
}

// Abort closes the stream without the end of stream, so the peer's reads fail with
// ErrTruncated instead of ending cleanly: the way to pass on a failure.
func (c *Conn) Abort() error {
	return c.raw.Close()
}

// readFull is io.ReadFull that reports how much it read on any error.
func readFull(r io.Reader, p []byte) (int, error) {
	n, err := io.ReadFull(r, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// errEndOfStream stops the underlying WriterTo at the authenticated end of stream.
var errEndOfStream = errors.New("e2e: end of stream")

// pushTo lets the underlying stream push what it received (the multiplexer hands over its frame
// buffers without copying them first) and decrypts frames straight out of those buffers into w.
func (c *Conn) pushTo(src io.WriterTo, w io.Writer, total int64) (int64, error) {
	f := &framer{c: c, w: w, total: total}
	_, err := src.WriteTo(f)
	switch {
	case errors.Is(err, errEndOfStream):
		f.release()
		return f.total, nil
	case f.werr != nil:
		f.release()
		return f.total, f.werr
	case c.rerr != nil:
		f.release()
		return f.total, c.rerr
	case err == nil: // the stream ended without the end-of-stream frame
		err = io.EOF
	}
	f.handOver()
	return f.total, c.readErr(err)
}

// framer reassembles frames from the chunks the underlying stream pushes.
type framer struct {
	c     *Conn
	w     io.Writer
	total int64
	werr  error // a failure writing to w (as opposed to reading the stream)

	partial *[]byte // pooled; a frame spread over several chunks
	have    int     // bytes of the frame (length prefix included) in partial

	out  *[]byte // pooled; plaintext decrypted from the current chunk, not yet written
	outN int
}

// handOver keeps a partly received frame in the Conn, so that reading can resume after a
// deadline expired in the middle of it.
func (f *framer) handOver() {
	if f.partial == nil {
		return
	}
	buf := *f.partial
	if f.have < 2 {
		f.c.hdrN = copy(f.c.hdr[:], buf[:f.have])
		f.release()
		return
	}
	copy(f.c.hdr[:], buf[:2])
	f.c.hdrN = 2
	f.c.bodyN = copy(buf, buf[2:f.have])
	f.c.rbuf, f.partial = f.partial, nil
}

func (f *framer) release() {
	if f.partial != nil {
		bufpool.Put(f.partial)
		f.partial = nil
	}
}

// Write decrypts the whole frames in chunk (and a frame completed by it) into one plaintext
// batch, written to w with one write: the multiplexer delivers up to 1 MiB at a time, and the
// target gets it in one system call rather than one per frame.
func (f *framer) Write(chunk []byte) (int, error) {
	n := len(chunk)
	err := f.decrypt(chunk)
	if ferr := f.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (f *framer) decrypt(chunk []byte) error {
	for len(chunk) > 0 {
		if f.partial == nil && len(chunk) >= 2 {
			size := 2 + int(binary.BigEndian.Uint16(chunk))
			if err := f.c.checkFrame(size - 2); err != nil {
				return err
			}
			if len(chunk) >= size { // a whole frame in this chunk: decrypt it from here
				if err := f.open(chunk[2:size], len(chunk)); err != nil {
					return err
				}
				chunk = chunk[size:]
				continue
			}
		}
		if f.partial == nil {
			f.partial, f.have = bufpool.Get(maxFrame), 0
		}
		buf := *f.partial
		if f.have < 2 {
			k := copy(buf[f.have:2], chunk)
			f.have += k
			chunk = chunk[k:]
			if f.have < 2 {
				continue
			}
			if err := f.c.checkFrame(int(binary.BigEndian.Uint16(buf))); err != nil {
				return err
			}
		}
		size := 2 + int(binary.BigEndian.Uint16(buf))
		k := copy(buf[f.have:size], chunk)
		f.have += k
		chunk = chunk[k:]
		if f.have == size {
			err := f.open(buf[2:size], len(chunk)+size)
			f.release()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// open decrypts one frame's ciphertext onto the end of the plaintext batch, which is taken from
// the pool, large enough for what is left of the chunk, at the batch's first frame.
func (f *framer) open(ct []byte, left int) error {
	if f.out == nil {
		f.out = bufpool.Get(min(left, batchSize+maxFrame))
		f.outN = 0
	}
	if len(*f.out)-f.outN < len(ct) { // more frames than the batch was sized for
		if err := f.flush(); err != nil {
			return err
		}
		return f.open(ct, left)
	}
	buf := *f.out
	pt, err := f.c.open(ct, buf[f.outN:f.outN])
	if err != nil {
		if err == io.EOF {
			return errEndOfStream
		}
		return err
	}
	f.outN += len(pt)
	return nil
}

// flush writes the plaintext batch to w and returns the batch's buffer.
func (f *framer) flush() error {
	if f.out == nil {
		return nil
	}
	buf, n := *f.out, f.outN
	defer func() { bufpool.Put(f.out); f.out = nil }()
	if n == 0 {
		return nil
	}
	k, err := f.w.Write(buf[:n])
	f.total += int64(k)
	if err != nil {
		f.werr = err
	}
	return err
}
