// Command ztna is the client side of the ztna overlay, for integration workloads and operators:
// enrol a client identity, list and dial the services it may use, and run the tunnel that makes
// those services reachable by name to unmodified programs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		// SDK errors already start with "ztna: ".
		fmt.Fprintln(os.Stderr, "ztna:", strings.TrimPrefix(err.Error(), "ztna: "))
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ztna",
		Short: "Reach services through the ztna overlay",
		Long: `ztna is the client of a ztna overlay. A client identity (an integration runtime) enrols once
with the one-time token the controller minted for it, then reaches the services that a service
policy grants it — by name, end-to-end encrypted to the router hosting the service.

  ztna identity enroll --token-file token --out app.identity     enrol (once)
  ztna services --identity app.identity                          what may this identity dial?
  ztna dial prod-db.customerdomain.me:5432 --identity app.identity  pipe stdin/stdout (like nc)
  ztna tunnel --identity app.identity                            DNS + local listeners for programs
  ztna identity renew --identity app.identity                    renew the certificate now

Commands that use an identity read --identity, or $ZTNA_IDENTITY when the flag is absent.
Certificates are short-lived (24 h by default): commands that run renew the identity's
certificate at about two thirds of its life and rewrite the identity file (atomically, 0600),
so it must stay writable by the user running them (the file and its directory).
Exit status: 0 on success, 1 on any failure (the message on stderr says what to change).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(identityCommand(), servicesCommand(), dialCommand(), tunnelCommand(), statusCommand(), versionCommand())
	return root
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return err
		},
	}
}
