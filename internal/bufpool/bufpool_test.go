package bufpool

import "testing"

func TestGetPut(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 4097, 65536, 100000, Max} {
		b := Get(n)
		if len(*b) < n || len(*b) != cap(*b) {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		*b = (*b)[:0] // a caller may reslice; Put restores the length
		Put(b)
		if b2 := Get(n); len(*b2) < n {
			t.Fatalf("reused buffer for %d has %d bytes", n, len(*b2))
		}
	}
	if b := Get(Max + 1); len(*b) != Max+1 {
		t.Fatal("oversized request")
	}
}
