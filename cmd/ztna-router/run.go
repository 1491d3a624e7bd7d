package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/hosting"
	"github.com/ztna/ztna/router/hubmode"
	"github.com/ztna/ztna/router/localapi"
)

func runCommand() *cobra.Command {
	var (
		stateDir, localAddr, attestation, listen string
		records                                  string
		healthInterval, linkTimeout, drain       time.Duration
		hubLinkStreams                           int
		asHub                                    bool
		settings                                 daemon.Settings
		limits                                   = hub.DefaultLimits()
		logs                                     logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the router",
		Long: `run keeps the control channel to the controller up (reconnecting with backoff, forever),
hosts the services assigned to this router's roles, checks that each one resolves and accepts
connections, and serves /healthz, /readyz and /metrics on --local-addr (loopback by default).

It links out to every hub the controller lists (fabric port) and carries the streams hubs open
to assigned targets only. A link that goes silent takes no new streams after 1.5 s (hubs send
new dials to another router at once) and is closed, cutting its streams and resetting their
target connections, only after --link-timeout: a shorter network blip costs no open stream.
Whenever the control channel comes up, links that are down are redialled at once. The
controller's last lists of control endpoints and hubs are kept in <state-dir>/controllers.json
and hubs.json, so that a router restarted while the controller is down still reaches hubs added
after its enrolment.

With --hub the router runs as a standalone hub instead (operator side): it listens on --listen
for fabric links from routers and client identities, gets its hub certificate and the policy
snapshot over the control channel, and relays dials by that snapshot (also while the controller
is unreachable). The router must hold the role "hub"; list the hub's address to routers and
identities with the controller's advertise.fabric (dev: --hub ADDR).

On SIGTERM the router drains first: for up to --drain it refuses new streams (hubs send them
to another router of the service at once) and lets the open ones finish, then stops. That is
what makes replacing one router of a redundant pair (a rolling image upgrade) cost no dial.

--failure-domain and --dns-server default to the values saved by enroll/bootstrap in
<state-dir>/router.json. Exit status 3 means the controller revoked this router: enrol again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("listen") && !asHub {
				return errors.New("--listen is the fabric listen address of a hub: add --hub, or drop --listen")
			}
			if err := fabric.CheckLinkTimeout("--link-timeout", linkTimeout); err != nil {
				return err
			}
			if records != "" {
				if _, err := fabric.ParseRecords(records); err != nil {
					return fmt.Errorf("--fabric-records: %w", err)
				}
			}
			if hubLinkStreams < 1 {
				return fmt.Errorf("--max-streams-per-hub-link %d: use at least 1", hubLinkStreams)
			}
			if err := limits.Validate(); err != nil {
				return fmt.Errorf("--fabric-%s", strings.ReplaceAll(err.Error(), "_", "-"))
			}
			if drain < 0 {
				return fmt.Errorf("--drain %s: use 0 (stop at once) or more", drain)
			}
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			saved, err := daemon.LoadSettings(stateDir)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("failure-domain") {
				settings.FailureDomain = saved.FailureDomain
			}
			if !cmd.Flags().Changed("dns-server") {
				settings.DNSServer = saved.DNSServer
			}
			r, err := daemon.New(daemon.Options{StateDir: stateDir, Settings: settings, LocalAddr: localAddr,
				HealthInterval: healthInterval, AttestationPath: attestation, Logger: log})
			if err != nil {
				return err
			}
			var links *hosting.Links
			if asHub {
				h, err := hubmode.New(hubmode.Config{StateDir: stateDir, Listen: listen, RouterID: r.Identity.ID(), CA: r.Identity.CA,
					Certifier: r.Control, LinkTimeout: linkTimeout, Logger: log.With("component", "hub"), Metrics: r.Registry, Records: fabric.Records(records), Limits: limits})
				if err != nil {
					return err
				}
				r.Control.Hello.Hub = true
				r.Control.OnHubSnapshot = h.Update
				r.Add("hub", h)
			} else {
				links = hosting.NewLinks(hosting.LinksConfig{Cert: r.Identity.Slot(), CA: r.Identity.CA, Hubs: r.Hubs,
					Dialer: r.Dialer, LinkTimeout: linkTimeout, MaxStreams: hubLinkStreams, Logger: log.With("component", "fabric"), Metrics: r.Registry, Records: fabric.Records(records),
					AllowLegacyHubs: limits.LegacyPeers})
				r.FollowHubs(links.SetHubs)
				r.Add("fabric links", links)
			}
			return r.Run(drained(cmd.Context(), links, drain, log))
		},
	}
	stateDirFlag(cmd, &stateDir)
	f := cmd.Flags()
	f.StringVar(&localAddr, "local-addr", localapi.DefaultAddr, "listen address of /healthz, /readyz and /metrics")
	f.StringVar(&settings.FailureDomain, "failure-domain", "", "this host's failure domain, cloud/region/zone, e.g. aws/eu-west-1/eu-west-1a (reported to the controller)")
	f.StringVar(&settings.DNSServer, "dns-server", "", "DNS server (host:port) for service names; default: the host's resolver")
	f.DurationVar(&drain, "drain", 5*time.Second, "on SIGTERM, how long to let open streams finish (new ones go to other routers) before stopping; 0 stops at once. Keep it below the supervisor's stop timeout (systemd TimeoutStopSec, 90 s by default)")
	f.DurationVar(&healthInterval, "health-interval", 10*time.Second, "how often to check every assigned service")
	f.BoolVar(&asHub, "hub", false, "run as a standalone hub (the router needs the role hub) instead of linking to hubs")
	f.StringVar(&listen, "listen", net.JoinHostPort("", strconv.Itoa(fabric.DefaultPort)), "fabric listen address of the hub (--hub only; a port below 1024 needs CAP_NET_BIND_SERVICE)")
	f.DurationVar(&linkTimeout, "link-timeout", fabric.DefaultKeepaliveTimeout, "how long a fabric link may stay silent before it is closed and its streams are cut (new streams avoid it after 1.5 s); set the same on routers and hubs (controller: fabric.link_timeout)")
	f.StringVar(&records, "fabric-records", "", "what carries the fabric links' TLS records: tlsrecord or crypto-tls (crypto/tls's own, the way back); default $"+fabric.RecordsEnv+", else tlsrecord")
	f.IntVar(&hubLinkStreams, "max-streams-per-hub-link", fabric.DefaultMaxStreamsDialed, "streams a hub may have open on its link to this router; beyond it the hub is answered \"limit reached\" and tries another router")
	limits.RegisterFlags(f)
	f.StringVar(&attestation, "attestation-file", "", "image attestation to report (default /etc/ztna/image.json)")
	logs.Register(cmd.Flags(), "info")
	return cmd
}

// drained is the context the router runs in: it ends when stop ends, after links (nil for a
// hub) have drained for at most drain.
func drained(stop context.Context, links *hosting.Links, drain time.Duration, log *slog.Logger) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	go func() {
		<-stop.Done()
		if links != nil && drain > 0 {
			dctx, done := context.WithTimeout(ctx, drain)
			start := time.Now()
			left := links.Drain(dctx)
			done()
			log.Info("drained", "took", time.Since(start).Round(time.Millisecond), "streams_cut", left)
		}
		cancel()
	}()
	return ctx
}
