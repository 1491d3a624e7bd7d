package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/sizing"
)

// TagInstanceID on a security group names the instance it was created for, so Delete finds
// the group even after the instance is gone.
const TagInstanceID = "ztna-instance-id"

// SecurityGroupName is the name of a router host's security group.
func SecurityGroupName(host string) string { return "ztna-router-" + host }

// Create makes a security group (no ingress, egress allowlist only) and an instance of the
// spec's size in it, waits until the instance runs, and returns it. On failure it deletes what
// it created, so nothing is left half-made.
func (d *Driver) Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error) {
	if err := spec.Validate(); err != nil {
		return cloud.Host{}, err
	}
	if d.subnetID == "" {
		return cloud.Host{}, errors.New("aws: subnet_id is empty: set the subnet the router host goes in")
	}
	instanceType, diskGiB, err := spec.Size(sizing.AWS)
	if err != nil {
		return cloud.Host{}, err
	}
	subnet, err := d.subnet(ctx)
	if err != nil {
		return cloud.Host{}, err
	}
	rootDevice, err := d.rootDevice(ctx, spec.Image)
	if err != nil {
		return cloud.Host{}, err
	}
	if err := d.removeStaleGroup(ctx, spec.Name, *subnet.VpcId); err != nil {
		return cloud.Host{}, err
	}
	tags := ec2Tags(spec.AllTags(), spec.Name)
	sg, err := d.createGroup(ctx, spec, *subnet.VpcId, tags)
	if err != nil {
		return cloud.Host{}, err
	}
	d.log.DebugContext(ctx, "created security group", "group", sg, "host", spec.Name)
	id, err := d.runInstance(ctx, spec, instanceType, diskGiB, rootDevice, sg, tags)
	if err != nil {
		return cloud.Host{}, errors.Join(err, d.deleteGroups(ctx, []string{sg}))
	}
	if err := d.tagGroup(ctx, sg, id); err != nil {
		return cloud.Host{}, errors.Join(err, d.Delete(ctx, id))
	}
	d.log.DebugContext(ctx, "launched instance", "instance", id, "host", spec.Name, "type", instanceType)
	w := ec2.NewInstanceRunningWaiter(d.ec2, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay, o.MaxDelay = d.poll, d.poll })
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, d.wait); err != nil {
		return cloud.Host{}, errors.Join(fmt.Errorf("aws: instance %s did not reach running: %w", id, err), d.Delete(ctx, id))
	}
	return d.Read(ctx, id)
}

func (d *Driver) subnet(ctx context.Context) (types.Subnet, error) {
	out, err := d.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{d.subnetID}})
	if err != nil {
		return types.Subnet{}, d.apiError("DescribeSubnets", err)
	}
	if len(out.Subnets) == 0 {
		return types.Subnet{}, fmt.Errorf("aws: subnet %q does not exist in %s: check subnet_id and region", d.subnetID, d.region)
	}
	return out.Subnets[0], nil
}

// rootDevice checks the image exists and returns its root device name, needed to size the
// boot volume.
func (d *Driver) rootDevice(ctx context.Context, image string) (string, error) {
	if image == "" {
		return "", errors.New("aws: image is empty: set an AMI id (for example from the ztna_image data source)")
	}
	out, err := d.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{image}})
	if err != nil {
		return "", d.apiError("DescribeImages", err)
	}
	if len(out.Images) == 0 || out.Images[0].RootDeviceName == nil {
		return "", fmt.Errorf("aws: image %q does not exist in %s: bake it with the ztna Packer plugin or copy it to this region", image, d.region)
	}
	return *out.Images[0].RootDeviceName, nil
}

// removeStaleGroup deletes a group left by an earlier host of the same name (whose instance was
// deleted out of band), because group names are unique per VPC. A group still in use means a
// live host has this name.
func (d *Driver) removeStaleGroup(ctx context.Context, name, vpc string) error {
	out, err := d.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: awssdk.String("vpc-id"), Values: []string{vpc}},
		{Name: awssdk.String("group-name"), Values: []string{SecurityGroupName(name)}},
	}})
	if err != nil {
		return d.apiError("DescribeSecurityGroups", err)
	}
	for _, g := range out.SecurityGroups {
		if tagValue(g.Tags, cloud.TagManagedBy) != cloud.ManagedBy {
			return fmt.Errorf("aws: security group %s (%s) exists and is not managed by ztna: choose another router host name", SecurityGroupName(name), *g.GroupId)
		}
		if _, err := d.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
			if apiCode(err) == "DependencyViolation" {
				return fmt.Errorf("aws: a router host named %q already runs in VPC %s (security group %s is in use): choose another name", name, vpc, *g.GroupId)
			}
			return d.apiError("DeleteSecurityGroup", err)
		}
	}
	return nil
}

