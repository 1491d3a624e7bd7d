//go:generate go tool -modfile=../../../tools/go.mod packer-sdc struct-markdown

// Package clouds holds the cloud API settings the ztna Packer components share (credentials
// profile or token, endpoint overrides) and turns them into the drivers of cloud/aws and
// cloud/gcp.
package clouds

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/ztna/ztna/cloud/aws"
	"github.com/ztna/ztna/cloud/gcp"
)

// Access is squashed into the components' configs: the settings of the cloud API calls they make.
type Access struct {
	// Named profile from the shared AWS config. Default: the standard credential chain
	// (environment, shared config, instance role).
	AWSProfile string `mapstructure:"aws_profile"`
	// EC2 endpoint URL, for VPC endpoints. Default: the region's public endpoint.
	AWSEndpoint string `mapstructure:"aws_endpoint"`
	// GCP project the API calls are made in.
	GCPProject string `mapstructure:"gcp_project"`
	// Compute Engine endpoint URL, for Private Service Connect. Default: the public endpoint.
	GCPEndpoint string `mapstructure:"gcp_endpoint"`
	// OAuth2 access token (e.g. `gcloud auth print-access-token`). Default: Application Default
	// Credentials. Declare the variable that carries it sensitive.
	GCPAccessToken string `mapstructure:"gcp_access_token"`
}

// Validate checks the endpoint URLs.
func (a Access) Validate() error {
	var errs []error
	for name, v := range map[string]string{"aws_endpoint": a.AWSEndpoint, "gcp_endpoint": a.GCPEndpoint} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: must be an http(s):// URL", name, v))
		}
	}
	return errors.Join(errs...)
}

// AWS returns an EC2 driver for region.
func (a Access) AWS(ctx context.Context, region string) (*aws.Driver, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if a.AWSProfile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(a.AWSProfile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: loading credentials: %w", err)
	}
	return aws.NewFromConfig(cfg, aws.Options{Region: region, Endpoint: a.AWSEndpoint}), nil
}

// GCP returns a Compute Engine driver for project.
func (a Access) GCP(ctx context.Context, project string) (*gcp.Driver, error) {
	var copts []option.ClientOption
	if a.GCPAccessToken != "" {
		copts = append(copts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: a.GCPAccessToken})))
	}
	return gcp.New(ctx, gcp.Options{Project: project, Endpoint: a.GCPEndpoint, ClientOptions: copts})
}
