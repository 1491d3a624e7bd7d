package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/tests/dataplane/stack"
	"github.com/ztna/ztna/tests/failover/netcut"
)

// netnsEnv names the network namespace a router child must run in. The child re-executes
// itself there (ip netns exec replaces the process, so its pid and pipes stay the bench's).
const netnsEnv = "ZTNA_BENCH_NETNS"

func init() {
	ns := os.Getenv(netnsEnv)
	if ns == "" {
		return
	}
	os.Unsetenv(netnsEnv)
	ip, err := exec.LookPath("ip")
	if err == nil {
		err = syscall.Exec(ip, append([]string{"ip", "netns", "exec", ns, os.Args[0]}, os.Args[1:]...), os.Environ())
	}
	fmt.Fprintln(os.Stderr, "enter network namespace", ns+":", err)
	os.Exit(1)
}

// BenchmarkFailoverCutOff measures how long new dials are disrupted when the preferred router is
// cut off silently: it runs in its own network namespace joined to the host by a veth pair,
// and nftables in that namespace starts dropping every packet (no reset, no close; like a
// failed network path or firewall). The hub and client run in the bench process, the routers as
// separate processes; the client starts a new stream (dial + 1-byte echo) every dialInterval
// throughout, open loop (see disruption). Printed after BenchmarkFailover's SIGKILL and SIGSTOP
// figures.
func BenchmarkFailoverCutOff(b *testing.B) {
	for range b.N {
		cutOffOnce(b)
	}
}

func cutOffOnce(b *testing.B) {
	ns := netcut.New(b)
	s := stack.Start(b, stack.Options{})
	// The hub also listens on the host's end of the link, where the router in the namespace
	// reaches it; the target listens there too, for both routers.
	hubLn := ns.HostListen(b)
	go s.Hub.Serve(b.Context(), hubLn)
	echoLn := ns.HostListen(b)
	b.Cleanup(func() { echoLn.Close() })
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go stack.Echo(c)
		}
	}()
	echoPort := echoLn.Addr().(*net.TCPAddr).Port
	services := []control.Service{stack.Service("echo", ns.HostAddr, echoPort)}
	addr := net.JoinHostPort(ns.HostAddr, strconv.Itoa(echoPort))
	snap := stack.Policy(services, []string{"cut", "backup"}, []string{"bench"})
	for i := range snap.Routers { // the router about to be cut off is the preferred one
		if snap.Routers[i].ID == "backup" {
			snap.Routers[i].Cost = 50
		}
	}
	s.Update(snap)
	c := s.Client("bench")
	dial := func(ctx context.Context, a string) (net.Conn, error) { return c.Dial(ctx, a) }

	backup := startRouterChild(b, s, "backup", services)
	defer backup.cmd.Process.Kill()
	inside := *s
	inside.HubAddr = hubLn.Addr().String()
	os.Setenv(netnsEnv, ns.Name)
	cut := startRouterChild(b, &inside, "cut", services)
	os.Unsetenv(netnsEnv)
	defer cut.cmd.Process.Kill()
	s.WaitRouters("cut", "backup")
	// Make sure the preferred router carries dials before it is cut off.
	for range 20 {
		if _, err := latencyOnce(dial, addr); err != nil {
			b.Fatal(err)
		}
	}
	o, err := disruption(dial, addr, func() { ns.Cut(b) })
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("\nztna failover — router cut off silently in a network namespace (nftables drop); a new dial every %v; load average %s\n", dialInterval, loadavg())
	fmt.Println(outageHeader)
	fmt.Println(outageRow("router cut off (netns drop)", o, 3*time.Second))
}
