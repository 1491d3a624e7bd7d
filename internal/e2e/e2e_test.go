package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/fabric/mux"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/internal/pki"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	a, b := nettest.TCPPair(t)
	return a, b
}

func endpoint(p *fabrictest.PKI, kind, id string) *Endpoint {
	return NewEndpoint(pki.NewCertSlot(p.Cert(kind, id)), p.CA.Cert)
}

// handshake runs both sides over raw connections; the hello and reply travel out of band, as
// they do inside fabric requests and responses.
func handshake(t *testing.T, client, router *Endpoint, clientTarget, routerTarget string, craw, rraw net.Conn) (*Conn, *Conn, error, error) {
	t.Helper()
	in, hello, err := client.Initiate(clientTarget)
	if err != nil {
		t.Fatal(err)
	}
	resp, reply, rerr := router.Respond(routerTarget, "", hello)
	if rerr != nil {
		return nil, nil, nil, rerr
	}
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		rraw.SetReadDeadline(time.Now().Add(5 * time.Second))
		c, err := resp.Finish(rraw)
		rraw.SetReadDeadline(time.Time{})
		done <- result{c, err}
	}()
	cc, cerr := in.Finish(craw, reply)
	if cerr != nil {
		craw.Close()
	}
	r := <-done
	return cc, r.c, cerr, r.err
}

func connected(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	return connectedOver(t, tcpPair)
}

// muxPair returns the two ends of a multiplexer stream over loopback TCP, the transport the data
// plane uses: it hands whole frames to WriteTo.
func muxPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := tcpPair(t)
	cs, err := mux.Client(a, mux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := mux.Server(b, mux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	x, _ := cs.OpenStream()
	x.Write([]byte{0}) // opens it at the peer
	y, err := ss.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	y.Read(make([]byte, 1))
	return x, y
}

func connectedOver(t *testing.T, pair func(*testing.T) (net.Conn, net.Conn)) (*Conn, *Conn) {
	t.Helper()
	p := fabrictest.New(t)
	a, b := pair(t)
	cc, rc, cerr, rerr := handshake(t, endpoint(p, api.KindIdentity, "i1"), endpoint(p, api.KindRouter, "r1"), "db:5432", "db:5432", a, b)
	if cerr != nil || rerr != nil {
		t.Fatalf("handshake: client %v, router %v", cerr, rerr)
	}
	return cc, rc
}

func TestHandshakeAuthenticatesBothEnds(t *testing.T) {
	cc, rc := connected(t)
	if cc.Peer().Kind != api.KindRouter || cc.Peer().ID != "r1" {
		t.Errorf("client sees %+v", cc.Peer())
	}
	if rc.Peer().Kind != api.KindIdentity || rc.Peer().ID != "i1" {
		t.Errorf("router sees %+v", rc.Peer())
	}
	if cc.RemoteAddr().String() != "db:5432" || cc.RemoteAddr().Network() != "ztna" {
		t.Errorf("RemoteAddr = %v", cc.RemoteAddr())
	}
}

func TestHandshakeRefusals(t *testing.T) {
	p := fabrictest.New(t)
	other := fabrictest.New(t)
	tests := []struct {
		name           string
		client, router *Endpoint
		routerTarget   string
		clientErr      string // "" when the router side fails first
		routerErr      string
	}{
		{name: "hub posing as the router", client: endpoint(p, api.KindIdentity, "i1"), router: endpoint(p, api.KindHub, "hub1"),
			clientErr: "only a router may"},
		{name: "router posing as a client", client: endpoint(p, api.KindRouter, "r2"), router: endpoint(p, api.KindRouter, "r1"),
			routerErr: "only a identity may"},
		{name: "router from another network", client: endpoint(p, api.KindIdentity, "i1"), router: NewEndpoint(pki.NewCertSlot(other.Cert(api.KindRouter, "r1")), p.CA.Cert),
			clientErr: "unknown authority"},
		{name: "client from another network", client: NewEndpoint(pki.NewCertSlot(other.Cert(api.KindIdentity, "i1")), p.CA.Cert), router: endpoint(p, api.KindRouter, "r1"),
			routerErr: "unknown authority"},
		{name: "relay redirected the target", client: endpoint(p, api.KindIdentity, "i1"), router: endpoint(p, api.KindRouter, "r1"),
			routerTarget: "other:22", clientErr: "router reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			rt := tt.routerTarget
			if rt == "" {
				rt = "db:5432"
			}
			_, _, cerr, rerr := handshake(t, tt.client, tt.router, "db:5432", rt, a, b)
			if tt.clientErr != "" {
				if cerr == nil || !errors.Is(cerr, ErrHandshake) || !strings.Contains(cerr.Error(), tt.clientErr) {
					t.Fatalf("client error = %v, want %q", cerr, tt.clientErr)
				}
				if rerr == nil {
					t.Fatal("router completed a handshake the client refused")
				}
				return
			}
			if rerr == nil || !errors.Is(rerr, ErrHandshake) || !strings.Contains(rerr.Error(), tt.routerErr) {
				t.Fatalf("router error = %v, want %q", rerr, tt.routerErr)
			}
		})
	}
}

