// Package storetest is the conformance suite of store.Store. Every backend runs it with one
// call (storetest.Run), so the embedded SQLite store and the replicated PostgreSQL store keep
// one contract: CRUD and name conflicts, references between keys and their subjects, key
// states and exactly-once consumption under contention, read-modify-write without lost
// updates, and the change feed — including, for replicated backends, changes crossing from
// one replica to another.
package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store"
)

// Run runs the contract of one store against the stores open returns. Every call of open
// must return a new store on an empty database and close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, c := range collections {
		t.Run("CRUD/"+c.name(), func(t *testing.T) { c.crud(t, open(t)) })
		t.Run("Conflicts/"+c.name(), func(t *testing.T) { c.conflicts(t, open(t)) })
		t.Run("Paging/"+c.name(), func(t *testing.T) { c.paging(t, open(t)) })
	}
	t.Run("Normalisation", func(t *testing.T) { testNormalisation(t, open(t)) })
	t.Run("RouterState", func(t *testing.T) { testRouterState(t, open(t)) })
	t.Run("RouterStates", func(t *testing.T) { testRouterStates(t, open(t)) })
	t.Run("LatestEnrolment", func(t *testing.T) { testLatestEnrolment(t, open(t)) })
	t.Run("MarkStaleOffline", func(t *testing.T) { testMarkStaleOffline(t, open(t)) })
	t.Run("References", func(t *testing.T) { testReferences(t, open(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open(t)) })
	t.Run("KeyStates", func(t *testing.T) { testKeyStates(t, open(t)) })
	t.Run("RetryAfterReenrolment", func(t *testing.T) { testRetryAfterReenrolment(t, open(t)) })
	t.Run("Reenrolment", func(t *testing.T) { testReenrolment(t, open(t)) })
	t.Run("IdentityToken", func(t *testing.T) { testIdentityToken(t, open(t)) })
	t.Run("ReissueIdentityToken", func(t *testing.T) { testReissueIdentityToken(t, open(t)) })
	t.Run("ConsumeKeyOnce", func(t *testing.T) { s := open(t); testConsumeKeyOnce(t, s, s) })
	t.Run("FirstEnrolmentOnce", func(t *testing.T) { s := open(t); testFirstEnrolmentOnce(t, s, s) })
	t.Run("ConsumeManyKeys", func(t *testing.T) { s := open(t); testConsumeManyKeys(t, s, s) })
	for _, c := range collections {
		t.Run("ConcurrentUpdates/"+c.name(), func(t *testing.T) { s := open(t); c.concurrentUpdates(t, s, s) })
	}
	t.Run("PageKeys", func(t *testing.T) { testPageKeys(t, open(t)) })
	t.Run("Count", func(t *testing.T) { testCount(t, open(t)) })
	t.Run("Feed", func(t *testing.T) { testFeed(t, open(t)) })
	t.Run("FeedSkipsFailedWrites", func(t *testing.T) { testFeedSkipsFailedWrites(t, open(t)) })
	t.Run("FeedSubscribers", func(t *testing.T) { testFeedSubscribers(t, open(t)) })
}

// Shared describes a backend on which several stores can be open on one database.
type Shared struct {
	// NewDatabase creates an empty database and returns a function that opens a store on
	// it and closes it when t ends. The suite opens several stores on one database — at
	// once (concurrent processes, replicas) and one after another (restarts, for which it
	// closes a store early: Close must tolerate a second call).
	NewDatabase func(t *testing.T) (open func(t *testing.T) store.Store)
	// SharedFeed says that a write through one store reaches the subscribers of every
	// other store open on the same database (replicated backends).
	SharedFeed bool
}

// RunShared runs the contract of several stores on one database: what one writes the
// others read, keys are consumed exactly once and updates are not lost across stores, data
// survives a restart, and (SharedFeed) changes reach every store's subscribers in one order.
func RunShared(t *testing.T, b Shared) {
	two := func(t *testing.T) (store.Store, store.Store) {
		open := b.NewDatabase(t)
		return open(t), open(t)
	}
	t.Run("Persistence", func(t *testing.T) { testPersistence(t, b.NewDatabase(t)) })
	t.Run("ReadOthersWrites", func(t *testing.T) { a, c := two(t); testReadOthersWrites(t, a, c) })
	t.Run("ConsumeKeyOnce", func(t *testing.T) { a, c := two(t); testConsumeKeyOnce(t, a, c) })
	t.Run("FirstEnrolmentOnce", func(t *testing.T) { a, c := two(t); testFirstEnrolmentOnce(t, a, c) })
	t.Run("ConsumeManyKeys", func(t *testing.T) { a, c := two(t); testConsumeManyKeys(t, a, c) })
	for _, c := range collections {
		t.Run("ConcurrentUpdates/"+c.name(), func(t *testing.T) { a, b := two(t); c.concurrentUpdates(t, a, b) })
	}
	if b.SharedFeed {
		t.Run("CrossReplicaFeed", func(t *testing.T) { a, c := two(t); testCrossReplicaFeed(t, a, c) })
		t.Run("CrossReplicaOrder", func(t *testing.T) { a, c := two(t); testCrossReplicaOrder(t, a, c) })
	}
}

// deadline bounds every wait for a change.
const deadline = 2 * time.Second

// enroller and otherEnroller stand for the hashes of two public keys that enrol with a key
// (store.Key.UsedBy); enrollerN(i) gives concurrent contenders keys of their own.
var (
	enroller      = enrollerN(-1)
	otherEnroller = enrollerN(-2)
)

func enrollerN(i int) []byte {
	sum := sha256.Sum256([]byte(fmt.Sprintf("public key %d", i)))
	return sum[:]
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next change from ch, failing t when none comes in time.
func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("change feed closed early")
		}
		return c
	case <-time.After(deadline):
		t.Fatalf("no change within %v", deadline)
	}
	return store.Change{}
}

// expect reads len(want) changes and compares them in order.
func expect(t *testing.T, ch <-chan store.Change, want ...store.Change) {
	t.Helper()
	for i, w := range want {
		if got := next(t, ch); got != w {
			t.Fatalf("change %d = %+v, want %+v", i, got, w)
		}
	}
}

// race runs act(0) … act(n-1) on goroutines released together. warm(i) runs first on each
// goroutine, before the release, so that stores have their connections open (pools grow on
// demand) and the actions really overlap.
func race(n int, warm, act func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			warm(i)
			ready.Done()
			<-start
			act(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// pick spreads callers over two stores (which may be one).
func pick(i int, a, b store.Store) store.Store {
	if i%2 == 1 {
		return b
	}
	return a
}

// must fails t on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
