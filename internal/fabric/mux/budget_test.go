package mux

import (
	"io"
	"sync"
	"testing"
	"time"
)

// budgetConfig is DefaultConfig with a per-session budget: streams start at 16 KiB.
func budgetConfig() Config {
	cfg := DefaultConfig() // window 4 MiB, session window 16 MiB
	cfg.InitialWindow = 16 << 10
	return cfg
}

// 1,000 streams whose readers read a little and then stop, with writers that send forever:
// what the receiving session buffers stays within the session window plus the initial window
// per stream, not 4 MiB per stream, and another stream on the session keeps moving data.
func TestBudgetBoundsStalledStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 streams")
	}
	cfg := budgetConfig()
	c, s := sessions(t, cfg)
	const stalled = 1000
	var writers sync.WaitGroup
	t.Cleanup(func() { c.Close(); s.Close(); writers.Wait() })
	chunk := make([]byte, 64<<10)
	for range stalled {
		st, err := c.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		writers.Go(func() {
			for {
				if _, err := st.Write(chunk); err != nil {
					return
				}
			}
		})
		peer, err := s.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		// One read: the stream is topped up to its share of the session window, then stalls.
		if _, err := io.ReadFull(peer, make([]byte, 8<<10)); err != nil {
			t.Fatal(err)
		}
	}
	bound := int64(cfg.SessionWindow) + stalled*int64(cfg.InitialWindow)
	// The writers fill what they were granted; then the buffered total stops growing.
	var last int64 = -1
	for deadline := time.Now().Add(30 * time.Second); ; {
		time.Sleep(200 * time.Millisecond)
		b := int64(s.Buffered())
		if b > bound {
			t.Fatalf("the session buffers %d bytes, bound %d", b, bound)
		}
		if b == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("buffered bytes still moving after 30 s: %d", b)
		}
		last = b
	}
	if ch, w := s.charged.Load(), s.sessWin.Load(); ch > w {
		t.Fatalf("windows hold %d bytes beyond their initial windows, session window %d", ch, w)
	}
	t.Logf("%d stalled streams buffer %.1f MiB (bound %.1f MiB; 4 MiB each up front would be %d MiB)",
		stalled, float64(last)/(1<<20), float64(bound)/(1<<20), stalled*4)
	if last <= stalled*int64(cfg.InitialWindow) {
		t.Fatalf("buffered %d: the stalled streams never took their shares of the session window", last)
	}

	// Another stream moves 32 MiB through the stalled session, in both directions.
	st, err := c.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	const size = 32 << 20
	go func() {
		buf := make([]byte, 1<<20)
		for range size >> 20 {
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
	}()
	peer, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := io.CopyN(io.Discard, peer, size); err != nil {
		t.Fatalf("the other stream moved %d of %d bytes: %v", n, size, err)
	}
	go io.Copy(io.Discard, st)
	peer.SetWriteDeadline(time.Now().Add(time.Minute))
	for range 8 {
		if _, err := peer.Write(make([]byte, 1<<20)); err != nil {
			t.Fatalf("the other stream's answer: %v", err)
		}
	}
	if b := int64(s.Buffered()); b > bound {
		t.Fatalf("after the other stream, the session buffers %d bytes, bound %d", b, bound)
	}
}