// A hub that captured a router's handshake payload (certificate chain and binding signature)
// still cannot stand in for the router: the payload binds the router's static key, and the hub
// cannot prove possession of it.
func TestReplayedIdentityPayloadCannotBindAnotherKey(t *testing.T) {
	p := fabrictest.New(t)
	router := endpoint(p, api.KindRouter, "r1")
	genuine, err := router.current()
	if err != nil {
		t.Fatal(err)
	}
	hubKey, hubDH, _ := generateX25519(rand.Reader)
	impostor := endpoint(p, api.KindRouter, "unused")
	impostor.forCrt = impostor.cert.Get()
	impostor.local = &local{static: hubDH, key: hubKey, payload: genuine.payload}

	a, b := tcpPair(t)
	_, _, cerr, _ := handshake(t, endpoint(p, api.KindIdentity, "i1"), impostor, "db:5432", "db:5432", a, b)
	if cerr == nil || !strings.Contains(cerr.Error(), "not signed by its certificate key") {
		t.Fatalf("client accepted a replayed binding: %v", cerr)
	}
}

func TestCertificateRenewalRebindsStaticKey(t *testing.T) {
	p := fabrictest.New(t)
	slot := pki.NewCertSlot(p.Cert(api.KindRouter, "r1"))
	router := NewEndpoint(slot, p.CA.Cert)
	client := endpoint(p, api.KindIdentity, "i1")
	a, b := tcpPair(t)
	cc, _, cerr, rerr := handshake(t, client, router, "x:1", "x:1", a, b)
	if cerr != nil || rerr != nil {
		t.Fatal(cerr, rerr)
	}
	first := cc.Peer().Cert.SerialNumber

	slot.Set(p.Cert(api.KindRouter, "r1"))
	a, b = tcpPair(t)
	cc, _, cerr, rerr = handshake(t, client, router, "x:1", "x:1", a, b)
	if cerr != nil || rerr != nil {
		t.Fatal(cerr, rerr)
	}
	if cc.Peer().Cert.SerialNumber.Cmp(first) == 0 {
		t.Fatal("renewed certificate not presented")
	}
}

func TestExpiredCertificateRefused(t *testing.T) {
	p := fabrictest.New(t)
	// pki backdates NotBefore by a minute, so a lifetime of a few ms is already over.
	router := NewEndpoint(pki.NewCertSlot(p.CertFor(api.KindRouter, "r1", time.Millisecond)), p.CA.Cert)
	time.Sleep(5 * time.Millisecond)
	a, b := tcpPair(t)
	_, _, cerr, _ := handshake(t, endpoint(p, api.KindIdentity, "i1"), router, "x:1", "x:1", a, b)
	if cerr == nil || !strings.Contains(cerr.Error(), "expired") {
		t.Fatalf("expired router certificate: %v", cerr)
	}
}

