// Command ztna-controller is the ztna network controller: `dev` starts a zero-config local
// controller, `run` a production one from a configuration file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ztna-controller:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ztna-controller",
		Short: "The ztna network controller: PKI, registration keys, enrolment, management API",
		Long: `ztna-controller is the network controller of a ztna overlay. It keeps the network CA,
mints one-time registration keys, enrols routers and client identities, serves the management
API that Terraform and the CLI use, runs the control channel routers dial, and embeds a hub.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCommand(), runCommand())
	return root
}

// errUsage marks errors that come from bad flags or configuration; they exit with status 2,
// so scripts and systemd can tell "fix the config" from "the controller failed".
var errUsage = errors.New("usage")
