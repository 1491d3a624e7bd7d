package hub_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/logging"
)

// observed runs a hub with limits, its log and metrics kept.
func observed(t *testing.T, limits hub.Limits) *revocationEnv {
	log, reg := &logging.Buffer{}, prometheus.NewRegistry()
	e := startWith(t, hub.Config{Limits: limits, Logger: slog.New(slog.NewTextHandler(log, nil)), Metrics: reg})
	return &revocationEnv{env: e, log: log, reg: reg}
}

// watch opens a service-list watch and reads its first list.
func watch(t *testing.T, l *fabric.Link) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, _, err := l.Open(ctx, &fabric.Request{Op: fabric.OpWatch})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// TestLimitsRefuseWithTheirCode: each limit, once hit, answers LimitReached naming its key and
// moves ztna_hub_limit_refusals_total{limit=<key>}; what it refused leaves the rest working.
func TestLimitsRefuseWithTheirCode(t *testing.T) {
	tests := []struct {
		limit  string
		limits hub.Limits
		// hit holds what the limit allows and returns the refused attempt's error.
		hit func(t *testing.T, e *revocationEnv) error
	}{
		{limit: "watches_per_link", limits: hub.Limits{WatchesPerLink: 2}, hit: func(t *testing.T, e *revocationEnv) error {
			l := e.link(api.KindIdentity, "i1")
			for range 2 {
				if _, err := watch(t, l); err != nil {
					t.Fatal(err)
				}
			}
			_, err := watch(t, l)
			return err
		}},
		{limit: "streams_per_link", limits: hub.Limits{StreamsPerLink: 2}, hit: func(t *testing.T, e *revocationEnv) error {
			l := e.link(api.KindIdentity, "i1")
			for range 2 {
				if _, err := watch(t, l); err != nil {
					t.Fatal(err)
				}
			}
			_, err := watch(t, l)
			return err
		}},
		{limit: "streams_per_identity", limits: hub.Limits{StreamsPerIdentity: 2}, hit: func(t *testing.T, e *revocationEnv) error {
			a, b := e.link(api.KindIdentity, "i1"), e.link(api.KindIdentity, "i1")
			if _, err := watch(t, a); err != nil {
				t.Fatal(err)
			}
			if _, err := watch(t, b); err != nil {
				t.Fatal(err)
			}
			_, err := watch(t, b)
			return err
		}},
		{limit: "setups_per_link", limits: hub.Limits{SetupsPerLink: 1}, hit: func(t *testing.T, e *revocationEnv) error {
			hold := make(chan struct{})
			t.Cleanup(func() { close(hold) })
			e.serve(&fakeRouter{id: "a", code: fabric.OK, hold: hold})
			l := e.link(api.KindIdentity, "i1")
			go dial(l) // held at the router: in setup until the test ends
			for e.hub.Routers()[0].Streams == 0 {
				time.Sleep(time.Millisecond)
			}
			_, err := dial(l)
			return err
		}},
		{limit: "links_per_identity", limits: hub.Limits{LinksPerIdentity: 1}, hit: func(t *testing.T, e *revocationEnv) error {
			e.link(api.KindIdentity, "i1")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			l, err := fabric.Dial(ctx, e.addr, fabric.LinkConfig{Credentials: e.p.Credentials(api.KindIdentity, "i1")})
			if err == nil {
				l.Close()
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			e := observed(t, tt.limits)
			e.hub.Update(snapshot(map[string]int{"a": 0}))
			err := tt.hit(t, e)
			if !errors.Is(err, fabric.ErrLimitReached) {
				t.Fatalf("beyond %s: %v, want limit reached", tt.limit, err)
			}
			if got := e.counter("ztna_hub_limit_refusals_total", "limit", tt.limit); got != 1 {
				t.Errorf("ztna_hub_limit_refusals_total{limit=%q} = %v, want 1", tt.limit, got)
			}
			if !strings.Contains(e.log.String(), "limit="+tt.limit) {
				t.Errorf("log does not name %s:\n%s", tt.limit, e.log.String())
			}
			// Another identity is not affected.
			snap := snapshot(map[string]int{"a": 0})
			snap.Identities = append(snap.Identities, hub.Identity{ID: "i2", Roles: []string{"apps"}})
			e.hub.Update(snap)
			if _, err := watch(t, e.link(api.KindIdentity, "i2")); err != nil {
				t.Errorf("another identity's watch: %v", err)
			}
		})
	}
}

// TestRequestTimeoutsAreCounted: a stream whose request stops half-way is closed once
// request_timeout is over, unanswered, and moves ztna_hub_request_timeouts_total; a stream that
// sends its request in time is served.
func TestRequestTimeoutsAreCounted(t *testing.T) {
	e := observed(t, hub.Limits{RequestTimeout: 200 * time.Millisecond})
	e.hub.Update(snapshot(map[string]int{"a": 0}))
	l := e.link(api.KindIdentity, "i1")
	req, err := (&fabric.Request{Op: fabric.OpWatch}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(req[:1]); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if resp, err := fabric.ReadResponse(s); err == nil {
		t.Fatalf("a half-sent request was answered: %+v", resp)
	} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("the hub kept the half-sent stream open past 10 s (request_timeout 200ms)")
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("stream closed after %v, before request_timeout", waited)
	}
	if got := e.counter("ztna_hub_request_timeouts_total"); got != 1 {
		t.Errorf("ztna_hub_request_timeouts_total = %v, want 1", got)
	}
	// The same link serves a request sent in time, and does not count it.
	if _, err := watch(t, l); err != nil {
		t.Errorf("a request sent in time: %v", err)
	}
	if got := e.counter("ztna_hub_request_timeouts_total"); got != 1 {
		t.Errorf("after a timely request, ztna_hub_request_timeouts_total = %v, want 1", got)
	}
}

// TestRefusalLogIsSummarised: a burst of refused dials writes one line and then, once the
// interval is over, one summary with the count — not a line per dial.
func TestRefusalLogIsSummarised(t *testing.T) {
	e := observed(t, hub.Limits{RefusalLogInterval: time.Second})
	snap := snapshot(map[string]int{"a": 0})
	snap.Identities = append(snap.Identities, hub.Identity{ID: "stranger"})
	e.hub.Update(snap)
	l := e.link(api.KindIdentity, "stranger")
	const dials = 500
	for range dials {
		if _, err := dial(l); !errors.Is(err, fabric.ErrNotAuthorized) {
			t.Fatalf("dial: %v", err)
		}
	}
	waitFor(t, "summary line", func() bool { return strings.Contains(e.log.String(), "also_refused.no_policy=") })
	out := e.log.String()
	if n := strings.Count(out, "identity=stranger"); n != 2 {
		t.Errorf("%d refused dials wrote %d lines, want 2 (the first, a summary):\n%s", dials, n, out)
	}
	if want := fmt.Sprintf("also_refused.no_policy=%d", dials-1); !strings.Contains(out, want) {
		t.Errorf("summary lacks %s:\n%s", want, out)
	}
	if got := e.counter("ztna_hub_dials_total", "result", "not authorized"); got != dials {
		t.Errorf("not-authorized dials counted %v, want %d", got, dials)
	}
}

// TestPacedOpensAreCounted: stream_opens_per_second refuses nothing, it slows the link's reader;
// the pacing must still show in ztna_hub_stream_opens_paced_total, and the paced streams work.
func TestPacedOpensAreCounted(t *testing.T) {
	// At one open a second with a burst of one, each open after the first waits about a second
	// (far above the hub's 5 ms pacing quantum) unless its predecessor's round trip took
	// nearly a second itself: with three watches, at least one is paced even on a loaded machine.
	e := observed(t, hub.Limits{StreamOpensPerSecond: 1, StreamOpenBurst: 1})
	e.hub.Update(snapshot(map[string]int{"a": 0}))
	l := e.link(api.KindIdentity, "i1")
	for i := range 3 {
		if _, err := watch(t, l); err != nil {
			t.Fatalf("paced watch %d: %v", i, err)
		}
	}
	if got := e.counter("ztna_hub_stream_opens_paced_total"); got < 1 {
		t.Errorf("ztna_hub_stream_opens_paced_total = %v after three opens at one a second, want at least 1", got)
	}
	if got := e.counter("ztna_hub_limit_refusals_total", "limit", "streams_per_link"); got != 0 {
		t.Errorf("pacing refused streams: ztna_hub_limit_refusals_total{limit=streams_per_link} = %v", got)
	}
}
