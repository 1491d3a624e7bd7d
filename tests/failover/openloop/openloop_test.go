package openloop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	refused := errors.New("refused")
	for _, tc := range []struct {
		name string
		recs []Record
		want Outage
	}{
		{"no probes", nil, Outage{}},
		{"steady successes", []Record{{at(-10), at(-5), nil}, {at(0), at(2), nil}, {at(10), at(12), nil}, {at(20), at(21), nil}},
			Outage{Probes: 4, Gap: 10 * time.Millisecond, Slowest: 5 * time.Millisecond}},
		{
			// The probe started at 50 ms is stuck until 3 s; later probes succeed from 400 ms on,
			// so the outage is the 1.1 s without a success before the probe started at 1.5 s
			// succeeds, not the stuck probe's 3 s; the run ends at 2 s, the last start.
			"stuck probe does not count, failures do",
			[]Record{
				{at(0), at(1), nil},
				{at(50), at(3000), &DialError{refused}},
				{at(100), at(150), refused},
				{at(300), at(400), nil},
				{at(1200), at(1300), refused},
				{at(1500), at(1510), nil},
				{at(2000), at(2010), nil},
			},
			Outage{Probes: 7, Failed: 3, InDial: 1, Late: 1, FirstErr: &DialError{refused}, Gap: 1110 * time.Millisecond, Slowest: 2950 * time.Millisecond},
		},
		{
			// Probes stuck at the event and answered long after the last start: the outage runs
			// from the last success to the end of the run, not to when the stuck ones came back.
			"late answers after the run",
			[]Record{{at(-5), at(-1), nil}, {at(2), at(8000), nil}, {at(500), at(510), nil}, {at(4000), at(4005), nil}},
			Outage{Probes: 4, Gap: 3490 * time.Millisecond, Slowest: 7998 * time.Millisecond},
		},
		{"nothing succeeds after the event", []Record{{at(-5), at(-1), nil}, {at(10), at(900), refused}, {at(900), at(950), refused}},
			Outage{Probes: 3, Failed: 2, FirstErr: refused, Gap: 900 * time.Millisecond, Slowest: 890 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Summarize(tc.recs, t0, time.Second)
			if got.FirstErr != nil && tc.want.FirstErr != nil && got.FirstErr.Error() == tc.want.FirstErr.Error() {
				got.FirstErr = tc.want.FirstErr
			}
			if got != tc.want {
				t.Errorf("Summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestStartOpenLoop: a probe that blocks delays no later probe, and collect waits for it.
func TestStartOpenLoop(t *testing.T) {
	release := make(chan struct{})
	var after atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	collect := Start(ctx, 5*time.Millisecond, func(i int) error {
		if i == 0 {
			<-release
			return errors.New("stuck")
		}
		after.Add(1)
		return nil
	})
	<-ctx.Done()
	if n := after.Load(); n < 5 {
		t.Errorf("%d probes ran while the first was stuck, want several", n)
	}
	close(release)
	recs := collect()
	if o := Summarize(recs, time.Time{}, 0); o.Failed != 1 || o.Probes != int(after.Load())+1 {
		t.Errorf("collected %+v from %d probes after the stuck one", o, after.Load())
	}
}
