package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
)

// TestAwaitListed: an unlisted router's link waits for the snapshot that lists it; once
// maxAdmitWaiters links wait, the next is refused at once instead of waiting too.
func TestAwaitListed(t *testing.T) {
	h := New(Config{})
	h.Update(Snapshot{Routers: []Router{{ID: "r1"}}})
	newcomer := fabric.Peer{Kind: api.KindRouter, ID: "r2"}

	var wg sync.WaitGroup
	admitted := make(chan bool, maxAdmitWaiters)
	for range maxAdmitWaiters {
		wg.Add(1)
		go func() { defer wg.Done(); admitted <- h.awaitListed(newcomer) }()
	}
	for admitWaiters.Load() < maxAdmitWaiters {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if h.awaitListed(fabric.Peer{Kind: api.KindRouter, ID: "r3"}) {
		t.Fatal("an unlisted router was admitted")
	}
	if waited := time.Since(start); waited > AdmitWait/2 {
		t.Fatalf("the link beyond the bound waited %v", waited)
	}
	h.Update(Snapshot{Routers: []Router{{ID: "r1"}, {ID: "r2"}}})
	wg.Wait()
	close(admitted)
	for ok := range admitted {
		if !ok {
			t.Fatal("a waiting link was refused after the snapshot listed its router")
		}
	}
	if n := admitWaiters.Load(); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}
