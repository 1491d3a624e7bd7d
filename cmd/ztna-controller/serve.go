package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/embeddedhub"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/hub"
	"github.com/ztna/ztna/internal/logging"
)

// settings is what dev and run agree on after reading flags or the config file.
type settings struct {
	name              string
	dataDir           string // CA files (SQLite store)
	store             storeConfig
	token             string
	listen            map[controller.Plane]string
	advertise         edgeapi.Endpoints
	hosts             []string
	certLifetime      time.Duration
	attestationKeys   control.TrustedKeys
	heartbeatInterval time.Duration
	linkTimeout       time.Duration // the embedded hub's; zero: fabric's default
	fabricRecords     fabric.Records
	fabricLimits      hub.Limits
	logger            *slog.Logger
}

// start opens the store, assembles the controller, attaches the components and starts
// listening. The returned channel yields Run's result.
func start(ctx context.Context, s settings) (*controller.Controller, <-chan error, error) {
	st, ca, err := openStore(ctx, s.store, s.logger)
	if err != nil {
		return nil, nil, err
	}
	c, err := controller.New(controller.Config{
		CADir: s.dataDir, CA: ca, Name: s.name, Store: st, Token: s.token, Listen: s.listen,
		Advertise: s.advertise, Hosts: s.hosts, CertLifetime: s.certLifetime, AttestationKeys: s.attestationKeys, Logger: s.logger,
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	attachComponents(c, s)
	done := make(chan error, 1)
	go func() {
		err := c.Run(ctx)
		st.Close()
		done <- err
	}()
	return c, done, nil
}

// attachComponents mounts every plane's component.
func attachComponents(c *controller.Controller, s settings) {
	// The embedded hub's snapshot serves the standalone hubs too: one build per fold window.
	published := &embeddedhub.Published{}
	ctlServer := controlserver.New(controlserver.Config{
		Backend:           c.ControlBackend(),
		Cert:              c.ControllerCert,
		CA:                c.CA.Cert,
		HeartbeatInterval: s.heartbeatInterval,
		Hubs:              &embeddedhub.Backend{Store: c.Store, CA: c.CA, Lifetime: c.CertLifetime(), Published: published},
		Fabric:            s.advertise.Fabric,
		Control:           s.advertise.Control,
		Logger:            s.logger.With("plane", "control"),
	})
	published.Watch(ctlServer.PokeHubs)
	c.Attach(controller.PlaneControl, ctlServer)
	c.Attach(controller.PlaneFabric, embeddedhub.New(embeddedhub.Config{
		Store: c.Store, Cert: c.HubCert, CA: c.CA.Cert, LinkTimeout: s.linkTimeout, Metrics: c.Registry, Records: s.fabricRecords, Limits: s.fabricLimits,
		Logger: s.logger.With("plane", "fabric"), Publish: published,
	}))
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	l, err := logging.New(w, format, level)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return l, nil
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}

func readToken(path string) (string, error) { return readSecretFile("token file", path, 16) }

// readSecretFile reads a secret that only its owner may read, of at least minLen bytes.
func readSecretFile(what, path string, minLen int) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s %s has mode %v: it must be readable by its owner only (chmod 600)", errUsage, what, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < minLen {
		return "", fmt.Errorf("%w: %s %s must hold a secret of at least %d characters", errUsage, what, path, minLen)
	}
	return secret, nil
}

// loadAttestationKeys reads the trusted image build keys from PEM files.
func loadAttestationKeys(files []string) (control.TrustedKeys, error) {
	keys := control.TrustedKeys{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		k, err := control.ParseTrustedKeys(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		maps.Copy(keys, k)
	}
	return keys, nil
}
