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

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
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
	// IAM role the AWS calls are made as: assumed through STS AssumeRole with the credentials
	// of aws_profile (or the standard chain), e.g. a role in another account that trusts the
	// caller's. Default: the credentials themselves.
	AWSAssumeRoleARN string `mapstructure:"aws_assume_role_arn"`
	// EC2 endpoint URL, for VPC endpoints. Default: the region's public endpoint.
	AWSEndpoint string `mapstructure:"aws_endpoint"`
	// STS endpoint URL (AssumeRole, GetCallerIdentity), for VPC endpoints. Default: the
	// region's public endpoint.
	AWSSTSEndpoint string `mapstructure:"aws_sts_endpoint"`
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
	if a.AWSAssumeRoleARN != "" {
		if err := aws.ValidateRoleARN(a.AWSAssumeRoleARN); err != nil {
			errs = append(errs, fmt.Errorf("aws_assume_role_arn: %w", err))
		}
	}
	for name, v := range map[string]string{"aws_endpoint": a.AWSEndpoint, "aws_sts_endpoint": a.AWSSTSEndpoint, "gcp_endpoint": a.GCPEndpoint} {
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
	cfg, err := a.awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return aws.NewFromConfig(cfg, aws.Options{Region: region, Endpoint: a.AWSEndpoint}), nil
}

// AWSWithAccount returns an EC2 driver for region and the id of the account its calls are made
// in (which the credentials, or the assumed role, belong to).
func (a Access) AWSWithAccount(ctx context.Context, region string) (*aws.Driver, string, error) {
	cfg, err := a.awsConfig(ctx, region)
	if err != nil {
		return nil, "", err
	}
	account, err := aws.CallerAccount(ctx, cfg, a.AWSSTSEndpoint)
	if err != nil {
		return nil, "", err
	}
	return aws.NewFromConfig(cfg, aws.Options{Region: region, Endpoint: a.AWSEndpoint}), account, nil
}

// awsSessionName names the STS sessions of the plugin in CloudTrail.
const awsSessionName = "ztna-packer"

func (a Access) awsConfig(ctx context.Context, region string) (awssdk.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if a.AWSProfile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(a.AWSProfile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("aws: loading credentials: %w", err)
	}
	if a.AWSAssumeRoleARN == "" {
		return cfg, nil
	}
	return aws.AssumeRole(cfg, a.AWSAssumeRoleARN, awsSessionName, a.AWSSTSEndpoint)
}

// GCP returns a Compute Engine driver for project.
func (a Access) GCP(ctx context.Context, project string) (*gcp.Driver, error) {
	var copts []option.ClientOption
	if a.GCPAccessToken != "" {
		copts = append(copts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: a.GCPAccessToken})))
	}
	return gcp.New(ctx, gcp.Options{Project: project, Endpoint: a.GCPEndpoint, ClientOptions: copts})
}
