package mux

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/nettest"
)

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	a, b := nettest.TCPPair(t)
	return a, b
}

func sessions(t testing.TB, cfg Config) (client, server *Session) {
	t.Helper()
	a, b := tcpPair(t)
	c, err := Client(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Server(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestStreamRoundTripAndClose(t *testing.T) {
	c, s := sessions(t, DefaultConfig())
	cs, err := c.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	ss, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(ss, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := ss.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cs, got); err != nil || string(got) != "world" {
		t.Fatalf("read %q, %v", got, err)
	}
	// The server closes: the client reads what was sent, then EOF; its writes fail.
	ss.Write([]byte("bye"))
	ss.Close()
	rest, err := io.ReadAll(cs)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after close: %q, %v", rest, err)
	}
	waitFor(t, func() bool { _, err := cs.Write([]byte("x")); return errors.Is(err, ErrPeerClosed) })
	cs.Close()
	waitFor(t, func() bool { return c.NumStreams() == 0 && s.NumStreams() == 0 })
	if _, err := cs.Read(got); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("read after close: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A stream opened and closed without writing never reaches the peer and leaves nothing behind.
func TestUnusedStreamLeavesNothing(t *testing.T) {
	c, s := sessions(t, DefaultConfig())
	cs, _ := c.OpenStream()
	cs.Close()
	if c.NumStreams() != 0 {
		t.Fatalf("%d streams left", c.NumStreams())
	}
	time.Sleep(20 * time.Millisecond)
	if s.NumStreams() != 0 {
		t.Fatal("peer learnt of a stream that never carried data")
	}
}

func TestFlowControlHoldsWriterAtWindow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = 256 << 10
	c, s := sessions(t, cfg)
	cs, _ := c.OpenStream()
	cs.Write([]byte{0})
	ss, _ := s.AcceptStream()
	one := make([]byte, 1)
	io.ReadFull(ss, one)

	cs.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := cs.Write(make([]byte, 1<<20))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write beyond the window: %d, %v", n, err)
	}
	if n != cfg.Window-1 { // one byte read returns no credit: less than a quarter window
		t.Fatalf("wrote %d bytes before the deadline, window is %d", n, cfg.Window)
	}
	cs.SetWriteDeadline(time.Time{})
	// The reader drains: the writer goes on.
	done := make(chan error, 1)
	go func() { _, err := cs.Write(make([]byte, 1<<20)); done <- err }()
	if _, err := io.ReadFull(ss, make([]byte, n+1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, s := sessions(t, DefaultConfig())
	cs, _ := c.OpenStream()
	cs.Write([]byte{1})
	ss, _ := s.AcceptStream()
	ss.Read(make([]byte, 1))
	ss.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := ss.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("read deadline: %v after %v", err, time.Since(start))
	}
	// A deadline moved into the future while a read waits takes effect.
	ss.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := ss.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	ss.SetReadDeadline(time.Now())
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline set during a read: %v", err)
	}
	ss.SetReadDeadline(time.Time{})
	cs.Write([]byte{2})
	b := make([]byte, 1)
	if _, err := ss.Read(b); err != nil || b[0] != 2 {
		t.Fatalf("after clearing the deadline: %v", err)
	}
}

// Many streams at once, in both directions, each byte-exact.
func TestConcurrentStreamsIntact(t *testing.T) {
	c, s := sessions(t, DefaultConfig())
	go func() {
		for {
			st, err := s.AcceptStream()
			if err != nil {
				return
			}
			go func() { io.Copy(st, st); st.Close() }() // echo until the client closes
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.OpenStream()
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			msg := make([]byte, 1000+i*997)
			rand.Read(msg)
			go st.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(st, got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- errors.New("stream corrupted")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.NumStreams() == 0 && s.NumStreams() == 0 })
}

// A relay in the middle hands frames from one session to another with WriteTo: 64 MiB, far
// more than a window, arrive intact and the digest comes back.
func TestRelayWithWriteTo(t *testing.T) {
	const total = 64 << 20
	cfg := DefaultConfig()
	left, hubL := sessions(t, cfg)
	hubR, right := sessions(t, cfg)
	go func() {
		in, err := hubL.AcceptStream()
		if err != nil {
			return
		}
		out, _ := hubR.OpenStream()
		go func() { in.WriteTo(out); out.Close() }()
		out.WriteTo(in)
		in.Close()
	}()
	go func() {
		st, err := right.AcceptStream()
		if err != nil {
			return
		}
		h := sha256.New()
		io.CopyN(h, st, total)
		st.Write(h.Sum(nil))
		st.Close()
	}()
	st, _ := left.OpenStream()
	defer st.Close()
	h := sha256.New()
	go func() {
		buf := make([]byte, 1<<20)
		for range total / len(buf) {
			rand.Read(buf)
			h.Write(buf)
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, h.Sum(nil)) {
		t.Fatalf("digest mismatch after relaying %d bytes", total)
	}
}

func TestSessionCloseFailsStreams(t *testing.T) {
	c, s := sessions(t, DefaultConfig())
	cs, _ := c.OpenStream()
	cs.Write([]byte{1})
	ss, _ := s.AcceptStream()
	if _, err := ss.Read(make([]byte, 2)); err != nil {
		t.Fatalf("read the byte written: %v", err)
	}
	readErr := make(chan error, 1)
	go func() { _, err := ss.Read(make([]byte, 1)); readErr <- err }()
	c.Close()
	select {
	case err := <-readErr:
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("read on a dead session: %v (must not look like a clean end)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not fail")
	}
	if _, err := s.AcceptStream(); err == nil {
		t.Fatal("accept on a dead session")
	}
	if _, err := cs.Write([]byte{1}); err == nil {
		t.Fatal("write on a closed session")
	}
	if _, err := c.OpenStream(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("open on a closed session: %v", err)
	}
}

// A peer that breaks the protocol ends the session with a reason.
func TestProtocolViolations(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = 256 << 10
	frame := func(typ byte, length int, id uint32, payload int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(typ)<<24|uint32(length))
		b = binary.BigEndian.AppendUint32(b, id)
		return append(b, make([]byte, payload)...)
	}
	cases := []struct {
		name  string
		wire  []byte
		wants string
	}{
		{"unknown type", frame(9, 0, 1, 0), "unknown frame type"},
		{"open with our parity", frame(typeOpen, 1, 2, 1), "ours to number"},
		{"open twice", append(frame(typeOpen, 1, 1, 1), frame(typeOpen, 1, 1, 1)...), "twice"},
		{"frame too large", frame(typeOpen, cfg.MaxFrame+1, 1, 0), "exceeds"},
		{"beyond the window", append(frame(typeOpen, 250<<10, 1, 250<<10), frame(typeData, 8<<10, 1, 8<<10)...), "beyond the stream's window"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpPair(t)
			s, err := Server(b, cfg)
			if err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, a)
			a.Write(tc.wire)
			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("session survived")
			}
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("err %v, want %q", err, tc.wants)
			}
		})
	}
}

