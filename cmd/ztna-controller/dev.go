package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/pki"
)

// Files of a dev data directory.
const (
	devPortsFile = "dev-ports.json"
	devTokenFile = "admin-token"
	devStoreFile = "ztna.db"
	devEnvFile   = "ztna.env"
)

// devPorts are the loopback addresses a dev controller chose on its first start; a restart
// reuses them so that enrolled routers find it again.
type devPorts struct {
	Edge    string `json:"edge"`
	Control string `json:"control"`
	Fabric  string `json:"fabric"`
	Metrics string `json:"metrics"`
}

func devCommand() *cobra.Command {
	var (
		dataDir, edgeAddr, controlAddr, fabricAddr, metricsAddr, logFormat, logLevel string
		records                                                                      string
		certLifetime, heartbeat, linkTimeout                                         time.Duration
		hubs                                                                         []string
		attestationKeyFiles                                                          []string
		limits                                                                       = hub.DefaultLimits()
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Start a zero-config local controller on loopback",
		Long: `dev starts a controller for development and tests, with nothing to configure.

On its first start it creates, in --data-dir (made 0700, its files 0600, also when it exists): the network CA (ca.pem, ca-key.pem 0600), an
SQLite store (ztna.db), an admin token (admin-token, 0600), and picks free loopback ports for
the edge API, control channel, fabric and metrics (dev-ports.json). It writes ztna.env (0600) with
ZTNA_ADDR, ZTNA_TOKEN, ZTNA_CA_FINGERPRINT and ZTNA_CA_FILE, and prints the endpoints.
A later start with the same --data-dir keeps everything: CA, objects, token and ports.

  ztna-controller dev --data-dir /tmp/ztna
  set -a; . /tmp/ztna/ztna.env; set +a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fabric.CheckLinkTimeout("--link-timeout", linkTimeout); err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			logger, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			if _, err := fabric.ParseRecords(records); err != nil {
				return fmt.Errorf("%w: --fabric-records: %w", errUsage, err)
			}
			if err := limits.Validate(); err != nil {
				return fmt.Errorf("%w: --fabric-%s", errUsage, strings.ReplaceAll(err.Error(), "_", "-"))
			}
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			if err := privateDataDir(dir); err != nil {
				return err
			}
			ports, err := loadOrPickPorts(dir, devPorts{Edge: edgeAddr, Control: controlAddr, Fabric: fabricAddr, Metrics: metricsAddr})
			if err != nil {
				return err
			}
			token, err := loadOrCreateToken(filepath.Join(dir, devTokenFile))
			if err != nil {
				return err
			}
			attKeys, err := loadAttestationKeys(attestationKeyFiles)
			if err != nil {
				return fmt.Errorf("--attestation-key: %w", err)
			}
			edgeURL := "https://" + ports.Edge
			s := settings{
				name:    "dev",
				dataDir: dir, store: storeConfig{driver: driverSQLite, dsn: filepath.Join(dir, devStoreFile)}, token: token,
				listen: map[controller.Plane]string{
					controller.PlaneEdge: ports.Edge, controller.PlaneControl: ports.Control, controller.PlaneFabric: ports.Fabric,
					controller.PlaneMetrics: ports.Metrics,
				},
				advertise:         edgeapi.Endpoints{Edge: []string{edgeURL}, Control: []string{ports.Control}, Fabric: append([]string{ports.Fabric}, hubs...)},
				hosts:             []string{"127.0.0.1", "localhost"},
				certLifetime:      certLifetime,
				attestationKeys:   attKeys,
				heartbeatInterval: heartbeat,
				linkTimeout:       linkTimeout,
				fabricRecords:     fabric.Records(records),
				fabricLimits:      limits,
				logger:            logger,
			}
			c, done, err := start(cmd.Context(), s)
			if err != nil {
				return err
			}
			if c.Addr(controller.PlaneEdge) == nil {
				// Listening failed; Run says why. The usual cause is a second controller on the
				// same data dir, or another program on a kept port.
				return fmt.Errorf("%w (is another dev controller using %s? its ports are kept in %s; --edge-addr, --control-addr, --fabric-addr and --metrics-addr move them)",
					<-done, dir, filepath.Join(dir, devPortsFile))
			}
			env := fmt.Sprintf("ZTNA_ADDR=%s\nZTNA_TOKEN=%s\nZTNA_CA_FINGERPRINT=%s\nZTNA_CA_FILE=%s\nZTNA_CONTROL_ADDR=%s\nZTNA_FABRIC_ADDR=%s\n",
				edgeURL, token, c.CA.Fingerprint(), filepath.Join(dir, pki.CACertFile), ports.Control, ports.Fabric)
			if err := atomicfile.Write(filepath.Join(dir, devEnvFile), []byte(env), 0o600); err != nil {
				return err
			}
			// Again, for what the controller created since: ca.pem, the store's -wal and -shm.
			if err := tightenFiles(dir); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ztna dev controller ready\n")
			fmt.Fprintf(out, "  edge API     %s\n", edgeURL)
			for _, p := range []struct {
				plane controller.Plane
				addr  string
			}{{controller.PlaneControl, ports.Control}, {controller.PlaneFabric, ports.Fabric}} {
				state := "serving"
				if c.Addr(p.plane) == nil {
					state = "reserved (no component attached yet)"
				}
				fmt.Fprintf(out, "  %-12s %s  %s\n", p.plane, p.addr, state)
			}
			fmt.Fprintf(out, "  metrics      http://%s/metrics\n", ports.Metrics)
			fmt.Fprintf(out, "  CA           %s\n", c.CA.Fingerprint())
			fmt.Fprintf(out, "  env file     %s   (set -a; . %s; set +a)\n", filepath.Join(dir, devEnvFile), filepath.Join(dir, devEnvFile))
			return <-done
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", ".ztna-dev", "directory for the CA, store, token, ports and ztna.env")
	f.StringVar(&edgeAddr, "edge-addr", "", "edge API listen address (default: a free 127.0.0.1 port, kept across restarts)")
	f.StringVar(&controlAddr, "control-addr", "", "control channel listen address (default: a free 127.0.0.1 port, kept)")
	f.StringVar(&fabricAddr, "fabric-addr", "", "fabric (embedded hub) listen address (default: a free 127.0.0.1 port, kept)")
	f.StringSliceVar(&hubs, "hub", nil, "fabric address (host:port) of a standalone hub (ztna-router run --hub) to list to routers and identities after the embedded one; repeatable")
	f.StringVar(&metricsAddr, "metrics-addr", "", "Prometheus /metrics listen address (default: a free 127.0.0.1 port, kept)")
	f.DurationVar(&certLifetime, "cert-lifetime", pki.DefaultCertLifetime, "lifetime of router and identity certificates (e.g. 30s for renewal tests)")
	f.DurationVar(&linkTimeout, "link-timeout", fabric.DefaultKeepaliveTimeout, "embedded hub: how long a link may stay silent before it is closed and its streams are cut (run: fabric.link_timeout)")
	f.StringSliceVar(&attestationKeyFiles, "attestation-key", nil, "PEM file of a trusted image build key (Ed25519 PUBLIC KEY); routers whose attestation it signed are reported attestation_verified; repeatable")
	f.DurationVar(&heartbeat, "heartbeat-interval", time.Second, "how often routers send heartbeats on the control channel")
	f.StringVar(&records, "fabric-records", "", "what carries the embedded hub's TLS records: tlsrecord or crypto-tls (crypto/tls's own); default $"+fabric.RecordsEnv+", else tlsrecord")
	limits.RegisterFlags(f)
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// privateDataDir creates dir 0700, or makes an existing one 0700, and its files 0600: the
// directory holds the CA key, the admin token and the store with every object, and a dir
// created by hand (or by an earlier version) may be 0755 with 0644 files. The store file is
// created 0600 before SQLite opens it, because SQLite gives its -wal and -shm files the
// database file's permissions.
func privateDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("make data dir %s private: %w", dir, err)
	}
	db, err := os.OpenFile(filepath.Join(dir, devStoreFile), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create store file: %w", err)
	}
	db.Close()
	return tightenFiles(dir)
}

// tightenFiles makes every regular file directly in dir 0600 that is readable or writable by
// others.
func tightenFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile (SQLite's -shm at close)
		} else if err != nil {
			return err
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", e.Name(), err)
		}
	}
	return nil
}

// loadOrPickPorts returns the saved ports, filling (and saving) those not saved yet from
// the flags or from free loopback ports. A flag that contradicts a saved port wins and is
// saved: the operator asked for it.
func loadOrPickPorts(dir string, flags devPorts) (devPorts, error) {
	path := filepath.Join(dir, devPortsFile)
	var p devPorts
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &p); err != nil {
			return p, fmt.Errorf("%s is corrupt (%v); delete it to pick new ports", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return p, err
	}
	changed := false
	for _, f := range []struct {
		saved *string
		flag  string
	}{{&p.Edge, flags.Edge}, {&p.Control, flags.Control}, {&p.Fabric, flags.Fabric}, {&p.Metrics, flags.Metrics}} {
		if f.flag != "" && f.flag != *f.saved {
			*f.saved, changed = f.flag, true
		}
		if *f.saved == "" {
			addr, err := freeLoopbackAddr()
			if err != nil {
				return p, err
			}
			*f.saved, changed = addr, true
		}
	}
	if changed {
		b, _ := json.MarshalIndent(p, "", "  ")
		if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
			return p, err
		}
	}
	return p, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func loadOrCreateToken(path string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return readToken(path)
	}
	tok := "ztna_" + rand.Text() + rand.Text() // 2×130 random bits
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}
