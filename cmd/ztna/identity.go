package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
)

// identityEnv names the identity file when --identity is not given.
const identityEnv = "ZTNA_IDENTITY"

func identityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Manage this host's client identity",
	}
	cmd.AddCommand(identityEnrollCommand(), identityRenewCommand())
	return cmd
}

func identityEnrollCommand() *cobra.Command {
	var (
		token, tokenFile, out string
		force                 bool
		timeout, retryFor     time.Duration
		logs                  logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "enroll (--token TOKEN | --token-file FILE) --out FILE",
		Short: "Enrol a client identity with its one-time enrolment token",
		Long: `enroll turns the enrolment token of a client identity (the enrollment_token the management API
or the ztna_identity Terraform resource returned when the identity was created) into a
certificate: it generates the private key on this host (it never leaves it), sends a certificate
request to the controller's edge API over TLS pinned to the CA fingerprint in the token, and
writes one identity file (mode 0600) holding the key, certificate chain, CA and the network's
endpoints. Tokens work once; a used, expired or revoked token is refused with a message saying
so, and nothing is written.

Prefer --token-file: a --token on the command line is visible to other local users.`,
		Example: `  ztna identity enroll --token-file ./app.token --out /etc/ztna/app.identity`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if out == "" {
				return errors.New("no identity file: pass --out FILE (where to write the identity)")
			}
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("read the enrolment token: %w", err)
				}
				token = string(b)
			}
			token = strings.TrimSpace(token)
			if token == "" {
				return errors.New("no enrolment token: pass --token TOKEN or --token-file FILE")
			}
			cfg, err := enroll.Identity(cmd.Context(), token, out, force, enroll.Options{Logger: log, Timeout: timeout, RetryFor: retryFor})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled identity %s (%s), roles %s\ncertificate valid until %s\nidentity written to %s\n",
				cfg.Name, cfg.ID, strings.Join(cfg.Roles, ","), cfg.CertExpiresAt.UTC().Format(time.RFC3339), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&token, "token", "", "the identity's enrolment token (ztna-key-v1.…)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the enrolment token")
	f.StringVar(&out, "out", "", "identity file to write (mode 0600)")
	f.BoolVar(&force, "force", false, "replace an existing identity file")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "timeout of the enrolment request, per controller endpoint")
	f.DurationVar(&retryFor, "retry-for", time.Minute, "keep retrying this long while no controller endpoint answers (same key and CSR: a lost reply does not use the token up)")
	cmd.MarkFlagsMutuallyExclusive("token", "token-file")
	logs.Register(cmd.Flags(), "warn")
	return cmd
}

func identityRenewCommand() *cobra.Command {
	var (
		identity string
		timeout  time.Duration
		logs     logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "renew [--identity FILE]",
		Short: "Renew the identity's certificate now",
		Long: `renew gets a new certificate for the identity: it generates a new private key on this host,
proves the identity to the controller's edge API with the current certificate (mutual TLS,
pinned to the network CA) and rewrites the identity file atomically (mode 0600) with the new key
and certificate.

Long-running commands (tunnel, dial) renew by themselves at about two thirds of the
certificate's life; renew is for identities used only by short commands, e.g. from a daily
timer. A certificate that has expired cannot be renewed, nor can that of a deleted identity:
the message says what to do.`,
		Example: `  ztna identity renew --identity /etc/ztna/app.identity`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			path, err := identityPath(identity)
			if err != nil {
				return err
			}
			f, err := enroll.LoadIdentity(path)
			if err != nil {
				return err
			}
			cur, err := f.TLSCertificate()
			if err != nil {
				return fmt.Errorf("identity file %s: %w", path, err)
			}
			renewed, err := enroll.RenewIdentity(cmd.Context(), f, cur, enroll.Options{Logger: log, Timeout: timeout})
			if err != nil {
				return err
			}
			if err := enroll.ReplaceIdentity(path, renewed); err != nil {
				return fmt.Errorf("the controller renewed the certificate, but %s was not rewritten: %w", path, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renewed identity %s (%s)\ncertificate valid until %s\nidentity written to %s\n",
				renewed.Config.Name, renewed.Config.ID, renewed.Config.CertExpiresAt.UTC().Format(time.RFC3339), path)
			return nil
		},
	}
	identityFlag(cmd, &identity)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "timeout of the renewal request, per controller endpoint")
	logs.Register(cmd.Flags(), "warn")
	return cmd
}

// identityFlag registers --identity.
func identityFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "identity", "", "identity file written by 'ztna identity enroll' (default $"+identityEnv+")")
}

// overlayClient loads the identity file and returns an SDK client for its hubs. Until ctx
// ends or closeOverlay is called the identity's certificate is renewed in the background and
// the file rewritten (atomically, 0600), so a long-running command never outlives its
// certificate and a restart starts from the renewed one. closeOverlay stops the renewals,
// waits for them to end and closes the client: nothing of the overlay is left running.
func overlayClient(ctx context.Context, path string, log *slog.Logger) (c *client.Client, id *client.Identity, closeOverlay func(), err error) {
	path, err = identityPath(path)
	if err != nil {
		return nil, nil, nil, err
	}
	id, err = client.LoadIdentity(path, client.IdentityOptions{Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	c, err = client.New(id.Config())
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	renewing := make(chan struct{})
	go func() {
		defer close(renewing)
		id.KeepRenewed(ctx) // logs what went wrong; dials keep working until the certificate expires
	}()
	return c, id, func() {
		cancel()
		<-renewing
		c.Close()
	}, nil
}

func identityPath(path string) (string, error) {
	if path == "" {
		path = os.Getenv(identityEnv)
	}
	if path == "" {
		return "", errors.New("no identity: pass --identity FILE or set $" + identityEnv)
	}
	return path, nil
}
