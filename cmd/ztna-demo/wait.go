package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
)

func waitServiceCommand() *cobra.Command {
	var id string
	var routers int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait-service --id ID",
		Short: "Wait until routers report a service resolvable and reachable",
		Long: `wait-service asks the controller (ZTNA_ADDR, ZTNA_TOKEN, ZTNA_CA_FINGERPRINT, as in ztna.env)
until --routers online routers report the service resolvable and reachable from their side,
printing each change of what they report. Routers check their services periodically, so this
takes up to one health interval after a router can reach the service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := apiclient.New(os.Getenv("ZTNA_ADDR"), os.Getenv("ZTNA_TOKEN"), os.Getenv("ZTNA_CA_FINGERPRINT"),
				apiclient.WithTimeout(10*time.Second))
			if err != nil {
				return fmt.Errorf("%w (load the controller's ztna.env first)", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return waitService(ctx, cmd.OutOrStdout(), client, id, routers)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "service id (required)")
	cmd.Flags().IntVar(&routers, "routers", 2, "how many routers must reach the service")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")
	cmd.MarkFlagRequired("id")
	return cmd
}

// serviceGetter is the part of the API client wait-service needs.
type serviceGetter interface {
	GetService(ctx context.Context, id string) (*api.Service, error)
	ServiceRouters(ctx context.Context, id string, opts ...apiclient.ListOption) ([]api.ServiceRoute, error)
}

func waitService(ctx context.Context, out io.Writer, client serviceGetter, id string, want int) error {
	svc, err := client.GetService(ctx, id)
	if err != nil {
		return err
	}
	last := ""
	for {
		routes, err := client.ServiceRouters(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("service %s: %w", id, ctx.Err())
			}
			return err
		}
		ok := 0
		var report []string
		for _, r := range routes {
			state := r.Status
			switch {
			case r.Status != api.RouterOnline:
			case r.Resolvable && r.Reachable:
				state += ", reaches " + svc.Address
				ok++
			default:
				state += fmt.Sprintf(", resolvable=%v reachable=%v", r.Resolvable, r.Reachable)
			}
			report = append(report, r.RouterName+": "+state)
		}
		if line := strings.Join(report, "; "); line != last {
			fmt.Fprintf(out, "    %s  %s\n", svc.Name, line)
			last = line
		}
		if ok >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("timed out: the routers cannot reach " + svc.Address + " (see above)")
		case <-time.After(250 * time.Millisecond):
		}
	}
}
