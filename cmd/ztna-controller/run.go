package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	// YAML because operators hand-write this file and want comments; go.yaml.in/yaml/v3 is
	// the maintained fork already in go.mod, and its KnownFields rejects misspelt keys.
	"go.yaml.in/yaml/v3"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/pki"
)

// fileConfig is the `run --config` file. Keep configReference in sync (a test checks).
type fileConfig struct {
	Name    string `yaml:"name"`
	DataDir string `yaml:"data_dir"`
	Listen  struct {
		Edge    string `yaml:"edge"`
		Control string `yaml:"control"`
		Fabric  string `yaml:"fabric"`
		Metrics string `yaml:"metrics"`
	} `yaml:"listen"`
	Advertise struct {
		Edge    []string `yaml:"edge"`
		Control []string `yaml:"control"`
		Fabric  []string `yaml:"fabric"`
	} `yaml:"advertise"`
	Hosts []string `yaml:"hosts"`
	Store struct {
		Driver       string `yaml:"driver"`
		DSN          string `yaml:"dsn"`
		CASecretFile string `yaml:"ca_secret_file"`
	} `yaml:"store"`
	TokenFile         string        `yaml:"token_file"`
	AttestationKeys   []string      `yaml:"attestation_keys"`
	CertLifetime      time.Duration `yaml:"cert_lifetime"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	FabricRecords     string        `yaml:"fabric_records"`
	FabricLimits      hub.Limits    `yaml:"fabric_limits"`
	Fabric            struct {
		LinkTimeout time.Duration `yaml:"link_timeout"`
	} `yaml:"fabric"`
	Log struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
}

// configReference documents every key of the config file, with its default.
const configReference = `Configuration keys (YAML):

  name: controller              # names the controller in its certificates (ztna://controller/<name>)
  data_dir: /var/lib/ztna-controller
                                # holds the network CA (ca.pem, ca-key.pem 0600) and, by default, the store
  listen:
    edge: ":443"                # edge API: enrolment + management REST (HTTPS)
    control: ":6262"            # control channel (mutual TLS, routers dial in)
    fabric: ":80"               # fabric of the embedded hub (mutual TLS despite the number)
    metrics: "127.0.0.1:9262"   # Prometheus /metrics, plain HTTP; "" turns it off
  advertise:                    # what registration keys and enrolment responses hand out, and
                                # (control) what connected routers are told and keep: with
                                # replicas, list every replica (routers fail over in turn; routers
                                # enrolled earlier learn a new list on their next connection)
    edge: ["https://ctrl.example.com"]      # default: https://<hosts[0]>:<edge port>
    control: ["ctrl.example.com:6262"]      # default: <hosts[0]>:<control port>
    fabric: ["ctrl.example.com:80"]         # default: <hosts[0]>:<fabric port>; list every hub:
                                            # the embedded one, then standalone hubs (ztna-router run --hub)
  hosts: ["ctrl.example.com"]   # DNS names / IPs in the controller's server certificates (required)
  store:
    driver: sqlite              # sqlite (embedded, one controller) or postgres (replicas share one database)
    dsn: ""                     # sqlite: database file (default <data_dir>/ztna.db)
                                # postgres (required): e.g. "postgres://ztna@db.internal:5432/ztna?sslmode=verify-full";
                                # keep the password out of this file: PGPASSWORD or ~/.pgpass work
    ca_secret_file: ""          # postgres (required): file (0600) with a secret of >= 32 characters, the same
                                # on every replica (e.g. openssl rand -base64 48); it seals the network CA key,
                                # which then lives in the database (created by the first replica), not in data_dir
  token_file: /etc/ztna-controller/admin-token
                                # admin bearer token of the management API (required, >= 16 chars)
  attestation_keys: []          # PEM files of trusted image build keys (Ed25519 PUBLIC KEY): routers whose
                                # image attestation one of them signed are reported attestation_verified
  cert_lifetime: 24h            # lifetime of router and identity certificates (renewed over control)
  heartbeat_interval: 1s        # how often routers report on the control channel
  fabric:
    link_timeout: 10s           # embedded hub: how long a router's or identity's link may stay silent
                                # before it is closed and its streams are cut (new dials avoid it
                                # after 1.5 s); routers and standalone hubs: ztna-router run --link-timeout
  fabric_records: ""            # what carries the embedded hub's TLS records: tlsrecord or crypto-tls
                                # (crypto/tls's own, the way back); default $ZTNA_FABRIC_RECORDS, else tlsrecord
  fabric_limits:                # what one client identity can make the embedded hub hold; each
                                # refusal is a "limit reached" answer naming the key, counted in
                                # ztna_hub_limit_refusals_total{limit=<key>}
    streams_per_link: 8192      # streams open on one client link (a tunnel's connections share one)
    streams_per_identity: 16384 # streams open across all of an identity's links
    setups_per_link: 128        # streams of one link in setup (request, policy, router) at once
    request_timeout: 5s         # how long a new stream may take to send its request
    watches_per_link: 4         # service-list watches open on one link
    links_per_identity: 8       # links one identity may have up at once
    stream_opens_per_second: 5000 # streams one identity may open per second, across its links
    stream_open_burst: 2000     # streams it may open at once before that rate paces it (its links
                                # are then read no faster: pacing costs the hub nothing)
    refusal_log_interval: 10s   # an identity's refusals: the first logged at once, the rest
                                # summarised with counts once per interval
    legacy_peers: false         # let routers and identities that speak only ztna-fabric/1 (before
                                # the per-link memory budget) link, 8 streams a link at most; off,
                                # they are refused naming this key (a setting for an upgrade's time)
  log:
    format: json                # json or text
    level: info                 # debug, info, warn or error
`

func defaultFileConfig() fileConfig {
	var c fileConfig
	c.Name = "controller"
	c.DataDir = "/var/lib/ztna-controller"
	c.Listen.Edge, c.Listen.Control, c.Listen.Fabric, c.Listen.Metrics = ":443", ":6262", ":80", "127.0.0.1:9262"
	c.Store.Driver = driverSQLite
	c.TokenFile = "/etc/ztna-controller/admin-token"
	c.CertLifetime = pki.DefaultCertLifetime
	c.HeartbeatInterval = time.Second
	c.Fabric.LinkTimeout = fabric.DefaultKeepaliveTimeout
	c.FabricLimits = hub.DefaultLimits()
	c.Log.Format, c.Log.Level = "json", "info"
	return c
}

func loadFileConfig(path string) (fileConfig, error) {
	c := defaultFileConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
		return c, fmt.Errorf("%w: config %s: %v (see ztna-controller run --help for the keys)", errUsage, path, err)
	}
	return c, c.validate()
}

func (c *fileConfig) validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for key, addr := range map[string]string{"listen.edge": c.Listen.Edge, "listen.control": c.Listen.Control, "listen.fabric": c.Listen.Fabric} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s: %q is not host:port (e.g. \":443\")", key, addr)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen.Metrics); c.Listen.Metrics != "" && err != nil {
		add("listen.metrics: %q is not host:port (e.g. \"127.0.0.1:9262\"; \"\" turns metrics off)", c.Listen.Metrics)
	}
	if c.FabricRecords != "" {
		if _, err := fabric.ParseRecords(c.FabricRecords); err != nil {
			add("fabric_records: %v", err)
		}
	}
	switch c.Store.Driver {
	case driverSQLite:
		if c.Store.CASecretFile != "" {
			add("store.ca_secret_file: only used with driver postgres (SQLite keeps the CA in data_dir)")
		}
	case driverPostgres:
		if c.Store.DSN == "" {
			add("store.dsn: name the PostgreSQL database, e.g. \"postgres://ztna@db.internal:5432/ztna?sslmode=verify-full\"")
		}
		if c.Store.CASecretFile == "" {
			add("store.ca_secret_file: name a file (0600) holding the secret, shared by all replicas, that seals the network CA key")
		}
	default:
		add("store.driver: %q is not a store; use sqlite or postgres", c.Store.Driver)
	}
	if len(c.Hosts) == 0 {
		add("hosts: name at least one DNS name or IP of this controller (it goes into its certificates and, by default, into registration keys)")
	}
	if c.CertLifetime < time.Second {
		add("cert_lifetime: %v is too short; use at least 1s (default 24h)", c.CertLifetime)
	}
	if c.HeartbeatInterval < 100*time.Millisecond {
		add("heartbeat_interval: %v is too short; use at least 100ms", c.HeartbeatInterval)
	}
	if err := fabric.CheckLinkTimeout("fabric.link_timeout:", c.Fabric.LinkTimeout); err != nil {
		add("%v", err)
	}
	if err := c.FabricLimits.Validate(); err != nil {
		add("fabric_limits.%v", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: bad config:\n  %s", errUsage, strings.Join(problems, "\n  "))
	}
	return nil
}

// endpoints returns the advertised endpoints, defaulting to hosts[0] with the listen ports.
func (c *fileConfig) endpoints() edgeapi.Endpoints {
	e := edgeapi.Endpoints{Edge: c.Advertise.Edge, Control: c.Advertise.Control, Fabric: c.Advertise.Fabric}
	h := c.Hosts[0]
	if len(e.Edge) == 0 {
		e.Edge = []string{"https://" + net.JoinHostPort(h, portOf(c.Listen.Edge))}
	}
	if len(e.Control) == 0 {
		e.Control = []string{net.JoinHostPort(h, portOf(c.Listen.Control))}
	}
	if len(e.Fabric) == 0 {
		e.Fabric = []string{net.JoinHostPort(h, portOf(c.Listen.Fabric))}
	}
	return e
}

func runCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run a production controller from a configuration file",
		Long: `run starts the controller described by a YAML configuration file. Listeners default
to 443 (edge API), 6262 (control channel) and 80 (fabric). The CA is created in data_dir on
the first start and kept afterwards. With store.driver postgres, several controllers (replicas)
share one database: the CA is kept there, sealed with store.ca_secret_file, and a change made
through any replica reaches the routers connected to every other.

` + configReference,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fc, err := loadFileConfig(configPath)
			if err != nil {
				return err
			}
			logger, err := newLogger(cmd.ErrOrStderr(), fc.Log.Format, fc.Log.Level)
			if err != nil {
				return err
			}
			token, err := readToken(fc.TokenFile)
			if err != nil {
				return err
			}
			attKeys, err := loadAttestationKeys(fc.AttestationKeys)
			if err != nil {
				return fmt.Errorf("%w: attestation_keys: %w", errUsage, err)
			}
			if err := os.MkdirAll(fc.DataDir, 0o700); err != nil {
				return fmt.Errorf("create data_dir: %w", err)
			}
			sc := storeConfig{driver: fc.Store.Driver, dsn: fc.Store.DSN, caSecretFile: fc.Store.CASecretFile}
			if sc.driver == driverSQLite && sc.dsn == "" {
				sc.dsn = filepath.Join(fc.DataDir, devStoreFile)
			}
			s := settings{
				name: fc.Name, dataDir: fc.DataDir, store: sc, token: token,
				listen: map[controller.Plane]string{
					controller.PlaneEdge: fc.Listen.Edge, controller.PlaneControl: fc.Listen.Control, controller.PlaneFabric: fc.Listen.Fabric,
					controller.PlaneMetrics: fc.Listen.Metrics,
				},
				advertise: fc.endpoints(), hosts: fc.Hosts, certLifetime: fc.CertLifetime, attestationKeys: attKeys,
				heartbeatInterval: fc.HeartbeatInterval, linkTimeout: fc.Fabric.LinkTimeout, fabricRecords: fabric.Records(fc.FabricRecords),
				fabricLimits: fc.FabricLimits, logger: logger,
			}
			c, done, err := start(cmd.Context(), s)
			if err != nil {
				return err
			}
			logger.Info("controller started", "edge", s.advertise.Edge, "control", s.advertise.Control, "fabric", s.advertise.Fabric, "ca_fingerprint", c.CA.Fingerprint())
			return <-done
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file (keys below)")
	cmd.MarkFlagRequired("config")
	return cmd
}
