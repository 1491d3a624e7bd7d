package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// BenchmarkFailover measures how long new dials are disrupted when the preferred router dies
// (SIGKILL: the kernel closes its connections) and when it goes silent (SIGSTOP: its links stay
// open but nothing answers, as when a firewall starts dropping packets). Routers run as separate
// processes; the client dials one stream after another (dial + 1-byte echo) throughout.
func BenchmarkFailover(b *testing.B) {
	for range b.N {
		failoverOnce(b)
	}
}

func failoverOnce(b *testing.B) {
	s := stack.Start(b, stack.Options{})
	echoPort := stack.Serve(b, stack.Echo)
	svc := stack.Service("echo", "127.0.0.1", echoPort)
	services := []control.Service{svc}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(echoPort))
	snap := stack.Policy(services, []string{"killed", "backup", "frozen"}, []string{"bench"})
	for i := range snap.Routers { // the router about to fail is always the preferred one
		if snap.Routers[i].ID == "backup" {
			snap.Routers[i].Cost = 50
		}
	}
	s.Update(snap)
	c := s.Client("bench")
	dial := func(ctx context.Context, a string) (net.Conn, error) { return c.Dial(ctx, a) }

	backup := startRouterChild(b, s, "backup", services)
	defer backup.cmd.Process.Kill()
	var rows []string
	for _, sc := range []struct {
		id, event string
		sig       syscall.Signal
		target    time.Duration
	}{
		{"killed", "router killed (SIGKILL)", syscall.SIGKILL, time.Second},
		{"frozen", "router silent (SIGSTOP)", syscall.SIGSTOP, 3 * time.Second},
	} {
		r := startRouterChild(b, s, sc.id, services)
		s.WaitRouters(sc.id, "backup")
		failed, gap, err := disruption(dial, addr, func() { r.cmd.Process.Signal(sc.sig) })
		if err != nil {
			b.Fatal(err)
		}
		r.cmd.Process.Kill()
		met := "yes"
		if gap > sc.target {
			met = "no"
		}
		rows = append(rows, fmt.Sprintf("%-28s %12d %22v   %-10v %s", sc.event, failed, gap.Round(time.Millisecond), "<= "+sc.target.String(), met))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nztna failover — routers as separate processes, hub and client in the bench process; load average %s\n", loadavg())
	fmt.Fprintf(&sb, "%-28s %12s %22s   %-10s %s\n", "event", "failed dials", "longest dial outage", "target", "met")
	for _, r := range rows {
		sb.WriteString(r + "\n")
	}
	fmt.Print(sb.String())
}

// disruption dials back to back for a second, triggers event, and dials for four more
// seconds. It returns how many dials failed and the longest time without a dial completing
// successfully after the event.
func disruption(dial dialFunc, addr string, event func()) (failed int, gap time.Duration, err error) {
	start := time.Now()
	for time.Since(start) < time.Second {
		if _, err := latencyOnce(dial, addr); err != nil {
			return 0, 0, fmt.Errorf("before the failure: %w", err)
		}
	}
	at := time.Now()
	event()
	last := at
	for time.Since(at) < 4*time.Second {
		_, err := latencyOnce(dial, addr)
		if err != nil {
			failed++
			continue
		}
		now := time.Now()
		gap = max(gap, now.Sub(last))
		last = now
	}
	return failed, gap, nil
}
