// Command ztna-router is the ztna edge router: it enrols with a one-time registration key, keeps
// an outbound-only mutually authenticated control channel to the controller, hosts the services
// assigned to it, and checks the customer's network for what would get in the way (preflight).
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
	"github.com/ztna/ztna/router/controlclient"
	"github.com/ztna/ztna/router/identity"
)

// Exit codes beyond 0 (success) and 1 (failure).
const (
	// exitRevoked tells a supervisor not to restart: the router was deleted from the controller
	// and only re-enrolling helps (systemd: RestartPreventExitStatus=3).
	exitRevoked = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ztna-router:", err)
		if errors.Is(err, controlclient.ErrRevoked) {
			os.Exit(exitRevoked)
		}
		os.Exit(1)
	}
}

func stateDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "state-dir", identity.DefaultDir, "the router's state directory (key, certificate, CA, config)")
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ztna-router",
		Short: "The ztna edge router",
		Long: `ztna-router connects a private network to a ztna overlay. It only dials out: to the
controller's edge API (443) to enrol, its control channel (6262) and the fabric (80).

  ztna-router preflight --key "$KEY"     check DNS, firewall, TLS interception and clock first
  ztna-router enroll --key "$KEY"        enrol with a one-time registration key
  ztna-router run                        run the router (systemd: ztna-router.service)
  ztna-router status                     show identity, certificate, assignment and health`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(enrollCommand(), bootstrapCommand(), runCommand(), preflightCommand(), statusCommand(), versionCommand())
	return root
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the router's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return err
		},
	}
}
