package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/fleet"
)

// The control-plane benchmark: N routers as in-process router/controlclient sessions (real
// enrolment, real control channel) against a real dev (SQLite) controller process.
// $ZTNA_BENCH_ROUTERS lists the sizes (default "1000,5000"; "1000,5000,10000" adds the
// 10k run, which takes 80-100 s of enrolment). The controller is its own process, so the CPU
// and RSS figures are its own; acks are timed by the routers, in this process.

// controlPlaneFigures is one run's measurements.
type controlPlaneFigures struct {
	routers                  int
	enrolled, online, stored time.Duration // enrolment; start until all connected; until the store says all online
	cpu                      float64       // controller CPU, % of one core, steady state
	rssMB                    float64
	ackP50, ackP99           time.Duration
	restartBack              time.Duration // SIGKILL + restart until all connected again
	replaced                 int           // "closing its previous session" lines in the controller log
	// converged is false when not every router came online within convergeWithin; then
	// only peak is measured (the most routers online at once).
	converged bool
	peak      int
}

// convergeWithin bounds the wait for a fleet to come online.
const convergeWithin = 120 * time.Second

func BenchmarkControlPlane(b *testing.B) {
	sizes := []int{1000, 5000}
	if v := os.Getenv("ZTNA_BENCH_ROUTERS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("ZTNA_BENCH_ROUTERS=%q: want sizes like 1000,5000,10000", v)
			}
			sizes = append(sizes, n)
		}
	}
	b.Logf("control plane at %v routers (ZTNA_BENCH_ROUTERS=1000,5000,10000 adds the 10k run)", sizes)
	for range b.N {
		for _, n := range sizes {
			f := measureControlPlane(b, n, 10*time.Second)
			if !f.converged {
				b.Logf("%d routers: enrolled in %v; NOT CONVERGED: at most %d online within %v (%d sessions replaced)",
					f.routers, f.enrolled.Round(time.Millisecond), f.peak, convergeWithin, f.replaced)
				continue
			}
			b.Logf("%d routers: enrolled in %v; all online after %v (store agrees after %v); controller %.1f %% of a core, RSS %.0f MB; heartbeat ack p50 %v p99 %v; kill -9 + restart: all back after %v; %d sessions replaced",
				f.routers, f.enrolled.Round(time.Millisecond), f.online.Round(time.Millisecond), f.stored.Round(time.Millisecond),
				f.cpu, f.rssMB, f.ackP50.Round(time.Microsecond), f.ackP99.Round(time.Microsecond), f.restartBack.Round(time.Millisecond), f.replaced)
		}
	}
}

// TestControlPlaneConverges is the benchmark scaled down for make test: 300 routers come
// online, and back after a kill -9 and restart, without a storm of replaced sessions. It
// asserts convergence, not speed.
func TestControlPlaneConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs hundreds of control sessions")
	}
	const n = 300
	f := measureControlPlane(t, n, 3*time.Second)
	if !f.converged {
		t.Fatalf("at most %d of %d routers online within %v", f.peak, n, convergeWithin)
	}
	t.Logf("%d routers: online after %v, store after %v, back after restart %v; controller %.1f %% of a core, RSS %.0f MB; ack p99 %v; %d replaced",
		n, f.online, f.stored, f.restartBack, f.cpu, f.rssMB, f.ackP99, f.replaced)
	if f.replaced > n/100 {
		t.Fatalf("%d sessions replaced by their own router's reconnect: a reconnect storm", f.replaced)
	}
}

func measureControlPlane(t testing.TB, n int, steady time.Duration) controlPlaneFigures {
	t.Helper()
	f := controlPlaneFigures{routers: n}
	// The controller writes its log to a file: through a pipe, the busy test process (the
	// simulated routers) drained it too slowly and the controller stalled on its log writer.
	ctl := harness.StartControllerLogFile(t, "--log-level", "info")
	start := time.Now()
	routers := fleet.Enrol(t, ctl.API, t.TempDir(), "bench", "edge", n, 16)
	f.enrolled = time.Since(start)

	var mu sync.Mutex
	var acks []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	wait := fleet.RunWith(ctx, routers, slog.New(slog.DiscardHandler), func(d time.Duration) {
		mu.Lock()
		acks = append(acks, d)
		mu.Unlock()
	})
	defer func() { cancel(); wait() }()
	f.online, f.peak = waitConnected(routers, n, convergeWithin)
	if f.converged = f.peak == n; !f.converged {
		f.replaced = strings.Count(ctl.Proc.Output(), "closing its previous session")
		return f
	}
	f.stored = f.online + harness.WaitFor(t, 60*time.Second, "the store records every router online", func() bool {
		rs, err := ctl.API.ListRouters(context.Background())
		return err == nil && countOnline(rs) == n
	})

	// Steady state: CPU over the window, acks within it.
	pid := ctl.Proc.Cmd.Process.Pid
	mu.Lock()
	acks = acks[:0]
	mu.Unlock()
	cpu0, at0 := cpuTime(t, pid), time.Now()
	time.Sleep(steady)
	f.cpu = 100 * (cpuTime(t, pid) - cpu0).Seconds() / time.Since(at0).Seconds()
	f.rssMB = rssMB(t, pid)
	mu.Lock()
	window := slices.Clone(acks)
	mu.Unlock()
	slices.Sort(window)
	if len(window) > 0 {
		f.ackP50, f.ackP99 = window[len(window)/2], window[len(window)*99/100]
	}

	killed := time.Now()
	ctl.Restart(t, "--log-level", "info")
	back, peak := waitConnected(routers, n, convergeWithin)
	f.restartBack = time.Since(killed) + back
	if f.converged = peak == n; !f.converged {
		f.peak = peak
	}
	f.replaced = strings.Count(ctl.Proc.Output(), "closing its previous session")
	return f
}

func countOnline(rs []api.Router) int {
	n := 0
	for _, r := range rs {
		if r.Status == api.RouterOnline {
			n++
		}
	}
	return n
}

// waitConnected waits until n routers of the fleet hold a session, at most d; it returns how
// long it waited and the most routers connected at once.
func waitConnected(routers []*fleet.Router, n int, d time.Duration) (time.Duration, int) {
	start, peak := time.Now(), 0
	for time.Since(start) < d {
		c, _ := fleet.Count(routers)
		if peak = max(peak, c); c == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), peak
}

// cpuTime is the process's user + system CPU time (/proc/pid/stat, clock ticks of 10 ms).
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// rssMB is the process's resident set (/proc/pid/status VmRSS).
func rssMB(t testing.TB, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
