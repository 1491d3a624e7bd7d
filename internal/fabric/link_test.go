package fabric_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
	"github.com/ztna/ztna/internal/fabric/mux"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/internal/tlsrecord"
)

// hubListener accepts links on loopback and hands them (or the accept error) to the test.
type hubListener struct {
	addr  string
	links chan *fabric.Link
	errs  chan error
}

func listenHub(t *testing.T, cfg fabric.LinkConfig) *hubListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hubListener{addr: ln.Addr().String(), links: make(chan *fabric.Link, 16), errs: make(chan error, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				l, err := fabric.Accept(ctx, c, cfg)
				if err != nil {
					h.errs <- err
					return
				}
				t.Cleanup(func() { l.Close() })
				h.links <- l
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return h
}

func dial(t *testing.T, addr string, cfg fabric.LinkConfig) (*fabric.Link, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := fabric.Dial(ctx, addr, cfg)
	if err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, err
}

func TestLinkMutualAuthentication(t *testing.T) {
	p := fabrictest.New(t)
	other := fabrictest.New(t) // a different network's CA
	hubCreds := p.Credentials(api.KindHub, "hub1")

	tests := []struct {
		name      string
		hub       fabric.Credentials // what the hub presents and trusts
		client    fabric.Credentials // what the dialer presents and trusts
		authorize pki.Authorizer
		wantErr   string // substring of the dialer's error; "" means success
		hubErr    string // substring of the hub's error when the hub refuses the peer
		wantPeer  fabric.Peer
	}{
		{name: "router to hub", hub: hubCreds, client: p.Credentials(api.KindRouter, "r1"),
			wantPeer: fabric.Peer{Kind: api.KindRouter, ID: "r1"}},
		{name: "identity to hub", hub: hubCreds, client: p.Credentials(api.KindIdentity, "i1"),
			wantPeer: fabric.Peer{Kind: api.KindIdentity, ID: "i1"}},
		{name: "identity to controller's embedded hub", hub: p.Credentials(api.KindController, "c1"),
			client: p.Credentials(api.KindIdentity, "i1"), wantPeer: fabric.Peer{Kind: api.KindIdentity, ID: "i1"}},
		{name: "hub impersonated by a router", hub: p.Credentials(api.KindRouter, "evil"),
			client: p.Credentials(api.KindIdentity, "i1"), wantErr: "only [hub controller]"},
		{name: "hub certificate used to dial a hub", hub: hubCreds,
			client: p.Credentials(api.KindHub, "hub2"), hubErr: "only [router identity]"},
		{name: "client from another network", hub: hubCreds,
			client: fabric.Credentials{Cert: other.Credentials(api.KindRouter, "r1").Cert, CA: p.CA.Cert}, hubErr: "unknown authority"},
		{name: "hub from another network", hub: other.Credentials(api.KindHub, "hub1"),
			client: p.Credentials(api.KindRouter, "r1"), wantErr: "unknown authority"},
		{name: "deleted router refused by authorizer", hub: hubCreds, client: p.Credentials(api.KindRouter, "gone"),
			authorize: func(kind, id string) error { return errors.New("router deleted") }, hubErr: "router deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := listenHub(t, fabric.LinkConfig{Credentials: tt.hub, Authorize: tt.authorize})
			l, err := dial(t, h.addr, fabric.LinkConfig{Credentials: tt.client})
			if tt.hubErr != "" {
				// TLS 1.3 finishes the client's handshake before the server has checked the
				// client certificate: the dialer learns of the refusal as an alert or a closed
				// connection, while the hub knows the reason.
				if err == nil {
					t.Fatal("dial succeeded")
				}
				if herr := <-h.errs; !strings.Contains(herr.Error(), tt.hubErr) {
					t.Fatalf("hub error = %v, want one containing %q", herr, tt.hubErr)
				}
				return
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dial error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Peer() != (fabric.Peer{Kind: pkiKind(tt.hub), ID: pkiID(tt.hub)}) {
				t.Errorf("dialer sees peer %v", l.Peer())
			}
			select {
			case hl := <-h.links:
				if hl.Peer() != tt.wantPeer {
					t.Errorf("hub sees peer %v, want %v", hl.Peer(), tt.wantPeer)
				}
			case err := <-h.errs:
				t.Fatalf("hub side failed: %v", err)
			}
		})
	}
}

func pkiKind(c fabric.Credentials) string {
	kind, _, _ := pki.Identity(c.Cert.Get().Leaf)
	return kind
}

func pkiID(c fabric.Credentials) string {
	_, id, _ := pki.Identity(c.Cert.Get().Leaf)
	return id
}

func TestOpenAndAccept(t *testing.T) {
	p := fabrictest.New(t)
	h := listenHub(t, fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "hub1")})
	router, err := dial(t, h.addr, fabric.LinkConfig{Credentials: p.Credentials(api.KindRouter, "r1")})
	if err != nil {
		t.Fatal(err)
	}
	hub := <-h.links

	// The router answers each request by its target: "ok" echoes, anything else fails.
	go func() {
		for {
			s, err := router.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				req, err := fabric.ReadRequest(s)
				if err != nil {
					s.Close()
					return
				}
				if req.Target != "ok:1" {
					fabric.WriteResponse(s, &fabric.Response{Code: fabric.TargetRefused, Message: "no " + req.Target})
					s.Close()
					return
				}
				fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK, Payload: append([]byte("hello "), req.Payload...)})
				io.Copy(s, s)
				s.Close()
			}()
		}
	}()

	ctx := context.Background()
	s, resp, err := hub.Open(ctx, &fabric.Request{Op: fabric.OpDial, Target: "ok:1", Identity: "i1", Payload: []byte("e2e")})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Payload) != "hello e2e" {
		t.Fatalf("payload = %q", resp.Payload)
	}
	msg := bytes.Repeat([]byte("0123456789"), 100_000)
	go s.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v, equal=%v", err, bytes.Equal(got, msg))
	}
	s.Close()

	_, resp, err = hub.Open(ctx, &fabric.Request{Op: fabric.OpDial, Target: "db:5432"})
	if !errors.Is(err, fabric.ErrTargetRefused) || errors.Is(err, fabric.ErrNotAuthorized) {
		t.Fatalf("error = %v, want target refused", err)
	}
	if resp == nil || resp.Message != "no db:5432" {
		t.Fatalf("response = %+v", resp)
	}

	// A context that ends while the peer is silent ends the open.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := router.Open(cctx, &fabric.Request{Op: fabric.OpDial, Target: "x:1"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open against a silent peer: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("open took %v after its deadline", d)
	}
}

