package tlsrecord

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/internal/pki"
)

// credentials returns the configurations a fabric link's two ends use (internal/pki): mutual
// TLS 1.3 with certificates from one throw-away network CA.
func credentials(t testing.TB) (client, server *tls.Config) {
	t.Helper()
	ca, err := pki.NewCA("tlsrecord test CA")
	if err != nil {
		t.Fatal(err)
	}
	slot := func(kind, id string) *pki.CertSlot {
		iss, key, err := ca.IssueServer(kind, id, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := pki.TLSCertificate(iss.ChainPEM, key)
		if err != nil {
			t.Fatal(err)
		}
		return pki.NewCertSlot(c)
	}
	client = pki.MutualClientConfig(slot(api.KindIdentity, "client"), ca.Cert, api.KindHub)
	server = pki.MutualServerConfig(slot(api.KindHub, "server"), ca.Cert, nil, api.KindIdentity)
	return client, server
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	a, b := nettest.TCPPair(t)
	return a, b
}

// end is one side of a test connection: this package's Conn or crypto/tls's.
type end interface {
	net.Conn
	ConnectionState() tls.ConnectionState
}

// pair connects a client and a server, each with this package (ours) or crypto/tls.
func pair(t testing.TB, oursClient, oursServer bool) (client, server end) {
	t.Helper()
	ccfg, scfg := credentials(t)
	a, b := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	go func() {
		var err error
		if oursServer {
			server, err = Server(ctx, b, scfg)
		} else {
			tc := tls.Server(b, scfg)
			err, server = tc.HandshakeContext(ctx), tc
		}
		errs <- err
	}()
	var err error
	if oursClient {
		client, err = Client(ctx, a, ccfg)
	} else {
		tc := tls.Client(a, ccfg)
		err, client = tc.HandshakeContext(ctx), tc
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return client, server
}

var combos = []struct {
	name                   string
	oursClient, oursServer bool
}{
	{"ours-ours", true, true},
	{"ours-cryptotls", true, false},
	{"cryptotls-ours", false, true},
}

// Data of every record size crosses in both directions, whichever end uses this package: the
// records are TLS 1.3's, byte for byte.
func TestInteroperatesWithCryptoTLS(t *testing.T) {
	sizes := []int{1, 7, 100, maxPlaintext - 1, maxPlaintext, maxPlaintext + 1, 3*maxPlaintext + 5, 1 << 20}
	for _, cb := range combos {
		t.Run(cb.name, func(t *testing.T) {
			c, s := pair(t, cb.oursClient, cb.oursServer)
			for _, dir := range []struct {
				name string
				w, r end
			}{{"client->server", c, s}, {"server->client", s, c}} {
				for _, n := range sizes {
					msg := make([]byte, n)
					rand.Read(msg)
					errs := make(chan error, 1)
					go func() { _, err := dir.w.Write(msg); errs <- err }()
					got := make([]byte, n)
					if _, err := io.ReadFull(dir.r, got); err != nil {
						t.Fatalf("%s %d bytes: %v", dir.name, n, err)
					}
					if err := <-errs; err != nil {
						t.Fatalf("%s %d bytes: write: %v", dir.name, n, err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("%s %d bytes: data differs", dir.name, n)
					}
				}
			}
			if cs := c.ConnectionState(); cs.Version != tls.VersionTLS13 || len(cs.PeerCertificates) == 0 {
				t.Fatalf("client state: version %x, %d peer certificates", cs.Version, len(cs.PeerCertificates))
			}
			if cs := s.ConnectionState(); len(cs.PeerCertificates) == 0 {
				t.Fatal("the server saw no client certificate")
			}
		})
	}
}

// A writer's buffers each start a record, so ReadFull of exactly one buffer decrypts every
// record straight into the caller's buffer (the last one into its spare capacity), leaving
// nothing pending; a reader asking for less gets the rest on the next read.
func TestReadFullDecryptsInPlace(t *testing.T) {
	c, s := pair(t, true, true)
	w, r := c.(*Conn), s.(*Conn)
	hdr := []byte("8 bytes!")
	payload := make([]byte, 5*maxPlaintext+123)
	rand.Read(payload)
	go w.WriteBuffers([][]byte{hdr, payload, hdr})
	var h [8]byte
	if err := r.ReadFull(h[:]); err != nil || string(h[:]) != string(hdr) {
		t.Fatalf("header: %q %v", h, err)
	}
	buf := make([]byte, len(payload), len(payload)+1)
	if err := r.ReadFull(buf); err != nil || !bytes.Equal(buf, payload) {
		t.Fatalf("payload: %v", err)
	}
	// Only a record decrypted into place leaves its inner content type in the spare byte.
	if len(r.pending) != 0 || buf[:cap(buf)][len(buf)] != typeApplicationData {
		t.Fatalf("the payload's last record was not decrypted into place (%d bytes pending)", len(r.pending))
	}
	// Less than a record: the rest is returned by the next reads.
	var a, b [4]byte
	if err := r.ReadFull(a[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, b[:]); err != nil || string(a[:])+string(b[:]) != string(hdr) {
		t.Fatalf("split read: %q %q %v", a, b, err)
	}
}

// setUpdateAfter changes the key update schedule of those ends that are this package's Conns,
// before any record crosses.
func setUpdateAfter(n uint64, ends ...end) {
	for _, e := range ends {
		if c, ok := e.(*Conn); ok {
			c.updateAfter, c.askAfter = n, 2*n
		}
	}
}

// This end updates its sending key on schedule and a crypto/tls reader follows; a crypto/tls
// writer, which never updates by itself, is asked to and does; this package's reader follows.
func TestKeyUpdates(t *testing.T) {
	for _, cb := range combos {
		t.Run(cb.name, func(t *testing.T) {
			c, s := pair(t, cb.oursClient, cb.oursServer)
			setUpdateAfter(8, c, s)
			ours := c
			if !cb.oursClient {
				ours = s
			}
			o := ours.(*Conn)
			secretsBefore := [][]byte{bytes.Clone(o.in.secret), bytes.Clone(o.out.secret)}
			// Enough records both ways for several updates (a read asks, the next write sends).
			for round := range 6 {
				for _, dir := range [][2]end{{c, s}, {s, c}} {
					msg := bytes.Repeat([]byte{byte(round)}, 20*maxPlaintext)
					errs := make(chan error, 1)
					go func() { _, err := dir[0].Write(msg); errs <- err }()
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(dir[1], got); err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					if err := <-errs; err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("round %d: data differs", round)
					}
				}
			}
			// A key update request goes out from a goroutine of the reader's: lock both halves.
			o.rmu.Lock()
			o.wmu.Lock()
			defer o.wmu.Unlock()
			defer o.rmu.Unlock()
			if bytes.Equal(o.out.secret, secretsBefore[1]) {
				t.Error("the sending key was never updated")
			}
			if bytes.Equal(o.in.secret, secretsBefore[0]) {
				t.Error("the receiving key was never updated: the peer was not asked, or ignored it")
			}
			if o.out.seq > o.updateAfter || o.in.seq > o.askAfter+o.updateAfter {
				t.Errorf("keys used beyond the schedule: out %d, in %d records", o.out.seq, o.in.seq)
			}
		})
	}
}

// A peer that goes on sending under one key past AES-GCM's limit, asked or not, is cut off.
func TestRecordLimitEnforced(t *testing.T) {
	w, sc := fixedWriter(t)
	setUpdateAfter(1<<62, w) // the writer here would otherwise update on its own
	lim := w.out.suite.recordLimit
	w.out.seq = lim - 1 // as if lim-1 records had crossed
	w.Write(bytes.Repeat([]byte{1}, 3*maxPlaintext))
	r := fixedConn(t, sc.out.Bytes())
	r.in.seq, r.askedAt = lim-1, lim-1 // and the peer had been asked already
	buf := make([]byte, 3*maxPlaintext)
	n, err := io.ReadFull(r, buf)
	if !errors.Is(err, ErrRecordLimit) || n != maxPlaintext {
		t.Fatalf("read past the limit: %d bytes, %v", n, err)
	}
}

// tamperConn flips one byte of what it forwards, at offset flipAt of the stream.
type tamperConn struct {
	net.Conn
	mu     sync.Mutex
	seen   int
	flipAt int
}

func (c *tamperConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.flipAt >= c.seen && c.flipAt < c.seen+len(p) {
		p = bytes.Clone(p)
		p[c.flipAt-c.seen] ^= 0x40
	}
	c.seen += len(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// A record altered on the way fails authentication: the reader returns an error naming
// bad_record_mac, and none of the altered record's content; the connection stays failed.
func TestTamperedRecordIsRejected(t *testing.T) {
	c, s := pair(t, true, true)
	w := c.(*Conn)
	good := bytes.Repeat([]byte("g"), 100)
	if _, err := w.Write(good); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(good))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	tc := &tamperConn{Conn: w.raw, flipAt: recordHeaderLen + 10}
	w.raw = tc
	if _, err := w.Write(bytes.Repeat([]byte("x"), 100)); err != nil {
		t.Fatal(err)
	}
	n, err := s.Read(got)
	var ae *alertError
	if n != 0 || !errors.As(err, &ae) || ae.alert != alertBadRecordMAC {
		t.Fatalf("tampered record: read %d bytes, err %v", n, err)
	}
	if _, err2 := s.Read(got); err2 == nil {
		t.Fatal("the connection kept reading after a forged record")
	}
}

// close_notify from a crypto/tls peer ends the stream cleanly after its data; a connection cut
// in the middle of a record is a truncation.
func TestEndOfStream(t *testing.T) {
	c, s := pair(t, false, true)
	go func() {
		c.Write([]byte("last words"))
		c.Close() // crypto/tls sends close_notify
	}()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "last words" {
		t.Fatalf("ReadAll: %q %v", got, err)
	}

	c2, s2 := pair(t, true, true)
	w := c2.(*Conn)
	rec := w.seal(nil, typeApplicationData, []byte("cut short"))
	w.raw.Write(rec[:len(rec)-3])
	w.raw.Close()
	_, err = io.ReadAll(s2)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated record: %v", err)
	}
}

// A deadline in the middle of a ReadFull loses nothing: the next ReadFull returns it all.
func TestReadFullDeadlineKeepsData(t *testing.T) {
	c, s := pair(t, true, true)
	w, r := c.(*Conn), s.(*Conn)
	if _, err := w.Write(bytes.Repeat([]byte("A"), 100)); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	buf := make([]byte, 200)
	if err := r.ReadFull(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFull past the deadline: %v", err)
	}
	r.SetReadDeadline(time.Time{})
	go w.Write(bytes.Repeat([]byte("B"), 100))
	if err := r.ReadFull(buf); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("A", 100) + strings.Repeat("B", 100); string(buf) != want {
		t.Fatalf("after the deadline: %q", buf)
	}
}

// A read deadline interrupts a read without breaking the connection.
func TestReadDeadlineIsNotFatal(t *testing.T) {
	c, s := pair(t, true, true)
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [4]byte
	if _, err := s.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	s.SetReadDeadline(time.Time{})
	go c.Write([]byte("late"))
	if _, err := io.ReadFull(s, b[:]); err != nil || string(b[:]) != "late" {
		t.Fatalf("after the deadline: %q %v", b, err)
	}
}

// A connection that caught up with a burst returns its streaming buffer: waiting for data, it
// holds only its probe.
func TestIdleConnectionHoldsNoStreamBuffer(t *testing.T) {
	c, s := pair(t, true, true)
	r := s.(*Conn)
	msg := make([]byte, 4<<20)
	go c.Write(msg)
	if _, err := io.ReadFull(r, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	if r.stream == nil {
		t.Fatal("a 4 MiB burst was read without the streaming buffer")
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [4]byte
	if _, err := r.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle read: %v", err)
	}
	if r.stream != nil {
		t.Fatal("a connection waiting for data still holds its streaming buffer")
	}
}

// The records seen on the wire are TLS 1.3 application_data records of at most 2^14 bytes of
// content, and nothing else.
func TestWireFormat(t *testing.T) {
	c, s := pair(t, true, true)
	w := c.(*Conn)
	rec := &recorder{Conn: w.raw}
	w.raw = rec
	go io.Copy(io.Discard, s)
	if _, err := w.WriteBuffers([][]byte{[]byte("hdr"), make([]byte, 2*maxPlaintext+1)}); err != nil {
		t.Fatal(err)
	}
	b := rec.Bytes()
	var lengths []int
	for len(b) > 0 {
		if len(b) < recordHeaderLen || b[0] != typeApplicationData || b[1] != 3 || b[2] != 3 {
			t.Fatalf("not a TLS 1.3 record header: % x", b[:min(len(b), 5)])
		}
		n := int(b[3])<<8 | int(b[4])
		lengths = append(lengths, n-tagLen-1)
		b = b[recordHeaderLen+n:]
	}
	if want := []int{3, maxPlaintext, maxPlaintext, 1}; !equalInts(lengths, want) {
		t.Fatalf("record content lengths %v, want %v", lengths, want)
	}
}

type recorder struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// slowConn delays its reads while armed, so that what the peer sends right after its last
// handshake record arrives in the same read as that record.
type slowConn struct {
	*net.TCPConn
	armed atomic.Bool
}

func (c *slowConn) Read(p []byte) (int, error) {
	if c.armed.Load() {
		time.Sleep(30 * time.Millisecond)
	}
	return c.TCPConn.Read(p)
}

// Records that arrived together with the handshake's last one (read by the handshake, not yet
// handed to crypto/tls) reach the Conn, whether they fit its probe or not. The wrapper's own
// Read is used throughout: the Conn reads around only a bare socket.
func TestRecordsAfterTheHandshake(t *testing.T) {
	for _, size := range []int{10, 3000, 5000, 40000} {
		ccfg, scfg := credentials(t)
		a, b := tcpPair(t)
		sc := &slowConn{TCPConn: b.(*net.TCPConn)}
		sc.armed.Store(true)
		msg := make([]byte, size)
		rand.Read(msg)
		done := make(chan error, 1)
		go func() {
			cc, err := Client(context.Background(), a, ccfg)
			if err == nil {
				_, err = cc.Write(msg)
			}
			done <- err
		}()
		srv, err := Server(context.Background(), sc, scfg)
		if err != nil {
			t.Fatal(err)
		}
		sc.armed.Store(false)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if srv.rc != nil {
			t.Fatal("the Conn reads around its connection's own Read")
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes after the handshake: %v", size, err)
		}
	}
}

// The peer's KeyUpdate(update_requested) is answered with a KeyUpdate of our own, not
// requesting one back, before our next data; both directions then run on new keys.
func TestAnswersUpdateRequested(t *testing.T) {
	c, s := pair(t, true, true)
	a, b := c.(*Conn), s.(*Conn)
	aOut, bOut := bytes.Clone(a.out.secret), bytes.Clone(b.out.secret)
	a.askPeer.Store(true)
	go a.Write([]byte("x"))
	var one [1]byte
	if _, err := b.Read(one[:]); err != nil {
		t.Fatal(err)
	}
	if !b.peerAsked.Load() {
		t.Fatal("the request was not noted")
	}
	go b.Write([]byte("y"))
	if _, err := a.Read(one[:]); err != nil || one[0] != 'y' {
		t.Fatal(err)
	}
	for _, x := range []*Conn{a, b} {
		x.rmu.Lock()
		x.wmu.Lock()
		defer x.wmu.Unlock()
		defer x.rmu.Unlock()
	}
	if bytes.Equal(a.out.secret, aOut) || bytes.Equal(b.out.secret, bOut) || !bytes.Equal(a.in.secret, b.out.secret) {
		t.Fatal("keys not updated both ways")
	}
	if a.peerAsked.Load() {
		t.Fatal("the answer requested an update back")
	}
}

// Records that break RFC 8446's rules end the connection with the alert the RFC names, and none
// of their content is returned.
func TestMalformedRecords(t *testing.T) {
	cases := []struct {
		name  string
		build func(w *Conn) []byte
		alert uint8
	}{
		{"handshake message interrupted by data", func(w *Conn) []byte { // §5.1
			out := w.seal(nil, typeHandshake, []byte{msgKeyUpdate, 0})
			out = w.seal(out, typeApplicationData, []byte("data"))
			return w.seal(out, typeHandshake, []byte{0, 1, 0})
		}, alertUnexpectedMessage},
		{"KeyUpdate not ending its record", func(w *Conn) []byte {
			return w.seal(nil, typeHandshake, []byte{msgKeyUpdate, 0, 0, 1, 0, msgKeyUpdate})
		}, alertUnexpectedMessage},
		{"KeyUpdate request 2", func(w *Conn) []byte {
			return w.seal(nil, typeHandshake, []byte{msgKeyUpdate, 0, 0, 1, 2})
		}, alertIllegalParameter},
		{"padding beyond 2^14+1", func(w *Conn) []byte { // §5.4
			inner := append(bytes.Repeat([]byte("z"), maxPlaintext), typeApplicationData)
			return w.seal(nil, 0, append(inner, make([]byte, 200)...))
		}, alertRecordOverflow},
		{"no content type", func(w *Conn) []byte { return w.seal(nil, 0, make([]byte, 10)) }, alertUnexpectedMessage},
		{"session ticket to a server", func(w *Conn) []byte {
			return w.seal(nil, typeHandshake, []byte{msgNewSessionTicket, 0, 0, 0})
		}, alertUnexpectedMessage},
		{"change_cipher_spec after the handshake", func(w *Conn) []byte { return []byte{20, 3, 3, 0, 1, 1} }, alertUnexpectedMessage},
		{"oversized record", func(w *Conn) []byte { return []byte{23, 3, 3, 0x41, 1} }, alertRecordOverflow},
		{"records without data", func(w *Conn) []byte {
			var out []byte
			for range maxEmptyRecords + 1 {
				out = w.seal(out, typeApplicationData, nil)
			}
			return out
		}, alertUnexpectedMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := fixedWriter(t)
			r := fixedConn(t, append(tc.build(w), w.seal(nil, typeApplicationData, []byte("after"))...))
			r.isClient = false
			got, err := io.ReadAll(r)
			var ae *alertError
			if len(got) != 0 || !errors.As(err, &ae) || ae.alert != tc.alert {
				t.Fatalf("read %q, err %v; want alert %v", got, err, tls.AlertError(tc.alert))
			}
		})
	}
}

// A client ignores the session tickets a server may send after the handshake.
func TestSessionTicketsIgnored(t *testing.T) {
	w, _ := fixedWriter(t)
	out := w.seal(nil, typeHandshake, []byte{msgNewSessionTicket, 0, 0, 3, 1, 2, 3})
	out = w.seal(out, typeApplicationData, []byte("data"))
	got, err := io.ReadAll(fixedConn(t, out))
	if string(got) != "data" || !errors.Is(err, io.ErrUnexpectedEOF) && err != nil {
		t.Fatalf("read %q, %v", got, err)
	}
}

// A fatal alert sent after a forged record is one the peer can decrypt: crypto/tls reports it.
func TestFatalAlertReachesPeer(t *testing.T) {
	c, s := pair(t, false, true)
	r := s.(*Conn)
	raw := c.(*tls.Conn).NetConn()
	raw.Write([]byte{23, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	var b [1]byte
	if _, err := r.Read(b[:]); err == nil {
		t.Fatal("a forged record was accepted")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// crypto/tls reports a received alert as "remote error: " and the alert's text.
	_, err := c.Read(b[:])
	if want := "remote error: " + tls.AlertError(alertBadRecordMAC).Error(); err == nil || err.Error() != want {
		t.Fatalf("the peer read %v, want %q", err, want)
	}
}

// Every TLS 1.3 suite round-trips, including through a key update.
func TestAllSuites(t *testing.T) {
	for _, su := range suites {
		in, _ := newHalf(su, bytes.Repeat([]byte{7}, su.hash().Size()))
		out, _ := newHalf(su, bytes.Repeat([]byte{7}, su.hash().Size()))
		sc := &streamConn{r: bytes.NewReader(nil)}
		w := newConn(sc, tls.ConnectionState{}, out, out, nil, false)
		setUpdateAfter(3, w)
		msg := make([]byte, 10*maxPlaintext+9)
		rand.Read(msg)
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		r := newConn(&streamConn{r: bytes.NewReader(sc.out.Bytes())}, tls.ConnectionState{}, in, in, nil, true)
		setUpdateAfter(3, r)
		got, err := io.ReadAll(r)
		if !bytes.Equal(got, msg) || !errors.Is(err, io.ErrUnexpectedEOF) && err != nil {
			t.Fatalf("%s: %d of %d bytes, %v", tls.CipherSuiteName(su.id), len(got), len(msg), err)
		}
		if r.in.seq >= 4 {
			t.Fatalf("%s: no key update crossed", tls.CipherSuiteName(su.id))
		}
	}
}

// Reads of any size, with ReadFull's spare capacity or without, return exactly what was
// written in any split: the direct, in-place and spill paths agree.
func TestReadPaths(t *testing.T) {
	for iter := range 200 {
		w, sc := fixedWriter(t)
		data := make([]byte, 1+iter*997%200000)
		rand.Read(data)
		var v [][]byte
		split := 1 + (iter*131)%30000
		for rest := data; len(rest) > 0; {
			n := min(split, len(rest))
			v = append(v, rest[:n])
			rest = rest[n:]
		}
		w.WriteBuffers(v)
		c := fixedConn(t, sc.out.Bytes())
		var got []byte
		for k := 1; len(got) < len(data); k++ {
			l := min(1+(k*7919+iter)%20000, len(data)-len(got))
			p := make([]byte, l, l+(k%2)*40000)
			if k%3 == 0 {
				n, err := c.Read(p)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p[:n]...)
				continue
			}
			if err := c.ReadFull(p); err != nil {
				t.Fatal(err)
			}
			got = append(got, p...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("iteration %d: data differs", iter)
		}
	}
}
