package aws

import (
	"context"
	"fmt"
	"regexp"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// roleARNRE is an IAM role ARN: arn:<partition>:iam::<account>:role/<path/name>.
var roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)

// ValidateRoleARN says what is wrong with an IAM role ARN.
func ValidateRoleARN(arn string) error {
	if !roleARNRE.MatchString(arn) {
		return fmt.Errorf("%q is not an IAM role ARN: use arn:aws:iam::<12-digit account>:role/<name>", arn)
	}
	return nil
}

// AssumeRole returns cfg with credentials of roleARN, obtained through STS AssumeRole with cfg's
// own credentials and refreshed before they expire. stsEndpoint overrides the STS endpoint URL
// (a VPC endpoint, a fake); empty means the region's.
func AssumeRole(cfg awssdk.Config, roleARN, sessionName, stsEndpoint string) (awssdk.Config, error) {
	if err := ValidateRoleARN(roleARN); err != nil {
		return cfg, fmt.Errorf("aws: %w", err)
	}
	client := stsClient(cfg, stsEndpoint)
	out := cfg.Copy()
	out.Credentials = awssdk.NewCredentialsCache(stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = sessionName
	}))
	return out, nil
}

// CallerAccount returns the account id of cfg's credentials (STS GetCallerIdentity, which needs no
// IAM permission).
func CallerAccount(ctx context.Context, cfg awssdk.Config, stsEndpoint string) (string, error) {
	out, err := stsClient(cfg, stsEndpoint).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("aws: finding the account of the credentials (sts:GetCallerIdentity): %w", err)
	}
	return awssdk.ToString(out.Account), nil
}

func stsClient(cfg awssdk.Config, endpoint string) *sts.Client {
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if endpoint != "" {
			o.BaseEndpoint = awssdk.String(endpoint)
		}
	})
}
