package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/backoff"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/internal/regkey"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/metadata"
)

func bootstrapCommand() *cobra.Command {
	var (
		source, stateDir string
		opts             metadata.Options
		settings         daemon.Settings
		timeout          time.Duration
		logs             logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --from-metadata aws|gcp|azure|file",
		Short: "First boot: read the registration key from instance metadata and enrol",
		Long: `bootstrap is what a baked image runs on its first boot (ztna-router-bootstrap.service).
It reads the one-time registration key from where the platform delivered it:

  aws    EC2 user data, through IMDSv2
  gcp    the instance metadata item ztna-registration-key
  azure  the VM's user data through IMDS, else its custom data
  file   --key-file (default: $CREDENTIALS_DIRECTORY/registration-key, else /etc/ztna/registration-key)

It records the host's failure domain from the same metadata service (unless --failure-domain is
given), waits until the controller's edge API is reachable (the network may still be coming up),
enrols once, and exits 0. A router that is already enrolled is left alone. --metadata-url points
at another metadata endpoint (tests, proxies).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(stateDir, enroll.ConfigFile)); err == nil {
				log.Info("router already enrolled; nothing to do", "state_dir", stateDir)
				return nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			src, err := metadata.New(source, opts)
			if err != nil {
				return err
			}
			if err := settings.Validate(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			key, err := retry(ctx, log, "read the registration key from "+source, func() (string, error) { return src.Key(ctx) },
				func(err error) bool { return errors.Is(err, metadata.ErrNoKey) })
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("failure-domain") {
				if fd, err := src.FailureDomain(ctx); err != nil {
					log.Warn("cannot tell the failure domain from instance metadata; continuing without", "error", err)
				} else {
					settings.FailureDomain = fd
				}
			}
			if err := waitForEdge(ctx, log, key); err != nil {
				return err
			}
			return enrollRouter(ctx, cmd.OutOrStdout(), key, stateDir, settings, false,
				enroll.Options{Logger: log, Timeout: 30 * time.Second, RetryFor: timeout})
		},
	}
	f := cmd.Flags()
	f.StringVar(&source, "from-metadata", "", "where the key is: "+strings.Join(metadata.Names, ", "))
	stateDirFlag(cmd, &stateDir)
	f.StringVar(&opts.KeyFile, "key-file", "", "key file of the file source (default $CREDENTIALS_DIRECTORY/registration-key, else /etc/ztna/registration-key)")
	f.StringVar(&opts.Endpoint, "metadata-url", "", "base URL of the metadata service (default: the platform's)")
	f.StringVar(&opts.CustomDataFile, "custom-data-file", "", "Azure custom data file (default /var/lib/waagent/CustomData)")
	f.StringVar(&settings.FailureDomain, "failure-domain", "", "this host's failure domain, cloud/region/zone (default: from instance metadata)")
	f.StringVar(&settings.DNSServer, "dns-server", "", "DNS server (host:port) for service names; default: the host's resolver")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	cmd.MarkFlagRequired("from-metadata")
	logs.Register(cmd.Flags(), "info")
	return cmd
}

// retry calls fn with backoff until it succeeds, final(err) says retrying is pointless, or ctx
// ends.
func retry[T any](ctx context.Context, log *slog.Logger, what string, fn func() (T, error), final func(error) bool) (T, error) {
	bo := backoff.New(time.Second, 30*time.Second)
	for {
		v, err := fn()
		if err == nil || final(err) {
			return v, err
		}
		delay := bo.Next()
		log.Warn("retrying", "what", what, "error", err, "retry_in", delay.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s: gave up: %w", what, err)
		case <-time.After(delay):
		}
	}
}

// waitForEdge waits until one of the key's edge endpoints accepts TCP connections, so that the
// single enrolment attempt (keys work once) is not wasted on a network that is still coming up.
func waitForEdge(ctx context.Context, log *slog.Logger, key string) error {
	k, err := regkey.Parse(key)
	if err != nil {
		return err
	}
	_, err = retry(ctx, log, "reach the controller's edge API", func() (struct{}, error) {
		var errs []error
		for _, e := range k.Edge {
			u, _ := url.Parse(e) // Parse checked the URLs
			host := u.Host
			if u.Port() == "" {
				host = net.JoinHostPort(u.Hostname(), "443")
			}
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err := d.DialContext(ctx, "tcp", host)
			if err == nil {
				c.Close()
				return struct{}{}, nil
			}
			errs = append(errs, err)
		}
		return struct{}{}, errors.Join(errs...)
	}, func(error) bool { return false })
	return err
}
