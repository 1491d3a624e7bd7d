// Package gcp is the Google Compute Engine driver for router hosts and router images
// (cloud.google.com/go/compute, REST transport). A router host is one instance carrying a
// network tag, plus VPC firewall rules on that tag: egress allows for the allowlist, a deny-all
// egress rule behind them, and a deny-all ingress rule ahead of every other rule. The
// registration key travels in instance metadata. The image operations (Debian 12 family, image
// from a source image) serve the Packer plugin.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"github.com/ztna/ztna/cloud"
	"google.golang.org/api/option"
)

// Options configures a driver.
type Options struct {
	// Project is the project hosts, firewall rules and images live in (required).
	Project string
	// Zone places router hosts (required by Create), for example europe-west1-b.
	Zone string
	// Network is the VPC network name or URL; default "default".
	Network string
	// Subnetwork is the subnetwork name or URL; empty uses the network's subnet in the region
	// (auto-mode networks).
	Subnetwork string
	// AssignPublicIP gives router hosts an external address, for networks without Cloud NAT.
	AssignPublicIP bool
	// Endpoint overrides the Compute Engine endpoint (a fake in tests, a private endpoint).
	Endpoint string
	// ClientOptions are passed to every client (credentials, HTTP client); without them
	// Application Default Credentials are used.
	ClientOptions []option.ClientOption
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
	// Timeout bounds each long-running operation; default 15 min.
	Timeout time.Duration
}

// Driver manages router hosts and images in one project.
type Driver struct {
	instances *compute.InstancesClient
	firewalls *compute.FirewallsClient
	images    *compute.ImagesClient
	opts      Options
	log       *slog.Logger
}

// New creates the REST clients.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Project == "" {
		return nil, errors.New("gcp: project is empty: set the project id")
	}
	if opts.Network == "" {
		opts.Network = "default"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Minute
	}
	copts := opts.ClientOptions
	if opts.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(opts.Endpoint))
	}
	d := &Driver{opts: opts, log: opts.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.instances, err = compute.NewInstancesRESTClient(ctx, copts...); err != nil {
		return nil, fmt.Errorf("gcp: instances client: %w", err)
	}
	if d.firewalls, err = compute.NewFirewallsRESTClient(ctx, copts...); err != nil {
		return nil, fmt.Errorf("gcp: firewalls client: %w", err)
	}
	if d.images, err = compute.NewImagesRESTClient(ctx, copts...); err != nil {
		return nil, fmt.Errorf("gcp: images client: %w", err)
	}
	return d, nil
}

// Close releases the clients' connections.
func (d *Driver) Close() error {
	return errors.Join(d.instances.Close(), d.firewalls.Close(), d.images.Close())
}

// networkURL turns a network name into the partial URL the API accepts; URLs pass through.
func (d *Driver) networkURL() string {
	if strings.Contains(d.opts.Network, "/") {
		return d.opts.Network
	}
	return fmt.Sprintf("projects/%s/global/networks/%s", d.opts.Project, d.opts.Network)
}

func (d *Driver) subnetworkURL() string {
	if d.opts.Subnetwork == "" || strings.Contains(d.opts.Subnetwork, "/") {
		return d.opts.Subnetwork
	}
	return fmt.Sprintf("projects/%s/regions/%s/subnetworks/%s", d.opts.Project, cloud.GCPZoneRegion(d.opts.Zone), d.opts.Subnetwork)
}

// last returns the last path segment of a resource URL.
func last(url string) string { return url[strings.LastIndex(url, "/")+1:] }

func (d *Driver) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.Timeout)
}

// wait waits for a long-running operation and turns an operation error (quota, unknown
// subnetwork, ...) into a cloud.APIError. A failed operation with no HTTP error status reports
// success from Wait, so the operation's error field is checked as well.
func (d *Driver) wait(ctx context.Context, op *compute.Operation, what string) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	err := op.Wait(ctx)
	if e := op.Proto().GetError(); e != nil && len(e.GetErrors()) > 0 {
		first := e.GetErrors()[0]
		return d.apiErrorFrom(what, first.GetCode(), first.GetMessage(), err)
	}
	if err != nil {
		return d.apiError(what, err)
	}
	return nil
}