func TestConfigChecked(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = 1
	if _, err := Client(nil, cfg); err == nil || !strings.Contains(err.Error(), "window") {
		t.Fatalf("tiny window accepted: %v", err)
	}
}

// A write stuck on a full connection (the peer stopped reading) holds the wire; another stream's
// write queued behind it gives up at its deadline instead of waiting with it.
func TestQueuedWriteHonoursDeadlineBehindStuckWrite(t *testing.T) {
	a, _ := tcpPair(t) // the far end never reads
	cfg := DefaultConfig()
	cfg.Window = maxLength
	c, err := Client(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 4 { // 64 MiB of window, far more than the sockets buffer: a write blocks on the wire
		bulk, _ := c.OpenStream()
		go bulk.Write(make([]byte, cfg.Window))
	}
	time.Sleep(300 * time.Millisecond)

	st, _ := c.OpenStream()
	st.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	n, err := st.Write([]byte("request"))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 {
		t.Fatalf("queued write: %d, %v", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("queued write gave up after %v", d)
	}
	// Nothing left: the stream was never opened, and its window is intact.
	st.mu.Lock()
	credit := st.credit
	st.mu.Unlock()
	if credit != cfg.Window || st.opened {
		t.Fatalf("after the timeout: credit %d, opened %v", credit, st.opened)
	}
	st.Close()
}

// ServeStreams hands every stream the peer opens to the handler — also those opened before it
// was called — and returns why the session ended.
func TestServeStreams(t *testing.T) {
	c, s := sessions(t, DefaultConfig())
	early, _ := c.OpenStream()
	early.Write([]byte("a"))
	for deadline := time.Now().Add(5 * time.Second); len(s.accept) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // the early stream is queued before the handler exists
			t.Fatal("the early stream never reached the accept queue")
		}
	}
	served := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- s.ServeStreams(func(st *Stream) {
			b := make([]byte, 1)
			io.ReadFull(st, b)
			served <- string(b)
			st.Close()
		})
	}()
	late, _ := c.OpenStream()
	late.Write([]byte("b"))
	got := map[string]bool{}
	for range 2 {
		select {
		case v := <-served:
			got[v] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("served only %v", got)
		}
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("served %v", got)
	}
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ServeStreams ended without a reason")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeStreams did not return when the session ended")
	}
}

