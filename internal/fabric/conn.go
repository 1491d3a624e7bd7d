package fabric

import (
	"bufio"
	"net"
	"sync"
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

	mu     sync.Mutex
	corked bool
	out    []byte
}

func newBatchedConn(c net.Conn) *batchedConn {
	return &batchedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}
}

func (c *batchedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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

func (w recordWriter) Write(p []byte) (int, error) {
	w.under.cork()
	n, err := w.Conn.Write(p)
	if ferr := w.under.uncork(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}
