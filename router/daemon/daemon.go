// Package daemon assembles a running router from its parts — identity, assigned targets, health
// checker, control channel, local endpoints — and supervises them: when one part fails for good,
// the router stops as a whole and says which part and why. Further parts (fabric links, hosting)
// join with Add.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/version"
	"github.com/ztna/ztna/router/controlclient"
	"github.com/ztna/ztna/router/health"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/localapi"
	"github.com/ztna/ztna/router/metrics"
	"github.com/ztna/ztna/router/resolve"
	"github.com/ztna/ztna/router/targets"
)

// Options configure a router.
type Options struct {
	StateDir        string
	Settings        Settings
	LocalAddr       string        // local endpoints; "" = localapi.DefaultAddr
	HealthInterval  time.Duration // between service health rounds; 0 = 10 s
	AttestationPath string        // "" = control.AttestationPath
	Logger          *slog.Logger
}

// Component is one long-running part of the router. Run returns when ctx ends (nil) or when
// the part cannot go on (an error that stops the router).
type Component interface {
	Run(ctx context.Context) error
}

type namedComponent struct {
	name string
	c    Component
}

// Router is an assembled router.
type Router struct {
	Identity *identity.Identity
	Targets  *targets.Set
	Resolver *net.Resolver
	// Dialer is the only way to reach customer targets: it refuses unassigned address:port pairs.
	Dialer   *targets.Dialer
	Health   *health.Checker
	Control  *controlclient.Client
	Metrics  *metrics.Router
	Registry *prometheus.Registry
	// Hubs are the fabric addresses of the hubs to link to at start: the controller's last list
	// (HubsFile), else the enrolled one. FollowHubs passes on the lists pushed later.
	Hubs []string

	log        *slog.Logger
	stateDir   string
	savedHubs  []string       // HubsFile's list; only the control channel's goroutine touches it after New
	followHubs func([]string) // FollowHubs
	components []namedComponent
}

// New loads the router's state and builds its parts.
func New(o Options) (*Router, error) {
	id, err := identity.Load(o.StateDir)
	if err != nil {
		return nil, err
	}
	res, err := resolve.New(o.Settings.DNSServer)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("router_id", id.ID())
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.SetCertExpiry(id.Leaf().NotAfter)

	set := targets.NewSet()
	if saved, found, err := targets.Load(o.StateDir); err != nil {
		log.Warn("ignoring the saved service assignment", "error", err)
	} else if found {
		// Host what we hosted before until the controller says otherwise (headless start).
		set.Replace(saved)
		m.SetAssigned(len(saved))
	}

	r := &Router{Identity: id, Targets: set, Resolver: res, Metrics: m, Registry: reg, log: log,
		Dialer: &targets.Dialer{Targets: set, Resolver: res}, Hubs: id.Config.Fabric, stateDir: o.StateDir}
	if saved, err := learnedHubs.load(o.StateDir, id.Config); err != nil {
		log.Warn("ignoring the saved hub list; linking to the enrolled hubs", "error", err)
	} else if saved != nil {
		// Hubs added since enrolment serve traffic also when the router starts with the
		// controller down (headless start).
		r.Hubs, r.savedHubs = saved, saved
	}
	r.Health = &health.Checker{Targets: set, Resolver: res, Interval: o.HealthInterval, Logger: log,
		OnResults: m.SetServiceHealth}
	endpoints := id.Config.Control
	if saved, err := learnedControl.load(o.StateDir, id.Config); err != nil {
		log.Warn("ignoring the saved controller endpoints; dialling the enrolled ones", "error", err)
	} else if saved != nil {
		// What the controller listed last, newer than enrolment (replicas added since).
		endpoints = saved
	}
	r.Control = &controlclient.Client{
		Endpoints: endpoints, Fallback: id.Config.Control, Credentials: id, Targets: set, Health: r.Health, Metrics: m,
		Logger: log.With("component", "control"), Hello: hello(o, log),
		OnAssignment: func(services []control.Service) {
			if err := targets.Save(o.StateDir, services); err != nil {
				log.Warn("cannot save the service assignment", "error", err)
			}
		},
		OnHubs: r.learnHubs,
		OnEndpoints: func(control []string) {
			if err := learnedControl.save(o.StateDir, id.Config, control); err != nil {
				log.Warn("cannot save the controller endpoints", "error", err)
			}
		},
	}
	local := &localapi.Server{Addr: o.LocalAddr, Status: r, Gatherer: reg, Logger: log}
	if local.Addr == "" {
		local.Addr = localapi.DefaultAddr
	}
	r.Add("control channel", r.Control)
	r.Add("health checks", r.Health)
	r.Add("local endpoints", local)
	return r, nil
}

func hello(o Options, log *slog.Logger) control.Hello {
	h := control.Hello{Version: version.Version, FailureDomain: o.Settings.FailureDomain}
	h.Hostname, _ = os.Hostname()
	path := o.AttestationPath
	if path == "" {
		path = control.AttestationPath
	}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		log.Warn("cannot read the image attestation", "path", path, "error", err)
	default:
		var a control.Attestation
		if err := json.Unmarshal(raw, &a); err != nil {
			log.Warn("ignoring a malformed image attestation", "path", path, "error", err)
		} else {
			h.Image = &a
		}
	}
	return h
}

// FollowHubs makes every hub list the controller pushes go to set once it is checked and saved
// (the fabric links follow it). Call before Run.
func (r *Router) FollowHubs(set func([]string)) { r.followHubs = set }

// learnHubs takes the hub list of a welcome: a list with an invalid address is ignored (the
// router keeps the hubs it has), a changed one is saved in HubsFile.
func (r *Router) learnHubs(pushed []string) {
	list, err := controlclient.ValidAddrs(learnedHubs.what, pushed)
	if err != nil {
		r.log.Warn("ignoring the controller's hub list; keeping the current one", "error", err)
		return
	}
	if !slices.Equal(list, r.savedHubs) {
		if err := learnedHubs.save(r.stateDir, r.Identity.Config, list); err != nil {
			r.log.Warn("cannot save the hub list", "error", err)
		} else {
			r.savedHubs = list
		}
	}
	if r.followHubs != nil {
		r.followHubs(list)
	}
}

// Add registers a component to run with the router (call before Run).
func (r *Router) Add(name string, c Component) {
	r.components = append(r.components, namedComponent{name, c})
}

// Connected reports whether the control channel is up (for /healthz).
func (r *Router) Connected() bool { return r.Control.Connected() }

// Ready reports whether the router can host traffic: a valid certificate and a service
// assignment, live or saved (for /readyz).
func (r *Router) Ready() error {
	if exp := r.Identity.Leaf().NotAfter; time.Now().After(exp) {
		return fmt.Errorf("certificate expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if !r.Targets.Loaded() {
		return errors.New("no service assignment yet")
	}
	return nil
}

// Run runs every component until ctx ends or one of them stops; then it stops the others and
// returns the first failure.
func (r *Router) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(r.components))
	for _, nc := range r.components {
		go func() { done <- result{nc.name, nc.c.Run(ctx)} }()
	}
	r.log.Info("router running", "version", version.Version, "components", len(r.components))
	var first error
	for range r.components {
		res := <-done
		if first == nil && ctx.Err() == nil {
			first = fmt.Errorf("%s stopped: %w", res.name, res.err)
			if res.err == nil {
				first = fmt.Errorf("%s stopped unexpectedly", res.name)
			}
			cancel()
		}
	}
	return first
}