func TestRequestResponseEncoding(t *testing.T) {
	req := &fabric.Request{Op: fabric.OpDial, Target: "prod-db.customerdomain.me:5432", Service: "db", Identity: "i-1", Payload: []byte{1, 2, 3}}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tail := []byte("next bytes on the stream")
	r := bytes.NewReader(append(b, tail...))
	got, err := fabric.ReadRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != req.Op || got.Target != req.Target || got.Service != req.Service || got.Identity != req.Identity || !bytes.Equal(got.Payload, req.Payload) {
		t.Fatalf("round trip: %+v", got)
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, tail) {
		t.Fatalf("ReadRequest consumed past the request: rest %q", rest)
	}

	resp := &fabric.Response{Code: fabric.Unreachable, Message: "resolve db: no such host"}
	b, _ = resp.Marshal()
	gotResp, err := fabric.ReadResponse(bytes.NewReader(b))
	if err != nil || gotResp.Code != resp.Code || gotResp.Message != resp.Message || gotResp.Payload != nil {
		t.Fatalf("response round trip: %+v %v", gotResp, err)
	}
	if !errors.Is(gotResp.Err(), fabric.ErrUnreachable) || gotResp.Err().Error() != "unreachable: resolve db: no such host" {
		t.Fatalf("Err() = %v", gotResp.Err())
	}

	bad := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"wrong version", []byte{9, 1, 0, 0}},
		{"short body", []byte{1, 1, 0, 10, 0}},
		{"field overruns body", []byte{1, 1, 0, 2, 5, 'a'}},
		{"trailing bytes", []byte{1, 1, 0, 5, 0, 0, 0, 0, 7}},
		{"too large", []byte{1, 1, 0xff, 0xff}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := fabric.ReadRequest(bytes.NewReader(tt.in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := (&fabric.Request{Target: strings.Repeat("x", 20000)}).Marshal(); err == nil {
		t.Fatal("oversized request marshalled")
	}
}

// blackhole forwards TCP between a client and a server until cut() is called; after that it
// silently drops everything in both directions without closing anything, like a firewall that
// starts dropping packets. Pause holds everything instead, until Resume: a blip after which
// the path comes back.
type blackhole struct {
	addr   string
	mu     sync.Mutex
	cut    bool
	paused chan struct{} // closed by Resume; nil while not paused
}

func newBlackhole(t *testing.T, target string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &blackhole{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go b.pipe(c, s)
			go b.pipe(s, c)
		}
	}()
	return b
}

func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		b.mu.Lock()
		cut, paused := b.cut, b.paused
		b.mu.Unlock()
		if paused != nil {
			<-paused
		}
		if !cut {
			dst.Write(buf[:n])
		}
	}
}