func TestTransfer(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		write func(c *Conn, data []byte) error
		read  func(c *Conn) ([]byte, error)
	}{
		{"Write/ReadAll", 3<<20 + 17, func(c *Conn, d []byte) error { _, err := c.Write(d); return err }, readAll},
		{"small reads", 200_000, func(c *Conn, d []byte) error { _, err := c.Write(d); return err }, func(c *Conn) ([]byte, error) {
			var out []byte
			buf := make([]byte, 7)
			for {
				n, err := c.Read(buf)
				out = append(out, buf[:n]...)
				if err == io.EOF {
					return out, nil
				}
				if err != nil {
					return out, err
				}
			}
		}},
		{"ReadFrom/WriteTo", 5<<20 + 3, func(c *Conn, d []byte) error { _, err := c.ReadFrom(bytes.NewReader(d)); return err }, func(c *Conn) ([]byte, error) {
			var b bytes.Buffer
			_, err := c.WriteTo(&b)
			return b.Bytes(), err
		}},
		// A socket is read with readv straight into the frames' plaintext slots.
		{"ReadFrom a socket", 5<<20 + 3, func(c *Conn, d []byte) error {
			src, feed := tcpPair(t)
			go func() { feed.Write(d); feed.Close() }()
			_, err := c.ReadFrom(src)
			return err
		}, readAll},
		{"empty", 0, func(c *Conn, d []byte) error { return nil }, readAll},
	}
	transports := []struct {
		name string
		pair func(*testing.T) (net.Conn, net.Conn)
	}{{"tcp", tcpPair}, {"mux", muxPair}}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) { transfer(t, tr.pair, tt.size, tt.write, tt.read) })
		}
	}
}

func transfer(t *testing.T, pair func(*testing.T) (net.Conn, net.Conn), size int, write func(*Conn, []byte) error, read func(*Conn) ([]byte, error)) {
	cc, rc := connectedOver(t, pair)
	data := make([]byte, size)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		err := write(cc, data)
		if err == nil {
			err = cc.CloseWrite()
		}
		errc <- err
	}()
	got, err := read(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d bytes, sent %d; contents differ", len(got), len(data))
	}
}

func TestHalfClose(t *testing.T) {
	cc, rc := connected(t)
	if _, err := cc.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Write([]byte("more")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	req, err := io.ReadAll(rc)
	if err != nil || string(req) != "request" {
		t.Fatalf("router read %q, %v", req, err)
	}
	// The other direction still works after the client's end of stream.
	if _, err := rc.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	resp, err := io.ReadAll(cc)
	if err != nil || string(resp) != "response" {
		t.Fatalf("client read %q, %v", resp, err)
	}
}

func TestTruncationIsAnError(t *testing.T) {
	cc, rc := connected(t)
	if _, err := cc.Write(bytes.Repeat([]byte("x"), 100_000)); err != nil {
		t.Fatal(err)
	}
	cc.Abort() // the link dies: no end-of-stream frame
	got, err := io.ReadAll(rc)
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read after abort: %d bytes, err %v; want ErrTruncated", len(got), err)
	}
	if len(got) != 100_000 {
		t.Fatalf("received %d bytes before the truncation, want all 100000 that were sent", len(got))
	}
	var b bytes.Buffer
	if _, err := rc.WriteTo(&b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("WriteTo after truncation: %v", err)
	}
}

// tamperConn flips one bit of every byte written after the first `after` bytes.
type tamperConn struct {
	net.Conn
	after int
}

func (t *tamperConn) Write(p []byte) (int, error) {
	q := bytes.Clone(p)
	for i := range q {
		if t.after <= 0 {
			q[i] ^= 1
		}
		t.after--
	}
	return t.Conn.Write(q)
}

func TestTamperedFrameFailsAuthentication(t *testing.T) {
	cc, rc := connected(t)
	cc.raw = &tamperConn{Conn: cc.raw, after: 10} // corrupt inside the first frame's ciphertext
	cc.Write([]byte("hello, this will be corrupted"))
	_, err := rc.Read(make([]byte, 100))
	if err == nil || !strings.Contains(err.Error(), "failed authentication") {
		t.Fatalf("read of a tampered frame: %v", err)
	}
}

