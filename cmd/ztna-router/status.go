package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/localapi"
	"github.com/ztna/ztna/router/targets"
)

// status is what `ztna-router status` reports.
type status struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Control []string `json:"control"` // enrolled
	Fabric  []string `json:"fabric"`  // enrolled
	// LearnedControl and LearnedFabric are the controller's last lists (controllers.json,
	// hubs.json), which the router dials before (control) or instead of (fabric) the enrolled ones.
	LearnedControl []string          `json:"learned_control,omitempty"`
	LearnedFabric  []string          `json:"learned_fabric,omitempty"`
	LearnedErrors  []string          `json:"learned_errors,omitempty"` // saved lists the router ignores, and why
	CAFingerprint  string            `json:"ca_fingerprint"`
	CertExpiresAt  time.Time         `json:"cert_expires_at"`
	FailureDomain  string            `json:"failure_domain,omitempty"`
	DNSServer      string            `json:"dns_server,omitempty"`
	Services       []control.Service `json:"services"`
	// Daemon is what the running router's local endpoints say ("" fields = not running).
	Daemon daemonStatus `json:"daemon"`
}

type daemonStatus struct {
	Running bool   `json:"running"`
	Healthz string `json:"healthz,omitempty"`
	Readyz  string `json:"readyz,omitempty"`
}

func statusCommand() *cobra.Command {
	var (
		stateDir, localAddr string
		jsonOut             bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the router's identity, controller endpoints and hubs, certificate, saved assignment and whether it is running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := identity.Load(stateDir)
			if err != nil {
				return err
			}
			settings, err := daemon.LoadSettings(stateDir)
			if err != nil {
				return err
			}
			services, _, err := targets.Load(stateDir)
			if err != nil {
				return err
			}
			l := loadLearned(stateDir, id.Config)
			st := status{ID: id.ID(), Name: id.Config.Name, Roles: id.Config.Roles, Control: id.Config.Control, Fabric: id.Config.Fabric,
				LearnedControl: l.control, LearnedFabric: l.fabric, LearnedErrors: l.errors,
				CAFingerprint: id.Config.CAFingerprint, CertExpiresAt: id.Leaf().NotAfter.UTC(),
				FailureDomain: settings.FailureDomain, DNSServer: settings.DNSServer, Services: services,
				Daemon: probe(localAddr)}
			out := cmd.OutOrStdout()
			if jsonOut {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return st.write(out)
		},
	}
	stateDirFlag(cmd, &stateDir)
	cmd.Flags().StringVar(&localAddr, "local-addr", localapi.DefaultAddr, "the running router's local endpoints")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	return cmd
}

// probe asks the running router's local endpoints how it is.
func probe(addr string) daemonStatus {
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (string, bool) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return strings.TrimSpace(string(b)), true
	}
	var d daemonStatus
	d.Healthz, d.Running = get("/healthz")
	if d.Running {
		d.Readyz, _ = get("/readyz")
	}
	return d
}

func (s status) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "router\t%s (%s)\n", s.Name, s.ID)
	fmt.Fprintf(tw, "roles\t%s\n", strings.Join(s.Roles, ", "))
	fmt.Fprintf(tw, "controller\t%s\n", learnedOr(s.LearnedControl, s.Control, "then the enrolled"))
	fmt.Fprintf(tw, "hubs\t%s\n", learnedOr(s.LearnedFabric, s.Fabric, "instead of the enrolled"))
	for _, e := range s.LearnedErrors {
		fmt.Fprintf(tw, "saved list\tIGNORED: %s\n", e)
	}
	fmt.Fprintf(tw, "network CA\t%s\n", s.CAFingerprint)
	left := time.Until(s.CertExpiresAt).Round(time.Second)
	if left > 0 {
		fmt.Fprintf(tw, "certificate\texpires %s (in %v)\n", s.CertExpiresAt.Format(time.RFC3339), left)
	} else {
		fmt.Fprintf(tw, "certificate\tEXPIRED %s: enrol again with a new registration key\n", s.CertExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "failure domain\t%s\n", orDash(s.FailureDomain))
	fmt.Fprintf(tw, "DNS server\t%s\n", or(s.DNSServer, "host resolver"))
	if s.Daemon.Running {
		fmt.Fprintf(tw, "daemon\trunning; %s; %s\n", s.Daemon.Healthz, s.Daemon.Readyz)
	} else {
		fmt.Fprintf(tw, "daemon\tnot running (no answer on its local endpoints)\n")
	}
	fmt.Fprintf(tw, "services\t%d assigned\n", len(s.Services))
	for _, svc := range s.Services {
		fmt.Fprintf(tw, "  %s\t%s:%d/%s\n", svc.Name, svc.Address, svc.Port, svc.Protocol)
	}
	return tw.Flush()
}

// learnedOr shows the list the controller pushed, if any, beside the enrolled one.
func learnedOr(learned, enrolled []string, relation string) string {
	if len(learned) == 0 {
		return orDash(strings.Join(enrolled, ", "))
	}
	return fmt.Sprintf("%s (learned from the controller; %s: %s)", strings.Join(learned, ", "), relation, orDash(strings.Join(enrolled, ", ")))
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDash(s string) string { return or(s, "-") }
