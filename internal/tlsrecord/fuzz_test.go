package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// streamConn is a net.Conn that reads a fixed byte stream and collects what is written.
type streamConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// fixedConn is a Conn over stream whose receiving key is what fixedWriter seals with.
func fixedConn(t testing.TB, stream []byte) *Conn {
	s, _ := suiteByID(tls.TLS_AES_128_GCM_SHA256)
	in, err := newHalf(s, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := newHalf(s, bytes.Repeat([]byte{2}, 32))
	return newConn(&streamConn{r: bytes.NewReader(stream)}, tls.ConnectionState{}, in, out, nil, true)
}

// fixedWriter seals with the key fixedConn receives with.
func fixedWriter(t testing.TB) (*Conn, *streamConn) {
	s, _ := suiteByID(tls.TLS_AES_128_GCM_SHA256)
	out, err := newHalf(s, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := newHalf(s, bytes.Repeat([]byte{2}, 32))
	sc := &streamConn{r: bytes.NewReader(nil)}
	return newConn(sc, tls.ConnectionState{}, in, out, nil, false), sc
}

// Whatever arrives, reading never panics, never returns more than was asked, and a stream that
// fails stays failed.
func FuzzReadRecords(f *testing.F) {
	w, sc := fixedWriter(f)
	w.WriteBuffers([][]byte{[]byte("header"), bytes.Repeat([]byte("x"), 40000)})
	sc.out.Write(w.sealKeyUpdate(nil, true))
	w.Write([]byte("under the next key"))
	f.Add(sc.out.Bytes(), uint16(7))
	f.Add([]byte{23, 3, 3, 0, 17}, uint16(1))
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40}, uint16(100))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16) {
		c := fixedConn(t, stream)
		buf := make([]byte, int(chunk)%20000+1)
		failed := false
		for range 1000 {
			n, err := c.Read(buf)
			if n > len(buf) {
				t.Fatalf("read %d bytes into %d", n, len(buf))
			}
			if failed && n > 0 {
				t.Fatal("data after a failure")
			}
			if err != nil {
				if failed {
					return
				}
				failed = true
			}
		}
	})
}

// What one end seals in any split, the other reads back whole, with reads of any size.
func FuzzRoundTrip(f *testing.F) {
	f.Add(bytes.Repeat([]byte("ab"), 20000), uint16(3), uint16(100), true)
	f.Add([]byte("x"), uint16(1), uint16(1), false)
	f.Fuzz(func(t *testing.T, data []byte, split, readSize uint16, full bool) {
		w, sc := fixedWriter(t)
		var v [][]byte
		for rest, k := data, int(split)%50000+1; len(rest) > 0; {
			n := min(k, len(rest))
			v = append(v, rest[:n])
			rest = rest[n:]
		}
		if _, err := w.WriteBuffers(v); err != nil {
			t.Fatal(err)
		}
		c := fixedConn(t, sc.out.Bytes())
		var got []byte
		size := int(readSize)%70000 + 1
		for len(got) < len(data) {
			p := make([]byte, min(size, len(data)-len(got)), size+1)
			if full {
				if err := c.ReadFull(p); err != nil {
					t.Fatal(err)
				}
				got = append(got, p...)
				continue
			}
			n, err := c.Read(p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p[:n]...)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("data differs")
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after the data: %d bytes, %v", n, err)
		}
	})
}