func (b *blackhole) Cut() {
	b.mu.Lock()
	b.cut = true
	b.mu.Unlock()
}

func (b *blackhole) Pause() {
	b.mu.Lock()
	b.paused = make(chan struct{})
	b.mu.Unlock()
}

func (b *blackhole) Resume() {
	b.mu.Lock()
	close(b.paused)
	b.paused = nil
	b.mu.Unlock()
}

// TestLinkRidesOutSilenceShorterThanTimeout: a link whose path goes silent stops being Healthy
// after three keepalive intervals (no new streams), but is closed only after the timeout: when
// the path comes back before that, the link is Healthy again and an open stream carries on
// with every byte intact.
func TestLinkRidesOutSilenceShorterThanTimeout(t *testing.T) {
	hub, router, bh := linkThroughBlackhole(t, 3*time.Second)
	go router.ServeStreams(func(s net.Conn) {
		if _, err := fabric.ReadRequest(s); err != nil {
			s.Close()
			return
		}
		fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK})
		io.Copy(s, s)
		s.Close()
	})
	s, _, err := hub.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "ok:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echo := func(round int) {
		t.Helper()
		msg := bytes.Repeat([]byte{byte(round)}, 64<<10)
		s.SetDeadline(time.Now().Add(5 * time.Second))
		go s.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo round %d: %v, intact=%v", round, err, bytes.Equal(got, msg))
		}
	}
	echo(1)

	bh.Pause()
	paused := time.Now()
	for hub.Healthy() {
		if time.Since(paused) > 2*time.Second {
			t.Fatal("the hub still considers a silent router healthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	unhealthyAfter := time.Since(paused)
	// Silent for well past unhealthy, still short of the timeout.
	time.Sleep(time.Second)
	select {
	case <-hub.Done():
		t.Fatalf("link closed %v into a silence shorter than the timeout: %v", time.Since(paused), hub.Err())
	default:
	}
	bh.Resume()
	echo(2)
	if hub.Err() != nil || router.Err() != nil {
		t.Fatalf("link closed: hub %v, router %v", hub.Err(), router.Err())
	}
	waitUntil(t, 2*time.Second, "the link healthy again", func() bool { return hub.Healthy() && router.Healthy() })
	t.Logf("silent for %v: unhealthy after %v, link kept", time.Since(paused).Round(time.Millisecond), unhealthyAfter.Round(time.Millisecond))
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// linkThroughBlackhole links a router to a hub across a blackhole, with keepalives every 50 ms
// and timeout, and returns both ends.
func linkThroughBlackhole(t *testing.T, timeout time.Duration) (hub, router *fabric.Link, bh *blackhole) {
	t.Helper()
	p := fabrictest.New(t)
	ka := fabric.LinkConfig{KeepaliveInterval: 50 * time.Millisecond, KeepaliveTimeout: timeout}
	hubCfg := ka
	hubCfg.Credentials = p.Credentials(api.KindHub, "hub1")
	h := listenHub(t, hubCfg)
	bh = newBlackhole(t, h.addr)
	routerCfg := ka
	routerCfg.Credentials = p.Credentials(api.KindRouter, "r1")
	router, err := dial(t, bh.addr, routerCfg)
	if err != nil {
		t.Fatal(err)
	}
	return <-h.links, router, bh
}

func TestKeepaliveMeasuresRTTAndDetectsSilence(t *testing.T) {
	hub, router, bh := linkThroughBlackhole(t, 300*time.Millisecond)

	deadline := time.Now().Add(2 * time.Second)
	for hub.RTT() == 0 || router.RTT() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no RTT measured")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !hub.Healthy() || !router.Healthy() {
		t.Fatal("fresh link not healthy")
	}

	bh.Cut()
	cutAt := time.Now()
	for hub.Healthy() {
		if time.Since(cutAt) > time.Second {
			t.Fatal("hub still considers a silent router healthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	unhealthyAfter := time.Since(cutAt)
	select {
	case <-hub.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("silent link never closed")
	}
	closedAfter := time.Since(cutAt)
	if !errors.Is(hub.Err(), fabric.ErrSilent) {
		t.Fatalf("close reason = %v, want ErrSilent", hub.Err())
	}
	<-router.Done()
	t.Logf("cut off: unhealthy after %v, closed after %v", unhealthyAfter, closedAfter)
	if _, _, err := hub.Open(context.Background(), &fabric.Request{Op: fabric.OpDial}); !errors.Is(err, fabric.ErrSilent) {
		t.Fatalf("open on a dead link: %v", err)
	}
}

// Across a path with a 40 ms round trip, a stream's window grows with the link's measured round
// trip (at the 4 MiB it starts with, a stream would move at most 100 MB/s there), and the data
// arrives intact.
func TestWindowGrowsWithTheLinksRoundTrip(t *testing.T) {
	via := func(hub string) string { return nettest.DelayRelay(t, hub, 20*time.Millisecond) }
	if w := bulkWindow(t, via, 64<<20); w <= 4<<20 {
		t.Fatalf("the receiving stream's window stayed at %d over a 40 ms round trip", w)
	}
}

// On a fast path a busy link keeps its windows: pings queued behind megabytes of frames
// lengthen the average round trip, but windows follow the least one.
func TestWindowStaysOnAFastLink(t *testing.T) {
	direct := func(hub string) string { return hub }
	if w := bulkWindow(t, direct, 256<<20); w != 4<<20 {
		t.Fatalf("on loopback the receiving stream's window grew to %d", w)
	}
}

// bulkWindow links a router to a hub through the address via gives for the hub's, sends n
// random bytes on one stream, checks they arrive intact and returns the receiving stream's
// window at the end.
func bulkWindow(t *testing.T, via func(hub string) string, n int) int {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	p := fabrictest.New(t)
	// The timeout is generous: under -race on a loaded machine a 1 s one closed the link mid-transfer.
	ka := fabric.LinkConfig{KeepaliveInterval: 50 * time.Millisecond, KeepaliveTimeout: 10 * time.Second}
	hubCfg := ka
	hubCfg.Credentials = p.Credentials(api.KindHub, "hub1")
	h := listenHub(t, hubCfg)
	routerCfg := ka
	routerCfg.Credentials = p.Credentials(api.KindRouter, "r1")
	router, err := dial(t, via(h.addr), routerCfg)
	if err != nil {
		t.Fatal(err)
	}
	hub := <-h.links
	for deadline := time.Now().Add(3 * time.Second); router.BaseRTT() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no RTT measured")
		}
	}
	// A few dozen round trips, so that the least of them is the path's, not a busy CPU's.
	time.Sleep(30 * ka.KeepaliveInterval)
	type received struct {
		data   []byte
		window int
		err    error
	}
	got := make(chan received, 1)
	go func() {
		s, err := router.AcceptStream()
		if err != nil {
			got <- received{}
			return
		}
		fabric.ReadRequest(s)
		fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK})
		b, err := io.ReadAll(s)
		got <- received{b, s.(*mux.Stream).Window(), err}
	}()
	s, _, err := hub.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "bulk:1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(data)
	s.Close()
	r := <-got
	if !bytes.Equal(r.data, data) {
		t.Fatalf("received %d of %d bytes, or different ones (%v)", len(r.data), len(data), r.err)
	}
	t.Logf("window %d MiB; round trip %v, least %v", r.window>>20, router.RTT(), router.BaseRTT())
	return r.window
}

// A peer cannot choose its round trip: pongs that echo no ping the hub sent (back-dated, to
// grow the windows the hub grants it, or forward-dated, to look like the cheapest router) do
// not count.
func TestForgedPongsDoNotCount(t *testing.T) {
	p := fabrictest.New(t)
	ka := fabric.LinkConfig{KeepaliveInterval: 20 * time.Millisecond, KeepaliveTimeout: time.Second}
	hubCfg := ka
	hubCfg.Credentials = p.Credentials(api.KindHub, "hub1")
	h := listenHub(t, hubCfg)

	_, ctrl, err := handPeer(t, h.addr, p.Credentials(api.KindIdentity, "i1"), fabric.ALPNBudget)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var m [9]byte
		for skew := uint64(10 * time.Second); ; skew = -skew { // back-dated, forward-dated, ...
			if _, err := io.ReadFull(ctrl, m[:]); err != nil {
				return
			}
			if m[0] == 1 {
				m[0] = 2
				binary.BigEndian.PutUint64(m[1:], binary.BigEndian.Uint64(m[1:])+skew)
				ctrl.Write(m[:])
			}
		}
	}()
	hub := <-h.links
	time.Sleep(20 * ka.KeepaliveInterval)
	if hub.RTT() != 0 || hub.BaseRTT() != 0 {
		t.Fatalf("forged pongs counted: RTT %v, least %v", hub.RTT(), hub.BaseRTT())
	}
}

