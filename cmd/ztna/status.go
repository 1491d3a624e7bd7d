package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

// The management API settings, as `ztna-controller dev` writes them to ztna.env.
const (
	addrEnv        = "ZTNA_ADDR"
	tokenEnv       = "ZTNA_TOKEN"
	fingerprintEnv = "ZTNA_CA_FINGERPRINT"
)

func statusCommand() *cobra.Command {
	var (
		jsonOut bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show routers and services as the controller sees them (operators)",
		Long: `status asks the controller's management API for its routers (status, version, failure domain,
last contact) and services (which routers host each, and whether they can resolve and reach it).
It reads the API address, admin token and CA fingerprint from the environment, as
'ztna-controller dev' writes them to ztna.env:

  set -a; . ./ztna-data/ztna.env; set +a; ztna status

  ` + addrEnv + `             edge API base URL (https://...)
  ` + tokenEnv + `            API bearer token (never printed)
  ` + fingerprintEnv + `   sha256:<hex> of the network CA, pinned`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, token, fp := os.Getenv(addrEnv), os.Getenv(tokenEnv), os.Getenv(fingerprintEnv)
			var missing []string
			for _, e := range []struct{ name, value string }{{addrEnv, addr}, {tokenEnv, token}, {fingerprintEnv, fp}} {
				if e.value == "" {
					missing = append(missing, e.name)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("set %s (e.g. source the controller's ztna.env)", strings.Join(missing, ", "))
			}
			c, err := apiclient.New(addr, token, fp, apiclient.WithTimeout(timeout), apiclient.WithUserAgent("ztna-cli"))
			if err != nil {
				return err
			}
			defer c.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			st, err := fetchStatus(ctx, c)
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return printStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON instead of tables")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "how long to wait for the controller")
	return cmd
}

type controllerStatus struct {
	Routers  []api.Router  `json:"routers"`
	Services []api.Service `json:"services"`
}

func fetchStatus(ctx context.Context, c *apiclient.Client) (*controllerStatus, error) {
	routers, err := c.ListRouters(ctx)
	if err != nil {
		if apiclient.IsUnauthorized(err) {
			return nil, fmt.Errorf("%w (check %s)", err, tokenEnv)
		}
		return nil, err
	}
	services, err := c.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	return &controllerStatus{Routers: routers, Services: services}, nil
}

func printStatus(w io.Writer, st *controllerStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tSTATUS\tVERSION\tFAILURE DOMAIN\tLAST SEEN\tROLES")
	for _, r := range st.Routers {
		seen := "never"
		if r.LastSeen != nil {
			seen = now.Sub(*r.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status, dash(r.Version), dash(r.FailureDomain), seen, strings.Join(r.Roles, ","))
	}
	if len(st.Routers) == 0 {
		fmt.Fprintln(tw, "(no routers)")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SERVICE\tTARGET\tROUTERS")
	for _, s := range st.Services {
		sum := s.RouterSummary
		routes := []string{fmt.Sprintf("%d online (%d unhealthy), %d offline, %d unenrolled; failure domains %s",
			sum.Online, sum.Unhealthy, sum.Offline, sum.Unenrolled, dash(strings.Join(sum.FailureDomains, ",")))}
		if sum.Total == 0 {
			routes = []string{"none: no router has a role in " + strings.Join(s.RouterRoles, ",")}
		}
		target := net.JoinHostPort(s.Address, strconv.Itoa(s.Port))
		if len(s.PortRanges) > 0 {
			target += "," + strings.Join(s.PortRanges, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, target, strings.Join(routes, "; "))
	}
	if len(st.Services) == 0 {
		fmt.Fprintln(tw, "(no services)")
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