// With a budget the window a read stream is topped up to is its share of the session window
// among the streams holding some; once the session window is spent a new stream still gets its
// initial window again as it reads; a stream read again comes down to its smaller share; and a
// finished stream gives its share back.
func TestBudgetSharesSessionWindow(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	cfg := budgetConfig()
	cfg.InitialWindow = 64 * kib
	s := &Session{cfg: cfg, budgeted: true}
	s.sessWin.Store(int64(cfg.SessionWindow))
	take := func(st *Stream, n int) int { // the peer sent n bytes and the reader consumed them
		st.window -= n
		return st.consumed(n)
	}
	streams := make([]*Stream, 5)
	for i := range streams {
		streams[i] = newStream(s, uint32(2*i+1), true)
		if streams[i].window != cfg.InitialWindow || streams[i].credit != cfg.InitialWindow {
			t.Fatalf("a new stream starts with window %d, credit %d; want %d", streams[i].window, streams[i].credit, cfg.InitialWindow)
		}
	}
	a, e := streams[0], streams[4]
	if c := take(a, 16*kib); c != 4*mib-48*kib || a.window != 4*mib {
		t.Fatalf("alone, a read stream is granted %d to window %d; want its whole 4 MiB", c, a.window)
	}
	for _, st := range streams[1:4] { // 16 MiB / 4: each is still granted its 4 MiB
		take(st, 16*kib)
	}
	if got, want := s.charged.Load(), int64(4*(4*mib-64*kib)); got != want || s.charging.Load() != 4 {
		t.Fatalf("charged %d by %d streams, want %d by 4", got, s.charging.Load(), want)
	}
	// The fifth gets what is left (256 KiB beyond its initial window), and no more.
	if c := take(e, 16*kib); e.window != 64*kib+256*kib || c != 16*kib+256*kib {
		t.Fatalf("with 256 KiB left, a new stream is granted %d to window %d", c, e.window)
	}
	if s.charged.Load() != int64(cfg.SessionWindow) {
		t.Fatalf("charged %d, want the whole session window", s.charged.Load())
	}
	// Spent: it reads on, each read renewing what it read (its initial window and its 256
	// KiB), credit held back until a quarter of the initial window is free.
	e.window, e.buffered = 0, 320*kib // the peer used its window; nothing read yet
	e.buffered -= kib
	if c := e.consumed(kib); c != 0 {
		t.Fatalf("1 KiB read: credit %d, want none yet", c)
	}
	e.buffered -= 15 * kib
	if c := e.consumed(15 * kib); c != 16*kib {
		t.Fatalf("16 KiB read with the session window spent: credit %d, want 16 KiB", c)
	}
	e.buffered = 0
	if c := e.consumed(304 * kib); c != 304*kib || e.window != 320*kib {
		t.Fatalf("all read: credit %d to window %d, want back to 320 KiB", c, e.window)
	}
	// a, read again with five streams holding shares, is topped up to 16 MiB / 5 only.
	e.finReceived() // the peer closed: e receives no more
	if s.charging.Load() != 4 || s.charged.Load() != int64(4*(4*mib-64*kib)) {
		t.Fatalf("finished stream left charged %d by %d", s.charged.Load(), s.charging.Load())
	}
	f := newStream(s, 11, true)
	take(f, 16*kib) // takes the 256 KiB left again
	a.window -= 4 * mib
	a.consumed(4 * mib)
	if want := int(cfg.SessionWindow) / 5; a.window != want {
		t.Fatalf("among five, a read stream's window came back to %d, want %d", a.window, want)
	}
	if s.charged.Load() > int64(cfg.SessionWindow) {
		t.Fatalf("charged %d beyond the session window", s.charged.Load())
	}
}

// A peer sending one-byte frames to a stalled reader does not make it hold a 4 KiB buffer per
// byte: small payloads share the last buffer.
func TestSmallFramesShareBuffers(t *testing.T) {
	cfg := budgetConfig()
	c, s := sessions(t, cfg)
	st, _ := c.OpenStream()
	go func() {
		for range cfg.InitialWindow {
			if _, err := st.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	peer, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Buffered() == cfg.InitialWindow })
	peer.mu.Lock()
	chunks := len(peer.queue)
	peer.mu.Unlock()
	if chunks > cfg.InitialWindow/(4<<10) {
		t.Fatalf("%d one-byte frames are held in %d buffers", cfg.InitialWindow, chunks)
	}
	got, err := io.ReadAll(io.LimitReader(peer, int64(cfg.InitialWindow)))
	if err != nil || len(got) != cfg.InitialWindow {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	for i, b := range got {
		if b != 1 {
			t.Fatalf("byte %d is %d", i, b)
		}
	}
}

// Both ends must agree on the initial window: a peer that sends beyond it breaks the session
// (an unbudgeted peer talking to a budgeted end is caught, not buffered).
func TestBudgetEnforcedOnThePeer(t *testing.T) {
	budgeted := budgetConfig()
	a, b := tcpPair(t)
	old, err := Client(a, DefaultConfig()) // grants itself 4 MiB up front
	if err != nil {
		t.Fatal(err)
	}
	s, err := Server(b, budgeted)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close(); s.Close() })
	st, _ := old.OpenStream()
	go st.Write(make([]byte, 1<<20))
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a peer sending beyond the initial window was not refused")
	}
	if err := s.Err(); err == nil || err.Error() != "mux: peer sent beyond the stream's window" {
		t.Fatalf("session ended with %v", err)
	}
}

// TestAwaitCreditTakesNothing: AwaitCredit reports the peer's window without taking it, waits
// while it is spent (for the write deadline at most), and returns once the reader grants more.
func TestAwaitCreditTakesNothing(t *testing.T) {
	cfg := budgetConfig()
	c, s := sessions(t, cfg)
	st, _ := c.OpenStream()
	if n, err := st.AwaitCredit(); err != nil || n != cfg.InitialWindow {
		t.Fatalf("AwaitCredit on a new stream: %d, %v; want %d", n, err, cfg.InitialWindow)
	}
	if _, err := st.Write(make([]byte, cfg.InitialWindow)); err != nil { // spends it all
		t.Fatal(err)
	}
	st.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := st.AwaitCredit(); err != ErrTimeout {
		t.Fatalf("AwaitCredit with the window spent: %v, want ErrTimeout", err)
	}
	st.SetWriteDeadline(time.Time{})
	peer, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() { n, _ := st.AwaitCredit(); got <- n }()
	if _, err := io.ReadFull(peer, make([]byte, cfg.InitialWindow)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n <= 0 {
			t.Fatalf("AwaitCredit after the reader consumed: %d", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AwaitCredit still waiting after the reader consumed the window")
	}
}
