package aws

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/ztna/ztna/cloud"
)

// apiError turns an EC2 failure into a cloud.APIError that says what to change.
func (d *Driver) apiError(op string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("aws %s: %w", op, err)
	}
	code := ae.ErrorCode()
	return &cloud.APIError{Cloud: "aws", Operation: op, Code: code, Message: ae.ErrorMessage(), Advice: d.advice(op, code), Err: err}
}

func (d *Driver) advice(op, code string) string {
	switch {
	case code == "UnauthorizedOperation" || code == "AuthFailure" || code == "AccessDenied" || strings.HasSuffix(code, "AccessDenied"):
		return fmt.Sprintf("the AWS credentials lack permission for ec2:%s: add it to the IAM policy of the caller", op)
	case code == "InstanceLimitExceeded" || code == "VcpuLimitExceeded" || code == "MaxSpotInstanceCountExceeded":
		return fmt.Sprintf("the EC2 quota of region %s is exhausted: request an increase in Service Quotas, delete unused instances, or choose a smaller size tier", d.region)
	case code == "InsufficientInstanceCapacity" || code == "Unsupported":
		return "this availability zone cannot run the instance type now: choose a subnet in another zone or another size tier / instance type"
	case code == "SecurityGroupLimitExceeded" || code == "RulesPerSecurityGroupLimitExceeded":
		return "too many security groups or egress rules: merge service targets into CIDR ranges, or raise the VPC quota"
	case strings.HasPrefix(code, "InvalidSubnetID") || strings.HasPrefix(code, "InvalidSubnet"):
		return fmt.Sprintf("check subnet_id: the subnet must exist in region %s and belong to this account", d.region)
	case strings.HasPrefix(code, "InvalidAMIID"):
		return fmt.Sprintf("check the image: the AMI must exist in region %s and be shared with this account (copy it with the ztna-catalog post-processor)", d.region)
	case code == "InvalidParameterValue" && op == "RunInstances":
		return "check instance_type and image: the type must exist in this region and match the image architecture"
	case code == "InvalidRequest" && op == "CopyImage":
		return "the source image's EBS snapshots are not shared with this account: the owning account must grant it createVolumePermission on them (ShareImage does; ztna-catalog promotion shares before it copies)"
	case code == "OperationNotPermitted" && op == "ModifySnapshotAttribute":
		return "the image's snapshots are encrypted with the AWS-managed key, which cannot be shared: bake the image with a customer-managed KMS key granted to the target account"
	case code == "RequestLimitExceeded" || code == "Throttling":
		return "the EC2 API is throttling requests: retry later"
	case code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken":
		return "the AWS credentials are invalid or expired: refresh them (aws sso login, new keys)"
	}
	return ""
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
