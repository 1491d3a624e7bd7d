// Package aws is the AWS platform driver for router hosts and router images (EC2 through
// aws-sdk-go-v2). A router host is one instance plus one security group that has no ingress
// rules and only the egress allowlist; the instance requires IMDSv2 and receives its
// registration key in user data. The image operations (latest Debian base image, copy, share)
// serve the Packer plugin.
package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/ztna/ztna/cloud"
)

// Options configures a driver.
type Options struct {
	// Region is the AWS region (required).
	Region string
	// Endpoint overrides the EC2 endpoint URL (a fake in tests, a VPC endpoint in production).
	Endpoint string
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
	// PollInterval between state checks while waiting; default 5 s.
	PollInterval time.Duration
	// Timeout bounds each wait (instance running/terminated, image available); default 15 min.
	Timeout time.Duration

	// SubnetID places router hosts: it chooses VPC and availability zone (required by Create).
	SubnetID string
	// AssignPublicIP gives router hosts a public address, for subnets without a NAT gateway.
	AssignPublicIP bool
	// SecurityGroupIDs are attached to router hosts beside the egress-only group the driver
	// creates (for example a group other rules reference); they must be in the subnet's VPC.
	SecurityGroupIDs []string
}

// Driver creates router hosts and manages images in one region.
type Driver struct {
	ec2    *ec2.Client
	region string
	log    *slog.Logger
	poll   time.Duration
	wait   time.Duration

	subnetID    string
	publicIP    bool
	extraGroups []string
}

// New loads credentials the standard way (environment, shared config, IMDS, SSO) and returns a
// driver for opts.Region.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Region == "" {
		return nil, errors.New("aws: region is empty: set the region (for example eu-west-1)")
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(opts.Region))
	if err != nil {
		return nil, fmt.Errorf("aws: load credentials: %w", err)
	}
	return NewFromConfig(cfg, opts), nil
}

// NewFromConfig returns a driver using an existing SDK configuration (credentials, HTTP client).
func NewFromConfig(cfg awssdk.Config, opts Options) *Driver {
	if opts.Region != "" {
		cfg.Region = opts.Region
	}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = awssdk.String(opts.Endpoint)
		}
	})
	d := &Driver{ec2: client, region: cfg.Region, log: opts.Logger, poll: opts.PollInterval, wait: opts.Timeout,
		subnetID: opts.SubnetID, publicIP: opts.AssignPublicIP, extraGroups: opts.SecurityGroupIDs}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.poll <= 0 {
		d.poll = 5 * time.Second
	}
	if d.wait <= 0 {
		d.wait = 15 * time.Minute
	}
	return d
}

// Region is the region the driver works in.
func (d *Driver) Region() string { return d.region }

func userData(key string) *string {
	return awssdk.String(base64.StdEncoding.EncodeToString(cloud.UserData(key)))
}