// Streams with data waiting share the session window: with many, each is topped up to a smaller
// window; the credit held back is returned once fewer streams compete.
func TestWindowSharedByBusyStreams(t *testing.T) {
	cfg := DefaultConfig() // window 4 MiB, session window 16 MiB
	s := &Session{cfg: cfg}
	s.sessWin.Store(int64(cfg.SessionWindow))
	st := newStream(s, 1, true)
	const mib = 1 << 20
	take := func(n int) int { // the peer sent n bytes and the reader consumed them
		st.window -= n
		return st.consumed(n)
	}
	s.active.Store(1)
	if c := take(mib); c != mib {
		t.Fatalf("alone, a quarter window consumed returns %d, want %d", c, mib)
	}
	s.active.Store(16) // 16 MiB / 16 streams: a 1 MiB target
	if c := take(mib); c != 0 {
		t.Fatalf("among 16 busy streams, with 3 MiB still open to the peer, credit %d", c)
	}
	if c := take(3 * mib); c != mib {
		t.Fatalf("among 16 busy streams, an exhausted window is topped up by %d, want 1 MiB", c)
	}
	if st.window != mib || st.unacked != 3*mib {
		t.Fatalf("window %d, held back %d", st.window, st.unacked)
	}
	s.active.Store(1)
	if c := take(mib / 2); c != 3*mib+mib/2 {
		t.Fatalf("alone again: credit %d, want the held-back 3.5 MiB", c)
	}
	if st.window != cfg.Window || st.unacked != 0 {
		t.Fatalf("alone again: window %d, held back %d", st.window, st.unacked)
	}
	s.active.Store(1000)
	if got := s.windowTarget(cfg.Window); got != minWindow {
		t.Fatalf("target among 1000 busy streams %d, want the floor %d", got, minWindow)
	}
}

// A stream whose reader takes half its window in less than two round trips gets twice the
// window, up to the maximum, and the session window grows with it; a stream whose reader is
// the bottleneck keeps its window.
func TestWindowAutotuning(t *testing.T) {
	const mib = 1 << 20
	rtt := 10 * time.Millisecond
	cfg := DefaultConfig()
	cfg.MaxWindow, cfg.MaxSessionWindow = 16*mib, 32*mib
	cfg.RTT = func() time.Duration { return rtt }
	s := &Session{cfg: cfg}
	s.sessWin.Store(int64(cfg.SessionWindow))
	s.active.Store(1)
	st := newStream(s, 1, true)
	take := func(n int, took time.Duration) int { // the reader consumed n bytes over took
		st.epochStart = time.Now().Add(-took)
		st.window -= n
		return st.consumed(n)
	}
	// 3/4 of the window in one round trip: the round trip limits the stream. The peer gets the
	// 3 MiB consumed back and the 4 MiB the window grew by.
	if c := take(3*mib, rtt); c != 7*mib || st.maxWin != 8*mib || s.sessWin.Load() != 32*mib {
		t.Fatalf("fast reader: credit %d, window %d, session window %d; want 7 MiB, 8 MiB, 32 MiB", c, st.maxWin, s.sessWin.Load())
	}
	take(6*mib, rtt)
	take(12*mib, rtt)
	if st.maxWin != cfg.MaxWindow || s.sessWin.Load() != int64(cfg.MaxSessionWindow) {
		t.Fatalf("window %d, session window %d: beyond or short of the maximum", st.maxWin, s.sessWin.Load())
	}

	slow := newStream(s, 3, true)
	slow.epochStart = time.Now().Add(-time.Second) // the reader took 100 round trips
	slow.window -= 3 * mib
	slow.consumed(3 * mib)
	if slow.maxWin != cfg.Window {
		t.Fatalf("slow reader: window grew to %d", slow.maxWin)
	}
	// A window that already allows the goal per round trip stays: 4 MiB per 1 ms is 4 GB/s.
	cfg.WindowGoal, rtt = 2e9, time.Millisecond
	s.cfg = cfg
	fast := newStream(s, 7, true)
	fast.epochStart = time.Now()
	fast.window -= 3 * mib
	fast.consumed(3 * mib)
	if fast.maxWin != cfg.Window {
		t.Fatalf("a window worth 4 GB/s grew to %d", fast.maxWin)
	}
	cfg.RTT = nil
	s.cfg = cfg
	none := newStream(s, 5, true)
	none.window -= 3 * mib
	none.consumed(3 * mib)
	if none.maxWin != cfg.Window {
		t.Fatalf("without an RTT the window grew to %d", none.maxWin)
	}
}

