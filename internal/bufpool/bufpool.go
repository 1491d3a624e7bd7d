// Package bufpool lends byte buffers in power-of-two size classes from 4 KiB to 2 MiB, so that
// the data plane's per-frame buffers are reused rather than left to the garbage collector, and a
// stream holds a buffer only while data is in flight.
package bufpool

import "sync"

const (
	minShift = 12
	classes  = 10 // 4 KiB .. 2 MiB: a 1 MiB frame with its TLS records' overhead fits
)

// Max is the largest pooled size; larger buffers are allocated and left to the collector.
const Max = 1 << (minShift + classes - 1)

var pools [classes]sync.Pool

func class(n int) int {
	c := 0
	for size := 1 << minShift; size < n; size <<= 1 {
		c++
	}
	return c
}

// Get returns a buffer of at least n bytes (len == cap, a power of two when pooled).
func Get(n int) *[]byte {
	c := class(n)
	if c >= classes {
		b := make([]byte, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, 1<<(minShift+c))
	return &b
}

// Put returns a buffer from Get. Buffers of other sizes are dropped.
func Put(b *[]byte) {
	n := cap(*b)
	c := class(n)
	if c < classes && n == 1<<(minShift+c) {
		*b = (*b)[:n]
		pools[c].Put(b)
	}
}
