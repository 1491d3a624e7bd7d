package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/router/daemon"
)

func enrollCommand() *cobra.Command {
	var (
		key, keyFile, stateDir string
		settings               daemon.Settings
		force                  bool
		timeout                time.Duration
		retryFor               time.Duration
		logs                   logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "enroll (--key KEY | --key-file FILE)",
		Short: "Enrol this router with a one-time registration key",
		Long: `enroll generates the router's private key on this host (it never leaves it), sends a
certificate request to the controller's edge API over TLS pinned to the CA fingerprint in the
key, and writes the router's identity to --state-dir: key.pem (0600), cert.pem, ca.pem,
config.json. Registration keys work once; a used, expired or revoked key is refused with a
message saying so. Prefer --key-file: a --key on the command line is visible to other local users
in the process list.

--failure-domain and --dns-server are saved in <state-dir>/router.json for 'run'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("read the registration key: %w", err)
				}
				key = string(b)
			}
			if strings.TrimSpace(key) == "" {
				return errors.New("no registration key: pass --key KEY or --key-file FILE")
			}
			return enrollRouter(cmd.Context(), cmd.OutOrStdout(), strings.TrimSpace(key), stateDir, settings, force,
				enroll.Options{Logger: log, Timeout: timeout, RetryFor: retryFor})
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "the registration key (ztna-key-v1.…)")
	f.StringVar(&keyFile, "key-file", "", "file holding the registration key")
	stateDirFlag(cmd, &stateDir)
	f.StringVar(&settings.FailureDomain, "failure-domain", "", "this host's failure domain, cloud/region/zone, e.g. aws/eu-west-1/eu-west-1a")
	f.StringVar(&settings.DNSServer, "dns-server", "", "DNS server (host:port) for service names; default: the host's resolver")
	f.BoolVar(&force, "force", false, "replace an existing enrolment in --state-dir")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "timeout of the enrolment request")
	f.DurationVar(&retryFor, "retry-for", time.Minute, "keep retrying this long while no controller endpoint answers (same key and CSR: a lost reply does not use the key up)")
	cmd.MarkFlagsMutuallyExclusive("key", "key-file")
	logs.Register(cmd.Flags(), "info")
	return cmd
}

// enrollRouter validates the local settings first (a key works once: nothing that could fail
// afterwards may depend on the key), saves them, and enrols.
func enrollRouter(ctx context.Context, out io.Writer, key, stateDir string, settings daemon.Settings, force bool, opts enroll.Options) error {
	if err := settings.Validate(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(stateDir, enroll.ConfigFile)); err == nil && !force {
		return fmt.Errorf("%s already holds an enrolled router; pass --force to replace it", stateDir)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("create the state directory: %w", err)
	}
	if err := daemon.SaveSettings(stateDir, settings); err != nil {
		return fmt.Errorf("save router settings: %w", err)
	}
	cfg, err := enroll.Router(ctx, key, stateDir, force, opts)
	if err != nil {
		return err
	}
	printEnrolled(out, cfg, stateDir)
	return nil
}

func printEnrolled(out io.Writer, cfg *api.EnrolledConfig, stateDir string) {
	fmt.Fprintf(out, "enrolled router %s (%s), roles %s; certificate valid until %s\n",
		cfg.Name, cfg.ID, strings.Join(cfg.Roles, ", "), cfg.CertExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "start it with: ztna-router run --state-dir %s\n", stateDir)
}
