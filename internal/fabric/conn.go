package fabric

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// readBufferSize lets one read system call fetch many TLS records at full speed.
const readBufferSize = 256 << 10

// batchedConn sits under a tls.Conn. crypto/tls issues one write system call per 16 KiB record
// and one read per record; system calls, not encryption, then dominate a loopback or LAN link.
// batchedConn buffers reads, and while corked collects the records of one tls.Conn.Write so that
// they leave in a single system call.
type batchedConn struct {
	net.Conn
	r *bufio.Reader
	// lastRead is when bytes last arrived (ns on the monotonic clock since clockBase): any
	// traffic from the peer, not only keepalives, proves the link alive.
	lastRead atomic.Int64

	mu     sync.Mutex
	corked bool
	out    []byte
}

// clockBase anchors monotonic timestamps kept in atomics.
var clockBase = time.Now()

func monotonic() int64 { return int64(time.Since(clockBase)) }

func newBatchedConn(c net.Conn) *batchedConn {
	bc := &batchedConn{Conn: c}
	bc.r = bufio.NewReaderSize(readStamper{bc}, readBufferSize)
	bc.lastRead.Store(monotonic())
	return bc
}

func (c *batchedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readStamper reads from the network for the buffer and notes when bytes arrived.
type readStamper struct{ c *batchedConn }

func (r readStamper) Read(p []byte) (int, error) {
	n, err := r.c.Conn.Read(p)
	if n > 0 {
		r.c.lastRead.Store(monotonic())
	}
	return n, err
}

func (c *batchedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.out = append(c.out, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *batchedConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork sends what was collected while corked.
func (c *batchedConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

// recordWriter is what the multiplexer writes to: each multiplexer frame becomes whole TLS
// records sent with one system call.
type recordWriter struct {
	net.Conn // the tls.Conn: Read and Close go straight to it
	under    *batchedConn
}

// Close closes the TCP connection itself, without TLS's close_notify: a link is closed when it
// failed or went silent, and close_notify would first wait (up to 5 s, crypto/tls's bound) for a
// write stuck on the full connection to a silent peer. The multiplexer's own framing tells a
// clean end from a truncated one.
func (w recordWriter) Close() error { return w.under.Conn.Close() }

func (w recordWriter) Write(p []byte) (int, error) {
	w.under.cork()
	n, err := w.Conn.Write(p)
	if ferr := w.under.uncork(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// WriteBuffers lets the multiplexer hand over a frame's header and payload without first
// copying them into one buffer; they still leave in a single system call.
func (w recordWriter) WriteBuffers(v [][]byte) (int, error) {
	w.under.cork()
	n := 0
	var err error
	for _, b := range v {
		var k int
		k, err = w.Conn.Write(b)
		n += k
		if err != nil {
			break
		}
	}
	if ferr := w.under.uncork(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}
