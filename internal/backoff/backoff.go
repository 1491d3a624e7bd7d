// Package backoff computes reconnect delays: exponential growth with jitter, capped, forever.
// Jitter spreads the reconnects of many routers after a controller restart so that they do not
// arrive as one thundering herd.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields successive delays. The zero value is not usable; use New.
type Backoff struct {
	min, max time.Duration
	attempt  int
	rand     func(n int64) int64
}

// New returns a backoff starting around lo and doubling up to hi.
func New(lo, hi time.Duration) *Backoff {
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	hi = max(hi, lo)
	return &Backoff{min: lo, max: hi, rand: rand.Int64N}
}

// Next returns the delay before the next attempt: a random value in [d/2, d] where d doubles with
// each call from min up to max ("equal jitter": never zero, never above the cap).
func (b *Backoff) Next() time.Duration {
	d := b.max
	if b.attempt < 62 {
		if e := b.min << b.attempt; e > 0 && e < b.max {
			d = e
		}
	}
	b.attempt++
	half := d / 2
	return half + time.Duration(b.rand(int64(d-half)+1))
}

// Reset starts over from min, after a connection proved healthy.
func (b *Backoff) Reset() { b.attempt = 0 }
