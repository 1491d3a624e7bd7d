package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/nettest"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// longPathDelay is the one-way delay of the hub–router path in BenchmarkLongPath: a 40 ms round
// trip, as between cloud regions on one continent.
const longPathDelay = 20 * time.Millisecond

// BenchmarkLongPath measures one stream across a hub–router path with a 40 ms round trip (a
// relay in the benchmark process holds every byte for 20 ms each way): there the round trip,
// not the CPU, limits a stream, through the multiplexer's flow-control window. It prints what
// the stream moved next to what the window it starts with would allow.
func BenchmarkLongPath(b *testing.B) {
	for range b.N {
		longPathOnce(b)
	}
}

func longPathOnce(b *testing.B) {
	s := stack.Start(b, stack.Options{})
	sinkPort := stack.Serve(b, sink)
	services := []control.Service{stack.Service("sink", "127.0.0.1", sinkPort)}
	relay := nettest.DelayRelay(b, s.HubAddr, longPathDelay)
	startRouterChildVia(b, s, relay, "far", services)
	s.WaitRouters("far")
	s.Update(stack.Policy(services, []string{"far"}, []string{"bench"}))
	c := s.Client("bench")
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return c.Dial(ctx, addr) }
	sinkAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sinkPort))
	// The link's round trip is measured by keepalives (every 500 ms): wait for the first ones.
	time.Sleep(2 * time.Second)
	const startWindow, bytes = 4 << 20, 1 << 30
	gbs, err := throughput(dial, sinkAddr, 1, bytes)
	if err != nil {
		b.Fatal(err)
	}
	rtt := 2 * longPathDelay
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nztna across a long path — hub–router round trip %v (delay relay), %s\n", rtt, machine())
	fmt.Fprintf(&sb, "%-44s %10s   %s\n", "metric", "value", "note")
	fmt.Fprintf(&sb, "%-44s %10.3f   %s\n", "single-stream throughput (GB/s)", gbs, fmt.Sprintf("%d MiB through the SDK path", bytes>>20))
	fmt.Fprintf(&sb, "%-44s %10.3f   %s\n", "at the starting window, at most (GB/s)", float64(startWindow)/rtt.Seconds()/1e9, "4 MiB per round trip: what a fixed window allows")
	fmt.Print(sb.String())
	b.ReportMetric(gbs, "long_path_single_stream_GB/s")
}
