// Package openloop drives new dials open loop — a probe starts every interval whatever the
// earlier ones are doing, so a probe stuck on a failing router delays no later one — and
// summarises the outage an event causes. The failover tests and benchmarks share it, so both
// measure an outage the same way.
package openloop

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Probe is one new dial (the i-th, from 0). It must end by itself when nothing answers.
type Probe func(i int) error

// Record is one probe: when it started and ended, and how it failed (nil: it succeeded).
type Record struct {
	Start, End time.Time
	Err        error
}

// Start starts a probe every interval, each on its own goroutine, until ctx ends. The function
// it returns waits until every probe has ended and returns them all.
func Start(ctx context.Context, interval time.Duration, probe Probe) (collect func() []Record) {
	var (
		mu   sync.Mutex
		recs []Record
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				err := probe(i)
				mu.Lock()
				recs = append(recs, Record{start, time.Now(), err})
				mu.Unlock()
			}()
		}
	}()
	return func() []Record {
		wg.Wait()
		return recs
	}
}

// DialError marks a probe that failed in Dial, before its stream was set up (other failures are
// streams set up on a router that went away before the answer came back).
type DialError struct{ Err error }

func (e *DialError) Error() string { return "dial: " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Outage is what an event did to the probes around it.
type Outage struct {
	Probes   int
	Failed   int
	InDial   int           // failed probes whose error is a DialError
	Late     int           // failed probes that began later than the window after the event
	FirstErr error         // of the failed probes, in the order they ended
	Gap      time.Duration // longest time after the event without a probe succeeding, until the last probe started
	Slowest  time.Duration // longest a probe took, failed or not
}

// Summarize measures the outage an event at time event caused in recs; window is how long
// after the event failures are expected (see Outage.Late). The run ends when the last probe
// started: successes after that say nothing about whether new dials succeeded meanwhile (a probe
// stuck until then, answered late, would otherwise stretch the outage to its end).
func Summarize(recs []Record, event time.Time, window time.Duration) Outage {
	o := Outage{Probes: len(recs)}
	var ends []time.Time
	stop := event
	for _, r := range recs {
		if r.Start.After(stop) {
			stop = r.Start
		}
		o.Slowest = max(o.Slowest, r.End.Sub(r.Start))
		if r.Err == nil {
			ends = append(ends, r.End)
			continue
		}
		o.Failed++
		var de *DialError
		if errors.As(r.Err, &de) {
			o.InDial++
		}
		if o.FirstErr == nil {
			o.FirstErr = r.Err
		}
		if r.Start.After(event.Add(window)) {
			o.Late++
		}
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	last := event
	for _, e := range ends {
		if e.After(event) && !e.After(stop) {
			o.Gap = max(o.Gap, e.Sub(last))
			last = e
		}
	}
	o.Gap = max(o.Gap, stop.Sub(last))
	return o
}
