package mux

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// refused opens a stream on c, sends a byte and reports what comes back: the refusal's
// payload, or "" when the stream was served (its handler answers "ok").
func refused(t *testing.T, c *Session) string {
	t.Helper()
	st, err := c.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(st)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(b) == "ok" {
		return ""
	}
	return string(b)
}

// TestStreamLimitsRefuseOnTheReader: beyond MaxStreams, MaxSetups or a SharedStreams quota the
// session answers a new stream with Refuse's payload and a fin, from its reader, without a
// handler; a stream that ends or finishes its setup makes room again.
func TestStreamLimitsRefuseOnTheReader(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(c *Config)
		setUp bool // the handler calls SetUp before holding the stream
		want  Limit
	}{
		{name: "streams", cfg: func(c *Config) { c.MaxStreams = 2 }, setUp: true, want: LimitStreams},
		{name: "setups", cfg: func(c *Config) { c.MaxSetups = 2 }, want: LimitSetups},
		{name: "shared", cfg: func(c *Config) { c.SharedStreams = NewQuota(2) }, setUp: true, want: LimitSharedStreams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			var got []Limit
			cfg.Refuse = func(l Limit) []byte {
				got = append(got, l) // on the reader: no lock needed for this test's reads after a round trip
				return []byte("refused")
			}
			tt.cfg(&cfg)
			c, s := sessions(t, cfg)
			release := make(chan struct{})
			handlers := make(chan struct{}, 16)
			go s.ServeStreams(func(st *Stream) {
				handlers <- struct{}{}
				b := make([]byte, 1)
				io.ReadFull(st, b)
				if tt.setUp {
					st.SetUp()
				}
				st.Write([]byte("ok"))
				<-release // hold the stream (and, without SetUp, its setup) until the test lets go
				st.Close()
			})
			held := make([]*Stream, 2)
			for i := range held {
				held[i], _ = c.OpenStream()
				held[i].Write([]byte{1})
				<-handlers
			}
			before := runtime.NumGoroutine()
			for range 100 {
				if r := refused(t, c); r != "refused" {
					t.Fatalf("stream beyond the limit: %q, want refused", r)
				}
			}
			if n := runtime.NumGoroutine(); n > before+2 {
				t.Errorf("goroutines %d → %d while refusing", before, n)
			}
			if len(got) != 100 || got[0] != tt.want {
				t.Errorf("Refuse called %d times with %v, want 100 with %v", len(got), got[:min(len(got), 1)], tt.want)
			}
			// The held streams still carry data both ways.
			b := make([]byte, 2)
			if _, err := io.ReadFull(held[0], b); err != nil || string(b) != "ok" {
				t.Fatalf("held stream: %q, %v", b, err)
			}
			close(release)
			for _, h := range held {
				h.Close()
			}
			waitFor(t, func() bool { return s.NumStreams() == 0 })
			if r := refused(t, c); r != "" {
				t.Fatalf("after the held streams ended: %q, want served", r)
			}
		})
	}
}

// TestAllStreamsBoundBothEnds: MaxAllStreams counts the streams either end opened. With one
// of its own and two of the peer's open, the session refuses the peer's next streams from its
// reader (LimitAllStreams) and its own OpenStream fails; a stream that ends makes room again.
func TestAllStreamsBoundBothEnds(t *testing.T) {
	a, b := tcpPair(t)
	c, err := Client(a, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxAllStreams = 3
	var got []Limit
	cfg.Refuse = func(l Limit) []byte { got = append(got, l); return []byte("refused") }
	s, err := Server(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	own, err := s.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	own.Write([]byte{1})
	if _, err := c.AcceptStream(); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *Stream, 2)
	go s.ServeStreams(func(st *Stream) {
		io.ReadFull(st, make([]byte, 1))
		st.Write([]byte("ok"))
		accepted <- st
	})
	var held, theirs []*Stream
	for range 2 {
		st, _ := c.OpenStream()
		st.Write([]byte{1})
		held = append(held, st)
		theirs = append(theirs, <-accepted)
	}
	for range 10 {
		if r := refused(t, c); r != "refused" {
			t.Fatalf("peer's stream beyond the limit: %q, want refused", r)
		}
	}
	if len(got) != 10 || got[0] != LimitAllStreams {
		t.Errorf("Refuse called %d times with %v, want 10 with LimitAllStreams", len(got), got[:min(len(got), 1)])
	}
	if _, err := s.OpenStream(); err != ErrStreamLimit {
		t.Fatalf("own stream beyond the limit: %v, want ErrStreamLimit", err)
	}
	held[0].Close()
	theirs[0].Close()
	waitFor(t, func() bool { return s.NumStreams() == 2 })
	if _, err := s.OpenStream(); err != nil {
		t.Fatalf("own stream after one ended: %v", err)
	}
}
