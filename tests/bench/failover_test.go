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
	"github.com/ztna/ztna/tests/failover/openloop"
)

// BenchmarkFailover measures how long new dials are disrupted when the preferred router dies
// (SIGKILL: the kernel closes its connections) and when it goes silent (SIGSTOP: its links stay
// open but nothing answers, as when a firewall starts dropping packets). Routers run as separate
// processes; the client starts a new stream (dial + 1-byte echo) every dialInterval throughout,
// open loop: a dial stuck on the failed router delays no later one, so the outage measured is the
// router's, not one unlucky dial's.
func BenchmarkFailover(b *testing.B) {
	for range b.N {
		failoverOnce(b)
	}
}

// dialInterval is how often the failover benchmarks start a new dial.
const dialInterval = 5 * time.Millisecond

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
		o, err := disruption(dial, addr, func() { r.cmd.Process.Signal(sc.sig) })
		if err != nil {
			b.Fatal(err)
		}
		r.cmd.Process.Kill()
		rows = append(rows, outageRow(sc.event, o, sc.target))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nztna failover — routers as separate processes, hub and client in the bench process; a new dial every %v; load average %s\n", dialInterval, loadavg())
	sb.WriteString(outageHeader + "\n")
	for _, r := range rows {
		sb.WriteString(r + "\n")
	}
	fmt.Print(sb.String())
}

// The outage is the longest time without a dial succeeding; the slowest dial (one stuck on the
// failed router until the hub gave up on it and retried elsewhere) is shown beside it.
var outageHeader = fmt.Sprintf("%-28s %18s %22s %14s   %-10s %s", "event", "failed/all dials", "longest dial outage", "slowest dial", "target", "met")

// outageRow is one line under outageHeader.
func outageRow(event string, o openloop.Outage, target time.Duration) string {
	return fmt.Sprintf("%-28s %18s %22v %14v   %-10v %s", event, fmt.Sprintf("%d/%d", o.Failed, o.Probes),
		o.Gap.Round(time.Millisecond), o.Slowest.Round(time.Millisecond), "<= "+target.String(), yesNo(o.Gap <= target))
}

// disruption starts a new dial (dial + 1-byte echo) every dialInterval, each on its own so a dial
// stuck on the failing router delays no later one, for a second before event and four seconds
// after it, and measures the outage the event caused.
func disruption(dial dialFunc, addr string, event func()) (openloop.Outage, error) {
	ctx, cancel := context.WithCancel(context.Background())
	collect := openloop.Start(ctx, dialInterval, func(int) error {
		_, err := latencyOnce(dial, addr)
		return err
	})
	time.Sleep(time.Second)
	at := time.Now()
	event()
	time.Sleep(4 * time.Second)
	cancel()
	recs := collect()
	for _, r := range recs {
		if r.Err != nil && r.Start.Before(at) && r.End.Before(at) {
			return openloop.Outage{}, fmt.Errorf("before the failure: %w", r.Err)
		}
	}
	return openloop.Summarize(recs, at, 0), nil
}
