package controlclient

import (
	"testing"
	"time"
)

type step struct {
	o        outcome
	lasted   time.Duration // of a dropped session
	at       time.Duration // since the test's start
	min, max time.Duration // bounds of the delay
}

func TestRetryPolicy(t *testing.T) {
	const ms = time.Millisecond
	long := 10 * time.Minute
	tests := []struct {
		name  string
		steps []step
	}{
		{"first retry after a healthy session is quick", []step{
			{o: dropped, lasted: long, min: 125 * ms, max: 250 * ms},
			{o: unreachable, at: 250 * ms, min: 250 * ms, max: 500 * ms},
			{o: unreachable, at: 750 * ms, min: 500 * ms, max: time.Second},
			{o: unreachable, at: 1750 * ms, min: 500 * ms, max: time.Second},
			{o: unreachable, at: 29 * time.Second, min: 500 * ms, max: time.Second},
		}},
		{"unreachable for longer than a restart: exponential up to the cap", []step{
			{o: unreachable, min: 125 * ms, max: 250 * ms},
			{o: unreachable, at: 30 * time.Second, min: time.Second, max: 2 * time.Second},
			{o: unreachable, at: 32 * time.Second, min: 2 * time.Second, max: 4 * time.Second},
			{o: unreachable, at: 36 * time.Second, min: 4 * time.Second, max: 8 * time.Second},
			{o: unreachable, at: 44 * time.Second, min: 8 * time.Second, max: 16 * time.Second},
			{o: unreachable, at: 60 * time.Second, min: 15 * time.Second, max: 30 * time.Second},
			{o: unreachable, at: 90 * time.Second, min: 15 * time.Second, max: 30 * time.Second},
		}},
		{"a controller that refuses is not hammered", []step{
			{o: refused, min: 125 * ms, max: 250 * ms},
			{o: refused, at: 250 * ms, min: time.Second, max: 2 * time.Second},
			{o: refused, at: 2 * time.Second, min: 2 * time.Second, max: 4 * time.Second},
			// Unreachable after answering: a restart, retried quickly again.
			{o: unreachable, at: 6 * time.Second, min: 250 * ms, max: 500 * ms},
			{o: refused, at: 7 * time.Second, min: 4 * time.Second, max: 8 * time.Second},
		}},
		{"sessions dropped right away back off", []step{
			{o: dropped, lasted: 100 * ms, min: 125 * ms, max: 250 * ms},
			{o: dropped, lasted: 100 * ms, at: 250 * ms, min: time.Second, max: 2 * time.Second},
			{o: dropped, lasted: 100 * ms, at: 2 * time.Second, min: 2 * time.Second, max: 4 * time.Second},
			{o: dropped, lasted: stableAfter - ms, at: 9 * time.Second, min: 4 * time.Second, max: 8 * time.Second},
		}},
		{"a session that stayed up starts over", []step{
			{o: refused, min: 125 * ms, max: 250 * ms},
			{o: refused, at: 250 * ms, min: time.Second, max: 2 * time.Second},
			{o: refused, at: 2 * time.Second, min: 2 * time.Second, max: 4 * time.Second},
			{o: dropped, lasted: stableAfter, at: 30 * time.Second, min: 125 * ms, max: 250 * ms},
			{o: refused, at: 31 * time.Second, min: 250 * ms, max: 500 * ms},
			{o: refused, at: 32 * time.Second, min: time.Second, max: 2 * time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRetryPolicy()
			begin := time.Now()
			for i, s := range tt.steps {
				if d := p.next(s.o, s.lasted, begin.Add(s.at)); d < s.min || d > s.max {
					t.Fatalf("step %d: delay %v, want within [%v, %v]", i, d, s.min, s.max)
				}
			}
		})
	}
}

// TestRetryCatchesARestartedController simulates many routers whose controller went away after
// a healthy session and listens again after down: each router's next attempt must come within
// quickMax of that, for every restart shorter than restartWindow.
func TestRetryCatchesARestartedController(t *testing.T) {
	var worst time.Duration
	for down := time.Duration(0); down < restartWindow; down += 137 * time.Millisecond {
		p := newRetryPolicy()
		begin := time.Now()
		at := p.next(dropped, time.Hour, begin)
		for at < down {
			at += p.next(unreachable, 0, begin.Add(at))
		}
		worst = max(worst, at-down)
	}
	if worst > quickMax {
		t.Fatalf("a router came back %v after its controller, want at most %v", worst, quickMax)
	}
	t.Logf("slowest simulated router: %v after the controller listened again", worst)
}

// TestRetryJitter: routers that lost their controller at the same moment spread their first
// attempts over the jitter window instead of arriving together.
func TestRetryJitter(t *testing.T) {
	const routers = 200
	lo, hi := time.Hour, time.Duration(0)
	seen := map[time.Duration]bool{}
	for range routers {
		d := newRetryPolicy().next(dropped, time.Hour, time.Now())
		lo, hi = min(lo, d), max(hi, d)
		seen[d.Truncate(time.Millisecond)] = true
	}
	if len(seen) < routers/4 || hi-lo < quickMin/4 {
		t.Fatalf("first retries of %d routers: %d distinct milliseconds between %v and %v; want them spread", routers, len(seen), lo, hi)
	}
}

// TestRetryHonoursBusy: a controller shedding a backlog says when to come back; the router
// waits at least that and at most twice it, and it does not count as a refusal.
func TestRetryHonoursBusy(t *testing.T) {
	p := newRetryPolicy()
	for range 100 {
		if d := p.busy(3 * time.Second); d < 3*time.Second || d > 6*time.Second {
			t.Fatalf("busy delay %v outside [3s, 6s]", d)
		}
	}
	if d := p.next(refused, 0, time.Now()); d > 250*time.Millisecond {
		t.Fatalf("first refusal after busy answers waited %v: busy answers counted as refusals", d)
	}
}

// TestRetrySpreadsOverWelcomeWindow: with a reconnect spread from the welcome, quick retries
// land uniformly over it, so a fleet losing one controller arrives at a bounded rate.
func TestRetrySpreadsOverWelcomeWindow(t *testing.T) {
	const spread = 10 * time.Second
	var buckets [10]int
	for range 2000 {
		p := newRetryPolicy()
		p.spreadOver(spread)
		d := p.next(dropped, time.Hour, time.Now())
		if d < quickMin/2 || d > quickMin+spread {
			t.Fatalf("delay %v outside [%v, %v]", d, quickMin/2, quickMin+spread)
		}
		buckets[min(int(d/time.Second), 9)]++
	}
	for i, n := range buckets {
		if n < 120 || n > 280 { // 200 expected per second of the window
			t.Errorf("second %d of the spread got %d of 2000 reconnects, want about 200: %v", i, n, buckets)
		}
	}
}