func (d *Driver) createGroup(ctx context.Context, spec cloud.HostSpec, vpc string, tags []types.Tag) (string, error) {
	out, err := d.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         awssdk.String(SecurityGroupName(spec.Name)),
		Description:       awssdk.String("ztna router host " + spec.Name + ": egress allowlist only, no ingress"),
		VpcId:             awssdk.String(vpc),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: tags}},
	})
	if err != nil {
		return "", d.apiError("CreateSecurityGroup", err)
	}
	sg := *out.GroupId
	if err := d.setEgress(ctx, sg, egressPermissions(spec.Egress)); err != nil {
		return "", errors.Join(err, d.deleteGroups(ctx, []string{sg}))
	}
	return sg, nil
}

// setEgress replaces the group's egress rules (at first the allow-all rule EC2 adds to every
// new group) with the allowlist. A new group has no ingress rules, and none are added.
func (d *Driver) setEgress(ctx context.Context, sg string, perms []types.IpPermission) error {
	out, err := d.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil {
		return d.apiError("DescribeSecurityGroups", err)
	}
	if len(out.SecurityGroups) == 1 && len(out.SecurityGroups[0].IpPermissionsEgress) > 0 {
		if _, err := d.ec2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{
			GroupId: awssdk.String(sg), IpPermissions: out.SecurityGroups[0].IpPermissionsEgress,
		}); err != nil {
			return d.apiError("RevokeSecurityGroupEgress", err)
		}
	}
	if _, err := d.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{
		GroupId: awssdk.String(sg), IpPermissions: perms,
	}); err != nil {
		return d.apiError("AuthorizeSecurityGroupEgress", err)
	}
	return nil
}

func (d *Driver) runInstance(ctx context.Context, spec cloud.HostSpec, instanceType string, diskGiB int, rootDevice, sg string, tags []types.Tag) (string, error) {
	out, err := d.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:      awssdk.String(spec.Image),
		InstanceType: types.InstanceType(instanceType),
		MinCount:     awssdk.Int32(1),
		MaxCount:     awssdk.Int32(1),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex:              awssdk.Int32(0),
			SubnetId:                 awssdk.String(d.subnetID),
			Groups:                   append([]string{sg}, d.extraGroups...),
			AssociatePublicIpAddress: awssdk.Bool(d.publicIP),
			DeleteOnTermination:      awssdk.Bool(true),
		}},
		// IMDSv2 only, and a hop limit of 1 so nothing forwarded through the host reaches the
		// metadata service holding the registration key.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:              types.HttpTokensStateRequired,
			HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: awssdk.Int32(1),
		},
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: awssdk.String(rootDevice),
			Ebs: &types.EbsBlockDevice{
				VolumeSize: awssdk.Int32(int32(diskGiB)), VolumeType: types.VolumeTypeGp3,
				Encrypted: awssdk.Bool(true), DeleteOnTermination: awssdk.Bool(true),
			},
		}},
		UserData: userData(spec.RegistrationKey),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
	})
	if err != nil {
		return "", d.apiError("RunInstances", err)
	}
	if len(out.Instances) != 1 {
		return "", fmt.Errorf("aws: RunInstances returned %d instances, want 1", len(out.Instances))
	}
	return *out.Instances[0].InstanceId, nil
}

func (d *Driver) tagGroup(ctx context.Context, sg, instance string) error {
	_, err := d.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{sg},
		Tags:      []types.Tag{{Key: awssdk.String(TagInstanceID), Value: awssdk.String(instance)}},
	})
	if err != nil {
		return d.apiError("CreateTags", err)
	}
	return nil
}