// delayedPair connects two sessions through a relay that holds every byte for delay in each
// direction: a link with a round trip of 2*delay and no bandwidth limit.
func delayedPair(t *testing.T, cfg Config, delay time.Duration) (client, server *Session) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", nettest.DelayRelay(t, ln.Addr().String(), delay))
	if err != nil {
		t.Fatal(err)
	}
	d := <-accepted
	if client, err = Client(a, cfg); err != nil {
		t.Fatal(err)
	}
	if server, err = Server(d, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Over a link with a 40 ms round trip the receiving stream's window grows past its start (at
// 4 MiB per round trip it would move 100 MB/s at most), and every byte arrives intact.
func TestWindowGrowsOnSlowLink(t *testing.T) {
	const delay = 20 * time.Millisecond
	cfg := DefaultConfig()
	// The window starts at its least (256 KiB): it doubles when half of it is read within two
	// round trips, 1.6 MiB/s here, which even a loaded CI machine under -race reads. From the
	// default 4 MiB that took 25 MiB/s, more than the race detector's ~10 MB/s: a CPU-bound
	// reader rightly gets no growth, and the test failed under load.
	cfg.Window = 256 << 10
	cfg.MaxWindow, cfg.MaxSessionWindow = 16<<20, 32<<20
	cfg.RTT = func() time.Duration { return 2 * delay }
	cs, ss := delayedPair(t, cfg, delay)
	data := make([]byte, 16<<20)
	rand.Read(data)
	st, err := cs.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// The sender's credit shows what the receiver granted, not only what it meant to.
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			st.mu.Lock()
			if c := int64(st.credit); c > peak.Load() {
				peak.Store(c)
			}
			st.mu.Unlock()
		}
	}()
	go func() { st.Write(data); st.Close() }()
	peer, err := ss.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(peer)
	close(stop)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
	}
	if p := peak.Load(); p <= int64(cfg.Window) {
		t.Fatalf("the sender never had more than %d bytes of credit over a 40 ms round trip", p)
	}
}

// A window beyond what one credit frame carries (16 MiB - 1) is granted in several: nothing is
// refused, nothing lost.
func TestWindowBeyondOneCreditFrame(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxWindow, cfg.MaxSessionWindow = 64<<20, 80<<20
	cfg.RTT = func() time.Duration { return time.Second }
	c, s := sessions(t, cfg)
	st, _ := c.OpenStream()
	const size = 160 << 20
	go func() {
		buf := make([]byte, 1<<20)
		for range size >> 20 {
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
		st.Close()
	}()
	peer, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, peer)
	if err != nil || n != size {
		t.Fatalf("%d bytes, %v", n, err)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if peer.maxWin != cfg.MaxWindow || s.Err() != nil {
		t.Fatalf("window %d (want %d), session %v", peer.maxWin, cfg.MaxWindow, s.Err())
	}
}

// The streams of a session grow by MaxSessionWindow - SessionWindow at the most in all, and a
// stream that stops receiving returns its share; the session window grows in proportion, also
// when a stream window grows by less than a whole Window.
func TestWindowGrowthBoundedPerSession(t *testing.T) {
	const mib = 1 << 20
	cfg := DefaultConfig() // 4 MiB, session 16 MiB
	cfg.MaxWindow, cfg.MaxSessionWindow = 16*mib, 32*mib
	cfg.RTT = func() time.Duration { return time.Second }
	s := &Session{cfg: cfg, streams: map[uint32]*Stream{}}
	s.sessWin.Store(int64(cfg.SessionWindow))
	s.active.Store(1)
	grow := func(st *Stream) {
		for range 4 {
			st.epochStart = time.Now()
			n := st.maxWin * 3 / 4
			st.window -= n
			st.consumed(n)
		}
	}
	a, b := newStream(s, 1, true), newStream(s, 3, true)
	grow(a)
	grow(b)
	if a.maxWin != 16*mib || b.maxWin != 8*mib || s.grown.Load() != 16*mib {
		t.Fatalf("windows %d and %d, grown %d: want 16 MiB, 8 MiB (the rest of the budget), 16 MiB", a.maxWin, b.maxWin, s.grown.Load())
	}
	a.finReceived() // the peer closed: a receives no more
	if s.grown.Load() != 4*mib {
		t.Fatalf("a finished stream left %d grown", s.grown.Load())
	}
	grow(b)
	if b.maxWin != 16*mib {
		t.Fatalf("with the budget back, the window grew to %d", b.maxWin)
	}

	odd := &Session{cfg: cfg}
	odd.cfg.MaxWindow = 6 * mib
	odd.sessWin.Store(int64(cfg.SessionWindow))
	odd.raiseSessionWindow(6 * mib)
	if got := odd.sessWin.Load(); got != 24*mib {
		t.Fatalf("window 4 -> 6 MiB: session window %d MiB, want 24 MiB", got/mib)
	}
}
