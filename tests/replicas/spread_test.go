package replicas

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ztna/ztna/tests/fleet"
)

// spreadRouters is the fleet size of TestReplicasSpreadSessions ($ZTNA_SPREAD_ROUTERS
// overrides it). With each router's first choice a fair coin, 300 routers leave the 40–60 %
// band with a probability of about 0.05 %.
func spreadRouters(t *testing.T) int {
	if v := os.Getenv("ZTNA_SPREAD_ROUTERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("ZTNA_SPREAD_ROUTERS=%q: want a number of routers, at least 10", v)
		}
		return n
	}
	return 300
}

// TestReplicasSpreadSessions: routers that all enrolled through replica a (so every key lists
// a first) split their sessions 40–60 % over the two replicas, each router dialling them in its
// own order; when one replica is SIGKILLed, all routers are on the other within 30 s.
func TestReplicasSpreadSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs hundreds of control sessions")
	}
	rs := startReplicas(t, 2)
	a, b := rs[0], rs[1]
	n := spreadRouters(t)
	start := time.Now()
	routers := fleet.Enrol(t, a.api, t.TempDir(), "spread", "edge", n, 8)
	t.Logf("%d routers enrolled through %s in %v", n, a.name, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	wait := fleet.Run(ctx, routers, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { cancel(); wait() })
	d := waitAll(t, routers, 60*time.Second, "every router connected", func(by map[string]int) bool { return by[a.control]+by[b.control] == n })
	_, by := fleet.Count(routers)
	t.Logf("all %d connected %v after start: %s %d, %s %d", n, d.Round(time.Millisecond), a.name, by[a.control], b.name, by[b.control])
	for _, rep := range rs {
		if share := float64(by[rep.control]) / float64(n); share < 0.4 || share > 0.6 {
			t.Fatalf("%s holds %.1f %% of the sessions (%d of %d), want 40–60 %%", rep.name, 100*share, by[rep.control], n)
		}
	}

	a.proc.Kill()
	killed := time.Now()
	d = waitAll(t, routers, 30*time.Second, "every router on "+b.name, func(by map[string]int) bool { return by[b.control] == n })
	t.Logf("all %d routers on %s %v after %s was killed", n, b.name, d.Round(time.Millisecond), a.name)
	if since := time.Since(killed); since > 30*time.Second {
		t.Fatalf("took %v, want under 30 s", since)
	}
}

// waitAll polls the fleet's sessions per endpoint until ok, failing after d.
func waitAll(t *testing.T, routers []*fleet.Router, d time.Duration, what string, ok func(map[string]int) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, by := fleet.Count(routers)
		if ok(by) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v (sessions per endpoint: %v)", what, d, by)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