// Read returns the host, or an error wrapping cloud.ErrNotFound when the instance is gone or
// terminating (drift). Ingress rules found on its security group are reported as drift.
func (d *Driver) Read(ctx context.Context, id string) (cloud.Host, error) {
	inst, err := d.instance(ctx, id)
	if err != nil {
		return cloud.Host{}, err
	}
	if s := inst.State.Name; s == types.InstanceStateNameTerminated || s == types.InstanceStateNameShuttingDown {
		return cloud.Host{}, fmt.Errorf("aws: instance %s is %s: %w", id, s, cloud.ErrNotFound)
	}
	h := cloud.Host{
		ID:             id,
		Name:           tagValue(inst.Tags, cloud.TagRouterHost),
		InstanceType:   string(inst.InstanceType),
		PrivateAddress: awssdk.ToString(inst.PrivateIpAddress),
		Image:          awssdk.ToString(inst.ImageId),
		State:          string(inst.State.Name),
		FailureDomain:  cloud.FailureDomain{Cloud: string(sizing.AWS), Region: d.region},
		Tags:           cloud.UserTags(tagMap(inst.Tags), "Name"),
	}
	if inst.Placement != nil {
		h.FailureDomain.Zone = awssdk.ToString(inst.Placement.AvailabilityZone)
	}
	if inst.MetadataOptions != nil && inst.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
		h.Drift = append(h.Drift, fmt.Sprintf("instance %s allows IMDSv1 (HttpTokens=%s)", id, inst.MetadataOptions.HttpTokens))
	}
	groups, err := d.hostGroups(ctx, id)
	if err != nil {
		return cloud.Host{}, err
	}
	h.SecurityGroups = []string{}
	for _, gi := range inst.SecurityGroups {
		if g := awssdk.ToString(gi.GroupId); !slices.ContainsFunc(groups, func(o types.SecurityGroup) bool { return *o.GroupId == g }) {
			h.SecurityGroups = append(h.SecurityGroups, g)
		}
	}
	if len(groups) == 0 {
		h.Drift = append(h.Drift, fmt.Sprintf("security group %s of instance %s is missing", SecurityGroupName(h.Name), id))
	}
	for _, g := range groups {
		if n := len(g.IpPermissions); n > 0 {
			h.Drift = append(h.Drift, fmt.Sprintf("security group %s has %d ingress rule(s); router hosts allow no ingress", *g.GroupId, n))
		}
		if !slices.ContainsFunc(inst.SecurityGroups, func(gi types.GroupIdentifier) bool { return awssdk.ToString(gi.GroupId) == *g.GroupId }) {
			h.Drift = append(h.Drift, fmt.Sprintf("security group %s is detached from instance %s", *g.GroupId, id))
		}
	}
	return h, nil
}

func (d *Driver) instance(ctx context.Context, id string) (types.Instance, error) {
	out, err := d.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		if apiCode(err) == "InvalidInstanceID.NotFound" {
			return types.Instance{}, fmt.Errorf("aws: instance %s: %w", id, cloud.ErrNotFound)
		}
		return types.Instance{}, d.apiError("DescribeInstances", err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if awssdk.ToString(i.InstanceId) == id {
				return i, nil
			}
		}
	}
	return types.Instance{}, fmt.Errorf("aws: instance %s: %w", id, cloud.ErrNotFound)
}

// hostGroups finds the security groups created for an instance by their tag.
func (d *Driver) hostGroups(ctx context.Context, id string) ([]types.SecurityGroup, error) {
	out, err := d.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: awssdk.String("tag:" + TagInstanceID), Values: []string{id}},
		{Name: awssdk.String("tag:" + cloud.TagManagedBy), Values: []string{cloud.ManagedBy}},
	}})
	if err != nil {
		return nil, d.apiError("DescribeSecurityGroups", err)
	}
	return out.SecurityGroups, nil
}

// Delete terminates the instance (its network interface and volume go with it), waits until it
// is terminated and deletes its security group. Deleting a host that is already gone succeeds.
func (d *Driver) Delete(ctx context.Context, id string) error {
	groups, err := d.hostGroups(ctx, id)
	if err != nil {
		return err
	}
	if _, err := d.instance(ctx, id); err == nil {
		if _, err := d.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
			return d.apiError("TerminateInstances", err)
		}
		w := ec2.NewInstanceTerminatedWaiter(d.ec2, func(o *ec2.InstanceTerminatedWaiterOptions) { o.MinDelay, o.MaxDelay = d.poll, d.poll })
		if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, d.wait); err != nil && !errors.Is(err, cloud.ErrNotFound) && apiCode(err) != "InvalidInstanceID.NotFound" {
			return fmt.Errorf("aws: instance %s did not terminate: %w", id, err)
		}
	} else if !errors.Is(err, cloud.ErrNotFound) {
		return err
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = *g.GroupId
	}
	return d.deleteGroups(ctx, ids)
}

// deleteGroups deletes security groups, retrying while EC2 still detaches the terminated
// instance's network interface (DependencyViolation).
func (d *Driver) deleteGroups(ctx context.Context, ids []string) error {
	for _, sg := range ids {
		deadline := time.Now().Add(d.wait)
		for {
			_, err := d.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: awssdk.String(sg)})
			code := apiCode(err)
			if err == nil || code == "InvalidGroup.NotFound" {
				break
			}
			if code != "DependencyViolation" || time.Now().After(deadline) {
				return d.apiError("DeleteSecurityGroup", err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d.poll):
			}
		}
	}
	return nil
}

func ec2Tags(tags map[string]string, name string) []types.Tag {
	out := []types.Tag{{Key: awssdk.String("Name"), Value: awssdk.String(name)}}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.EqualFold(k, "Name") {
			continue
		}
		out = append(out, types.Tag{Key: awssdk.String(k), Value: awssdk.String(tags[k])})
	}
	return out
}

func tagMap(tags []types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	return out
}

