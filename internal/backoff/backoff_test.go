package backoff

import (
	"testing"
	"time"
)

func TestDelaysGrowWithinJitterBoundsAndCap(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name string
		rand func(int64) int64
	}{
		{"lowest jitter", func(int64) int64 { return 0 }},
		{"highest jitter", func(n int64) int64 { return n - 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(lo, hi)
			b.rand = tt.rand
			want := lo
			for i := range 100 {
				d := b.Next()
				if d < want/2 || d > want {
					t.Fatalf("attempt %d: delay %v outside [%v, %v]", i, d, want/2, want)
				}
				want = min(want*2, hi)
			}
		})
	}
}

func TestJitterSpreadsDelays(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		b := New(time.Second, time.Second)
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays out of 20: no jitter", len(seen))
	}
}

func TestReset(t *testing.T) {
	b := New(100*time.Millisecond, time.Hour)
	for range 10 {
		b.Next()
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset delay is %v", d)
	}
}
