// Command ztna-demo runs the quickstart's private "customer network": a network namespace
// holding a customer DNS server (miekg/dns) and an HTTP service that only routers can reach.
// The service's name resolves only through that DNS server, and an nftables rule refuses the
// host's own processes every connection into the network except DNS queries (whoever builds a
// router's address-based firewall resolves the service names there), so a request to the
// service that succeeds from the host must have crossed the ztna overlay. scripts/quickstart.sh
// and the provider's acceptance tests use it.
//
//	ztna-demo up --state-dir .quickstart/demo    build the network, start DNS + HTTP, print JSON
//	ztna-demo link-router 10.231.4.2             let a namespaced router reach the network
//	ztna-demo down --state-dir .quickstart/demo  remove everything up created
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ztna-demo:", err)
		os.Exit(1)
	}
}

func rootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ztna-demo",
		Short: "A private demo service (DNS + HTTP in a network namespace) for the ztna quickstart",
		Long: `ztna-demo builds a small private "customer network" on this machine (root only):

  network namespace  ` + defaultNamespace + ` (--namespace), joined to the host by a veth pair (` + defaultSubnet + `)
  customer DNS       answers the service name (default ` + defaultHost + `) and nothing else
  HTTP service       on port 80 of the namespace address
  nftables table     inet ztna_demo (named after the namespace): the host's own processes cannot connect into the network
                     (DNS queries to the customer DNS excepted)

Namespaced routers (ztna_router_host with local { isolation = "netns" }) reach it once
'ztna-demo link-router' enabled forwarding on their veth; the host reaches the service only
through the overlay. 'ztna-demo down' removes all of it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(upCommand(), downCommand(), linkRouterCommand(), waitServiceCommand(), serveCommand())
	return root
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