// UpdateTags makes the user tags of the host tags, in place, on every object created with the
// host's tags: the instance, its EBS volumes and its security group. Tags no longer wanted
// are deleted (DeleteTags by key, so a value changed out of band goes too), then the wanted
// ones are written (CreateTags overwrites values); the ownership tags, Name and the security
// group's instance tag stay. EC2 reserves the aws: prefix, so those tags are left alone.
func (d *Driver) UpdateTags(ctx context.Context, id string, tags map[string]string) error {
	inst, err := d.instance(ctx, id)
	if err != nil {
		return err
	}
	name := tagValue(inst.Tags, cloud.TagRouterHost)
	if name == "" {
		return fmt.Errorf("aws: instance %s has no %s tag: it is not a ztna router host", id, cloud.TagRouterHost)
	}
	want := ec2Tags(cloud.HostSpec{Name: name, Tags: tags}.AllTags(), name)
	resources := []string{id}
	for _, b := range inst.BlockDeviceMappings {
		if b.Ebs != nil && b.Ebs.VolumeId != nil {
			resources = append(resources, *b.Ebs.VolumeId)
		}
	}
	groups, err := d.hostGroups(ctx, id)
	if err != nil {
		return err
	}
	for _, g := range groups {
		resources = append(resources, *g.GroupId)
	}
	keep := map[string]bool{TagInstanceID: true}
	for _, t := range want {
		keep[*t.Key] = true
	}
	var stale []types.Tag
	for _, t := range inst.Tags {
		if k := awssdk.ToString(t.Key); !keep[k] && !strings.HasPrefix(k, "aws:") {
			stale = append(stale, types.Tag{Key: t.Key})
		}
	}
	if len(stale) > 0 {
		if _, err := d.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: resources, Tags: stale}); err != nil {
			return d.apiError("DeleteTags", err)
		}
	}
	if _, err := d.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: resources, Tags: want}); err != nil {
		return d.apiError("CreateTags", err)
	}
	d.log.DebugContext(ctx, "updated tags", "instance", id, "resources", len(resources), "tags", len(want), "deleted", len(stale))
	return nil
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if awssdk.ToString(t.Key) == key {
			return awssdk.ToString(t.Value)
		}
	}
	return ""
}

// hostGroup is the one security group created for an instance.
func (d *Driver) hostGroup(ctx context.Context, id string) (types.SecurityGroup, error) {
	groups, err := d.hostGroups(ctx, id)
	if err != nil {
		return types.SecurityGroup{}, err
	}
	if len(groups) != 1 {
		return types.SecurityGroup{}, fmt.Errorf("aws: instance %s has %d ztna security groups, want 1: the host must be replaced", id, len(groups))
	}
	return groups[0], nil
}

// UpdateSecurityGroups makes extra the security groups attached to the instance beside its
// own egress-only group, in place (ModifyInstanceAttribute with the whole group set, which
// EC2 applies to the primary network interface without a restart).
func (d *Driver) UpdateSecurityGroups(ctx context.Context, id string, extra []string) error {
	g, err := d.hostGroup(ctx, id)
	if err != nil {
		return err
	}
	if _, err := d.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: awssdk.String(id), Groups: append([]string{*g.GroupId}, extra...),
	}); err != nil {
		return d.apiError("ModifyInstanceAttribute", err)
	}
	return nil
}

// UpdateEgress makes the egress rules of the host's security group the allowlist, in place:
// missing rules are authorised before extra ones are revoked, so an allowed destination is
// never cut off on the way. The instance is not touched.
func (d *Driver) UpdateEgress(ctx context.Context, id string, rules []egress.Rule) error {
	g, err := d.hostGroup(ctx, id)
	if err != nil {
		return err
	}
	add, remove := egressChanges(g.IpPermissionsEgress, rules)
	if len(add) > 0 {
		if _, err := d.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: add}); err != nil {
			return d.apiError("AuthorizeSecurityGroupEgress", err)
		}
	}
	if len(remove) > 0 {
		if _, err := d.ec2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: remove}); err != nil {
			return d.apiError("RevokeSecurityGroupEgress", err)
		}
	}
	d.log.DebugContext(ctx, "updated security group egress", "group", *g.GroupId, "authorized", len(add), "revoked", len(remove))
	return nil
}

// EgressDrift lists how the egress rules of the host's security group differ from the
// allowlist: rules it lacks, and every rule beyond it (an out-of-band allow-all included).
func (d *Driver) EgressDrift(ctx context.Context, id string, rules []egress.Rule) ([]string, error) {
	groups, err := d.hostGroups(ctx, id)
	if err != nil || len(groups) != 1 {
		return nil, err // Read reports a missing group
	}
	g := groups[0]
	return cloud.EgressDiff("security group "+*g.GroupId,
		entryKeys(egressEntries(egressPermissions(rules))), entryKeys(egressEntries(g.IpPermissionsEgress))), nil
}