func TestReadDeadlineKeepsPartialFrame(t *testing.T) {
	cc, rc := connected(t)
	const msg = "split across a deadline"
	for _, dst := range []int{100, 5} { // large buffer: decrypted in place; small: pooled buffer
		t.Run("", func(t *testing.T) {
			// Encrypt one frame without sending it, then send it in two parts with a read
			// deadline expiring in between.
			raw := cc.raw
			var frame bytes.Buffer
			cc.raw = &recordConn{Conn: nopConn{}, buf: &frame}
			cc.Write([]byte(msg))
			cc.raw = raw
			raw.Write(frame.Bytes()[:9])
			rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			// WriteTo (the push path) times out first, then Read (the pull path) resumes the
			// same frame and times out too; neither loses the bytes received so far.
			var sink bytes.Buffer
			if _, err := rc.WriteTo(&sink); err == nil || !strings.Contains(err.Error(), "timeout") || sink.Len() != 0 {
				t.Fatalf("WriteTo: %v (wrote %d), want a timeout", err, sink.Len())
			}
			raw.Write(frame.Bytes()[9:12])
			rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			p := make([]byte, dst)
			if _, err := rc.Read(p); err == nil || !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("read: %v, want a timeout", err)
			}
			rc.SetReadDeadline(time.Time{})
			raw.Write(frame.Bytes()[12:])
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(rc, got); err != nil || string(got) != msg {
				t.Fatalf("after the deadline: %q, %v", got, err)
			}
		})
	}
}

type recordConn struct {
	net.Conn
	buf *bytes.Buffer
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.buf.Write(p)
	return r.Conn.Write(p)
}

type nopConn struct{ net.Conn }

func (nopConn) Write(p []byte) (int, error) { return len(p), nil }

func TestReadFromWaitsWithoutBuffer(t *testing.T) {
	cc, rc := connected(t)
	src, feed := tcpPair(t)
	done := make(chan error, 1)
	go func() { _, err := cc.ReadFrom(src); done <- err }()
	for _, msg := range []string{"one", "two", strings.Repeat("z", 200_000)} {
		feed.Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(rc, got); err != nil || string(got) != msg {
			t.Fatalf("got %.20q, %v", got, err)
		}
	}
	feed.Close()
	if err := <-done; err != nil {
		t.Fatalf("ReadFrom at EOF: %v", err)
	}
}

func readAll(c *Conn) ([]byte, error) { return io.ReadAll(c) }

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestLastHandshakeMessageTiming: the client's last handshake message travels with its first
// write (one write on the wire, not two); a client that reads first (the server speaks first)
// sends it alone at once, and a client that does neither sends it after handshakeFlushDelay.
func TestLastHandshakeMessageTiming(t *testing.T) {
	p := fabrictest.New(t)
	router := endpoint(p, api.KindRouter, "r1")
	// start returns the client's conn, its write counter, and the router's conn once the router
	// has the last handshake message. The client holds that message for flushDelay at the most.
	start := func(t *testing.T, flushDelay time.Duration) (*Conn, *countingConn, <-chan *Conn) {
		t.Helper()
		a, b := tcpPair(t)
		craw := &countingConn{Conn: a}
		client := endpoint(p, api.KindIdentity, "i1")
		client.flushDelay = flushDelay
		in, hello, err := client.Initiate("db:5432")
		if err != nil {
			t.Fatal(err)
		}
		resp, reply, err := router.Respond("db:5432", "i1", hello)
		if err != nil {
			t.Fatal(err)
		}
		routed := make(chan *Conn, 1)
		go func() {
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			rc, err := resp.Finish(b)
			if err != nil {
				t.Error(err)
				close(routed)
				return
			}
			b.SetReadDeadline(time.Time{})
			routed <- rc
		}()
		cc, err := in.Finish(craw, reply)
		if err != nil {
			t.Fatal(err)
		}
		return cc, craw, routed
	}
	t.Run("with the first write", func(t *testing.T) {
		cc, craw, routed := start(t, time.Hour)
		if _, err := cc.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		rc := <-routed
		if rc == nil {
			return
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("router read %q, %v", buf, err)
		}
		if n := craw.writes.Load(); n != 1 {
			t.Errorf("client wrote %d times, want 1 (handshake message and data together)", n)
		}
	})
	t.Run("server speaks first", func(t *testing.T) {
		cc, _, routed := start(t, time.Hour)
		go func() {
			if rc := <-routed; rc != nil {
				rc.Write([]byte("220 banner"))
			}
		}()
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 10)
		if _, err := io.ReadFull(cc, buf); err != nil || string(buf) != "220 banner" {
			t.Fatalf("client read %q, %v", buf, err)
		}
	})
	// A relay (ztna tunnel) copies a local socket into the stream with ReadFrom, which holds the
	// write lock while it waits for the socket, and reads the stream in another goroutine: with
	// a server that speaks first, the local socket stays idle until the banner arrives.
	t.Run("relay, server speaks first", func(t *testing.T) {
		cc, _, routed := start(t, time.Hour)
		local, program := tcpPair(t)
		go cc.ReadFrom(local) // the program sends nothing before the banner
		// Only ReadFrom sends the last handshake message (the timer is an hour away), and
		// does so holding the write lock it keeps while it waits for the idle program.
		rc := <-routed
		if rc == nil {
			return
		}
		go cc.WriteTo(local)
		rc.Write([]byte("220 banner"))
		program.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 10)
		if _, err := io.ReadFull(program, buf); err != nil || string(buf) != "220 banner" {
			t.Fatalf("program read %q, %v", buf, err)
		}
	})
	t.Run("relay, client speaks first", func(t *testing.T) {
		cc, craw, routed := start(t, time.Hour)
		local, program := tcpPair(t)
		program.Write([]byte("EHLO"))
		nettest.WaitReadable(t, local) // the request is in the socket before the copy starts
		go cc.ReadFrom(local)
		rc := <-routed
		if rc == nil {
			return
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "EHLO" {
			t.Fatalf("router read %q, %v", buf, err)
		}
		if n := craw.writes.Load(); n != 1 {
			t.Errorf("client wrote %d times, want 1 (handshake message and the waiting request together)", n)
		}
	})
	t.Run("idle client", func(t *testing.T) {
		_, craw, routed := start(t, handshakeFlushDelay)
		select {
		case <-routed:
		case <-time.After(3 * time.Second):
			t.Fatal("router never got the last handshake message from a client that neither reads nor writes")
		}
		if n := craw.writes.Load(); n != 1 {
			t.Errorf("client wrote %d times, want 1", n)
		}
	})
}

