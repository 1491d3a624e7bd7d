package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/internal/logging"
)

func servicesCommand() *cobra.Command {
	var (
		identity string
		jsonOut  bool
		timeout  time.Duration
		logs     logging.Flags
	)
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List the services this identity may dial",
		Long: `services asks the hub which services the identity's roles give it access to (through service
policies) and prints their names, addresses and ports. Services without a matching policy are
not listed: to this identity they do not exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			c, _, closeOverlay, err := overlayClient(cmd.Context(), identity, log)
			if err != nil {
				return err
			}
			defer closeOverlay()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			list, err := c.Services(ctx)
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			return printServices(cmd.OutOrStdout(), list)
		},
	}
	identityFlag(cmd, &identity)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON instead of a table")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "how long to wait for the hub")
	logs.Register(cmd.Flags(), "warn")
	return cmd
}

func printServices(w io.Writer, list []client.Service) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no services: no service policy covers this identity's roles")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tPORTS\tPROTOCOL")
	for _, s := range list {
		ports := []string{strconv.Itoa(s.Port)}
		for _, r := range s.PortRanges {
			ports = append(ports, fmt.Sprintf("%d-%d", r.From, r.To))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Address, strings.Join(ports, ","), s.Protocol)
	}
	return tw.Flush()
}
