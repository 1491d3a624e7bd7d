package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/internal/pki"
)

// identityEnv names the identity file when --identity is not given.
const identityEnv = "ZTNA_IDENTITY"

func identityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Manage this host's client identity",
	}
	cmd.AddCommand(identityEnrollCommand())
	return cmd
}

func identityEnrollCommand() *cobra.Command {
	var (
		token, tokenFile, out string
		force                 bool
		timeout               time.Duration
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
			cfg, err := enroll.Identity(cmd.Context(), token, out, force, enroll.Options{Logger: log, Timeout: timeout})
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
	cmd.MarkFlagsMutuallyExclusive("token", "token-file")
	logs.Register(cmd.Flags(), "warn")
	return cmd
}

// identityFlag registers --identity.
func identityFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "identity", "", "identity file written by 'ztna identity enroll' (default $"+identityEnv+")")
}

// overlayClient loads the identity file and returns an SDK client for its hubs.
func overlayClient(path string, log *slog.Logger) (*client.Client, error) {
	if path == "" {
		path = os.Getenv(identityEnv)
	}
	if path == "" {
		return nil, errors.New("no identity: pass --identity FILE or set $" + identityEnv)
	}
	id, err := enroll.LoadIdentity(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("identity file %s does not exist: enrol first with 'ztna identity enroll --token-file TOKEN --out %s'", path, path)
	}
	if err != nil {
		return nil, err
	}
	cert, err := id.TLSCertificate()
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	ca, err := pki.ParseCertPEM([]byte(id.CA))
	if err != nil {
		return nil, fmt.Errorf("identity file %s: CA: %w", path, err)
	}
	if fp := pki.Fingerprint(ca.Raw); id.Config.CAFingerprint != "" && fp != id.Config.CAFingerprint {
		return nil, fmt.Errorf("identity file %s: its CA (%s) is not the one it was enrolled with (%s); enrol again", path, fp, id.Config.CAFingerprint)
	}
	if len(id.Config.Fabric) == 0 {
		return nil, fmt.Errorf("identity file %s names no fabric (hub) address; enrol again", path)
	}
	switch left := time.Until(cert.Leaf.NotAfter); {
	case left <= 0:
		return nil, fmt.Errorf("the certificate of identity %s expired at %s: create a new enrolment token for it and enrol again",
			id.Config.Name, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	case left < time.Hour:
		log.Warn("the identity's certificate expires soon; enrol again before then", "identity", id.Config.Name, "expires_at", cert.Leaf.NotAfter.UTC())
	}
	return client.New(client.Config{Cert: pki.NewCertSlot(cert), CA: ca, Hubs: id.Config.Fabric, Logger: log})
}