// Both ends rekey on the same schedule when both support it, and a version that predates the
// capability on either side still connects, without rekeying: old clients send an empty hello
// payload, old routers ignore it and send no capabilities trailer.
func TestRekeyCapability(t *testing.T) {
	p := fabrictest.New(t)
	for _, tc := range []struct {
		name                   string
		clientCaps, routerCaps byte
		rekey                  bool
	}{
		{"both support it", allCaps, allCaps, true},
		{"earlier router", allCaps, 0, false},
		{"earlier client", 0, allCaps, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, router := endpoint(p, api.KindIdentity, "i1"), endpoint(p, api.KindRouter, "r1")
			client.caps, router.caps = tc.clientCaps, tc.routerCaps
			client.rekeyFrames, router.rekeyFrames = 3, 3
			a, b := tcpPair(t)
			cc, rc, cerr, rerr := handshake(t, client, router, "db:5432", "db:5432", a, b)
			if cerr != nil || rerr != nil {
				t.Fatalf("handshake: client %v, router %v", cerr, rerr)
			}
			if cc.rekey != tc.rekey || rc.rekey != tc.rekey {
				t.Fatalf("rekey: client %v, router %v, want %v", cc.rekey, rc.rekey, tc.rekey)
			}
			key0 := cc.send.UnsafeKey()
			// 20 frames each way: several key changes, each end in step with the other.
			for _, dir := range [][2]*Conn{{cc, rc}, {rc, cc}} {
				msg := make([]byte, 20*MaxPlaintext)
				rand.Read(msg)
				go dir[0].Write(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(dir[1], got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("after rekeying: %v", err)
				}
			}
			if changed := cc.send.UnsafeKey() != key0; changed != tc.rekey {
				t.Fatalf("the client's sending key changed: %v, want %v", changed, tc.rekey)
			}
		})
	}
}

// The capability announcement is covered by the handshake hash: a relay that strips it from the
// hello makes the handshake fail rather than quietly turn rekeying off.
func TestStrippedCapabilitiesFailTheHandshake(t *testing.T) {
	p := fabrictest.New(t)
	client, router := endpoint(p, api.KindIdentity, "i1"), endpoint(p, api.KindRouter, "r1")
	in, hello, err := client.Initiate("db:5432")
	if err != nil {
		t.Fatal(err)
	}
	stripped := hello[:len(hello)-1] // message 1 is the ephemeral key, then the payload byte
	_, reply, err := router.Respond("db:5432", "", stripped)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tcpPair(t)
	if _, err := in.Finish(a, reply); !errors.Is(err, ErrHandshake) {
		t.Fatalf("client accepted a reply to an altered hello: %v", err)
	}
}