// TestStalledLinkPingsDoNotPileUp: on a stalled path (data written into it, nothing getting
// through) a ping blocks behind the data until the link times out; the keepalive sends no
// further ping while one is blocked, so a long timeout does not pile up a goroutine per interval.
func TestStalledLinkPingsDoNotPileUp(t *testing.T) {
	hub, router, bh := linkThroughBlackhole(t, 30*time.Second)
	go router.ServeStreams(func(s net.Conn) {
		if _, err := fabric.ReadRequest(s); err != nil {
			s.Close()
			return
		}
		fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK})
		io.Copy(io.Discard, s)
	})
	var streams []net.Conn
	for range 8 {
		s, _, err := hub.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "ok:1"})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	bh.Pause()
	// More than the TCP buffers on both sides of the blackhole hold: the session's 32 MiB.
	for _, s := range streams {
		go func() {
			buf := make([]byte, 1<<20)
			for {
				if _, err := s.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	waitUntil(t, 5*time.Second, "the hub sees the path stalled", func() bool { return !hub.Healthy() })
	before := runtime.NumGoroutine()
	time.Sleep(40 * 50 * time.Millisecond) // forty keepalive intervals
	grown := runtime.NumGoroutine() - before
	t.Logf("goroutines over 40 keepalive intervals on a stalled link: %+d", grown)
	if grown > 5 {
		t.Errorf("%d more goroutines after 40 keepalive intervals on a stalled link", grown)
	}
	bh.Resume()
}

// handPeer links to the hub at addr speaking the wire format by hand, offering only alpn: the
// TLS handshake, the multiplexer with the windows alpn agrees on, and the control stream. err
// is the hub's refusal, if it refused the link.
func handPeer(t *testing.T, addr string, creds fabric.Credentials, alpn string) (*mux.Session, *mux.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tlsCfg := pki.MutualClientConfig(creds.Cert, creds.CA, api.KindHub, api.KindController)
	tlsCfg.NextProtos = []string{alpn}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsrecord.Client(ctx, raw, tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.ConnectionState().NegotiatedProtocol; got != alpn {
		t.Fatalf("negotiated %q, offered only %q", got, alpn)
	}
	sess, err := mux.Client(tc, fabric.WireConfig(alpn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	ctrl, _ := sess.OpenStream()
	b, _ := (&fabric.Request{Op: 3}).Marshal() // the control stream
	ctrl.Write(b)
	ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := fabric.ReadResponse(ctrl)
	if err != nil {
		t.Fatal(err)
	}
	ctrl.SetReadDeadline(time.Time{})
	return sess, ctrl, resp.Err()
}

// A peer from before the per-link budget offers only ALPN ztna-fabric/1: by default the hub
// refuses it on its control stream, with LimitReached and a message that says what to change,
// and reports it (LegacyRefused, for the hub's metric and log).
func TestLegacyPeerRefusedByDefault(t *testing.T) {
	p := fabrictest.New(t)
	refused := make(chan fabric.Peer, 1)
	hubCfg := fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "hub1")}
	hubCfg.LegacyRefused = func(peer fabric.Peer) { refused <- peer }
	h := listenHub(t, hubCfg)
	_, _, err := handPeer(t, h.addr, p.Credentials(api.KindIdentity, "i1"), fabric.ALPN)
	if !errors.Is(err, fabric.ErrLimitReached) || !strings.Contains(err.Error(), "legacy_peers") || !strings.Contains(err.Error(), fabric.ALPN) {
		t.Fatalf("old peer's link: %v, want limit reached naming %s and legacy_peers", err, fabric.ALPN)
	}
	if peer := <-refused; peer.String() != "identity/i1" {
		t.Errorf("LegacyRefused for %v", peer)
	}
	if err := <-h.errs; !strings.Contains(err.Error(), fabric.ALPN) {
		t.Errorf("hub's Accept: %v", err)
	}
}

// A dialing end (router, client) refuses a hub that speaks only ztna-fabric/1 unless
// AllowLegacy, with an error that says what to change.
func TestLegacyHubRefusedByDefault(t *testing.T) {
	p := fabrictest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hubCreds := p.Credentials(api.KindHub, "hub1")
	go func() { // an old hub: offers only ztna-fabric/1
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				cfg := pki.MutualServerConfig(hubCreds.Cert, hubCreds.CA, nil, api.KindRouter, api.KindIdentity)
				cfg.NextProtos = []string{fabric.ALPN}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				tc, err := tlsrecord.Server(ctx, c, cfg)
				if err != nil {
					c.Close()
					return
				}
				sess, _ := mux.Server(tc, fabric.WireConfig(fabric.ALPN))
				defer sess.Close()
				ctrl, err := sess.AcceptStream()
				if err != nil {
					return
				}
				fabric.ReadRequest(ctrl)
				fabric.WriteResponse(ctrl, &fabric.Response{Code: fabric.OK})
				<-sess.Done()
			}()
		}
	}()
	creds := p.Credentials(api.KindRouter, "r1")
	if _, err := dial(t, ln.Addr().String(), fabric.LinkConfig{Credentials: creds}); err == nil || !strings.Contains(err.Error(), "--fabric-legacy-peers") {
		t.Fatalf("link to an old hub: %v, want refused naming --fabric-legacy-peers", err)
	}
	cfg := fabric.LinkConfig{Credentials: creds}
	cfg.AllowLegacy = true
	l, err := dial(t, ln.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("link to an old hub with AllowLegacy: %v", err)
	}
	l.Close()
}

// With AllowLegacy an old peer links, under the old 4 MiB windows (8 MiB cross a stream each
// way: under the budget's 16 KiB start either end would refuse the other's first megabyte), but
// a flood of streams that send 4 MiB each to a hub that never reads them leaves the hub holding
// no more than LegacyMaxStreams × 4 MiB, the budget: the streams beyond are refused on the
// reader with LimitReached, and the hub's own opens beyond fail the same way.
func TestLegacyPeerBoundedByTheBudget(t *testing.T) {
	p := fabrictest.New(t)
	hubCfg := fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "hub1")}
	hubCfg.AllowLegacy = true
	var refusedStreams atomic.Int32
	hubCfg.StreamRefused = func(_ fabric.Peer, l fabric.StreamLimit) {
		if l == fabric.LimitLegacyStreams {
			refusedStreams.Add(1)
		}
	}
	h := listenHub(t, hubCfg)
	sess, _, err := handPeer(t, h.addr, p.Credentials(api.KindIdentity, "i1"), fabric.ALPN)
	if err != nil {
		t.Fatal(err)
	}
	hub := <-h.links
	const size = 8 << 20
	data := make([]byte, size)
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	go st.Write(data) // the old peer sends 4 MiB before any credit
	hubSide, err := hub.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	hubSide.SetDeadline(time.Now().Add(30 * time.Second))
	if n, err := io.CopyN(io.Discard, hubSide, size); err != nil {
		t.Fatalf("hub read %d of %d bytes: %v", n, size, err)
	}
	go hubSide.Write(data)
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := io.CopyN(io.Discard, st, size); err != nil {
		t.Fatalf("old peer read %d of %d bytes: %v", n, size, err)
	}
	st.Close()
	hubSide.Close()

	// The flood: 100 streams of 4 MiB each, none read by the hub.
	const flood = 100
	window := make([]byte, 4<<20)
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range flood {
		s, err := sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		wg.Go(func() {
			s.Write(window) // a refusal's fin may end the write early
			s.SetReadDeadline(time.Now().Add(2 * time.Second))
			if resp, err := fabric.ReadResponse(s); err == nil && errors.Is(resp.Err(), fabric.ErrLimitReached) {
				refused.Add(1)
			}
		})
	}
	accepted := 0
	for accepted < fabric.LegacyMaxStreams {
		if _, err := hub.AcceptStream(); err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	wg.Wait()
	if n := int(refusedStreams.Load()); n != flood-fabric.LegacyMaxStreams || int(refused.Load()) != n {
		t.Errorf("%d streams refused by the hub (%d answered limit reached), want %d", n, refused.Load(), flood-fabric.LegacyMaxStreams)
	}
	if got, bound := hub.Buffered(), fabric.LegacyMaxStreams*(4<<20); got > bound {
		t.Errorf("hub buffers %d bytes, bound %d", got, bound)
	} else {
		t.Logf("hub buffers %.1f MiB for %d streams of 4 MiB offered (bound %d MiB)", float64(got)/(1<<20), flood, bound>>20)
	}
	if _, _, err := hub.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "x:1"}); !errors.Is(err, fabric.ErrLimitReached) {
		t.Errorf("hub's own open beyond %d streams: %v, want limit reached", fabric.LegacyMaxStreams, err)
	}
	if hub.Err() != nil || sess.Err() != nil {
		t.Fatalf("link ended: hub %v, peer %v", hub.Err(), sess.Err())
	}
}
