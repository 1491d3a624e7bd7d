package ec2fake

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

type handler func(s *Server, v url.Values) (any, *apiErr)

var handlers = map[string]handler{
	"DescribeSubnets":              (*Server).describeSubnets,
	"DescribeImages":               (*Server).describeImages,
	"DescribeSecurityGroups":       (*Server).describeSecurityGroups,
	"CreateSecurityGroup":          (*Server).createSecurityGroup,
	"RevokeSecurityGroupEgress":    (*Server).revokeEgress,
	"AuthorizeSecurityGroupEgress": (*Server).authorizeEgress,
	"DeleteSecurityGroup":          (*Server).deleteSecurityGroup,
	"RunInstances":                 (*Server).runInstances,
	"DescribeInstances":            (*Server).describeInstances,
	"TerminateInstances":           (*Server).terminateInstances,
	"CreateTags":                   (*Server).createTags,
	"DeleteTags":                   (*Server).deleteTags,
	"ModifyInstanceAttribute":      (*Server).modifyInstanceAttribute,
	"CopyImage":                    (*Server).copyImage,
	"ModifyImageAttribute":         (*Server).modifyImageAttribute,
}

// XML shapes of the responses (element names as in the EC2 API reference).

type tagX struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagsX(m map[string]string) []tagX {
	var out []tagX
	for k, v := range m {
		out = append(out, tagX{k, v})
	}
	slices.SortFunc(out, func(a, b tagX) int { return cmpString(a.Key, b.Key) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type subnetX struct {
	SubnetID string `xml:"subnetId"`
	VpcID    string `xml:"vpcId"`
	Zone     string `xml:"availabilityZone"`
	CIDR     string `xml:"cidrBlock"`
	State    string `xml:"state"`
}

type imageX struct {
	ImageID      string         `xml:"imageId"`
	Name         string         `xml:"name"`
	Owner        string         `xml:"imageOwnerId"`
	Created      string         `xml:"creationDate"`
	State        string         `xml:"imageState"`
	Architecture string         `xml:"architecture"`
	RootDevice   string         `xml:"rootDeviceName"`
	RootType     string         `xml:"rootDeviceType"`
	SourceRegion string         `xml:"sourceImageRegion,omitempty"`
	SourceImage  string         `xml:"sourceImageId,omitempty"`
	Public       bool           `xml:"isPublic"`
	Devices      []imageDeviceX `xml:"blockDeviceMapping>item"`
	Tags         []tagX         `xml:"tagSet>item"`
}

type imageDeviceX struct {
	DeviceName string `xml:"deviceName"`
	SnapshotID string `xml:"ebs>snapshotId"`
	VolumeGiB  int    `xml:"ebs>volumeSize"`
	Encrypted  bool   `xml:"ebs>encrypted"`
}

type rangeX struct {
	CIDR        string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type range6X struct {
	CIDR        string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

type permX struct {
	Protocol string    `xml:"ipProtocol"`
	From     *int      `xml:"fromPort,omitempty"`
	To       *int      `xml:"toPort,omitempty"`
	Ranges   []rangeX  `xml:"ipRanges>item"`
	Ranges6  []range6X `xml:"ipv6Ranges>item"`
}

type groupX struct {
	GroupID     string  `xml:"groupId"`
	GroupName   string  `xml:"groupName"`
	Description string  `xml:"groupDescription"`
	VpcID       string  `xml:"vpcId"`
	Ingress     []permX `xml:"ipPermissions>item"`
	Egress      []permX `xml:"ipPermissionsEgress>item"`
	Tags        []tagX  `xml:"tagSet>item"`
}

// returnX is the answer of calls that only say they succeeded.
type returnX struct {
	Return bool `xml:"return"`
}

type stateX struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type groupRefX struct {
	GroupID string `xml:"groupId"`
}

type instanceX struct {
	InstanceID   string      `xml:"instanceId"`
	ImageID      string      `xml:"imageId"`
	State        stateX      `xml:"instanceState"`
	PrivateIP    string      `xml:"privateIpAddress"`
	InstanceType string      `xml:"instanceType"`
	Zone         string      `xml:"placement>availabilityZone"`
	SubnetID     string      `xml:"subnetId"`
	VpcID        string      `xml:"vpcId"`
	Groups       []groupRefX `xml:"groupSet>item"`
	Tags         []tagX      `xml:"tagSet>item"`
	Devices      []deviceX   `xml:"blockDeviceMapping>item"`
	HTTPTokens   string      `xml:"metadataOptions>httpTokens"`
	HopLimit     int         `xml:"metadataOptions>httpPutResponseHopLimit"`
}

type deviceX struct {
	DeviceName string `xml:"deviceName"`
	VolumeID   string `xml:"ebs>volumeId"`
	Status     string `xml:"ebs>status"`
	OnDelete   bool   `xml:"ebs>deleteOnTermination"`
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func (i *Instance) x() instanceX {
	out := instanceX{
		InstanceID: i.ID, ImageID: i.ImageID, State: stateX{stateCodes[i.State], i.State}, PrivateIP: i.PrivateIP,
		InstanceType: i.Type, Zone: i.Zone, SubnetID: i.SubnetID, VpcID: i.VpcID, Tags: tagsX(i.Tags),
		HTTPTokens: i.HTTPTokens, HopLimit: i.HopLimit,
	}
	for _, g := range i.Groups {
		out.Groups = append(out.Groups, groupRefX{g})
	}
	if i.RootVolumeID != "" {
		out.Devices = []deviceX{{DeviceName: i.RootDevice, VolumeID: i.RootVolumeID, Status: "attached", OnDelete: true}}
	}
	return out
}

func (s *Server) imageX(img *Image) imageX {
	out := imageX{
		ImageID: img.ID, Name: img.Name, Owner: img.Owner, Created: img.Created, State: img.State,
		Architecture: img.Architecture, RootDevice: img.RootDevice, RootType: "ebs",
		SourceRegion: img.SourceRegion, SourceImage: img.SourceImageID, Public: img.Public, Tags: tagsX(img.Tags),
	}
	for i, id := range img.Snapshots {
		dev := img.RootDevice
		if i > 0 {
			dev = fmt.Sprintf("/dev/sd%c", 'a'+i)
		}
		sn := s.snapshots[id]
		out.Devices = append(out.Devices, imageDeviceX{DeviceName: dev, SnapshotID: id, VolumeGiB: sn.VolumeGiB, Encrypted: sn.Encrypted})
	}
	return out
}

func permsX(ps []Permission) []permX {
	var out []permX
	for _, p := range ps {
		px := permX{Protocol: p.Protocol}
		if p.Protocol != "-1" {
			px.From, px.To = &p.From, &p.To
		}
		for _, r := range p.Ranges {
			if bytes.ContainsRune([]byte(r.CIDR), ':') {
				px.Ranges6 = append(px.Ranges6, range6X(r))
			} else {
				px.Ranges = append(px.Ranges, rangeX(r))
			}
		}
		out = append(out, px)
	}
	return out
}

func (g *Group) x() groupX {
	return groupX{GroupID: g.ID, GroupName: g.Name, Description: g.Description, VpcID: g.VpcID,
		Ingress: permsX(g.Ingress), Egress: permsX(g.Egress), Tags: tagsX(g.Tags)}
}

func (s *Server) describeSubnets(v url.Values) (any, *apiErr) {
	type out struct {
		Subnets []subnetX `xml:"subnetSet>item"`
	}
	var o out
	for _, id := range list(v, "SubnetId") {
		sn, ok := s.subnets[id]
		if !ok {
			return nil, errf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
		o.Subnets = append(o.Subnets, subnetX{sn.ID, sn.VpcID, sn.Zone, sn.CIDR, "available"})
	}
	return o, nil
}

func (s *Server) describeImages(v url.Values) (any, *apiErr) {
	type out struct {
		Images []imageX `xml:"imagesSet>item"`
	}
	var o out
	images, err := describe(s.visibleImages(), list(v, "ImageId"), "InvalidAMIID.NotFound", "The image id '[%s]' does not exist")
	if err != nil {
		return nil, err
	}
	owners := list(v, "Owner")
	if i := slices.Index(owners, "self"); i >= 0 {
		owners[i] = s.caller
	}
	for _, img := range images {
		if len(owners) > 0 && !slices.Contains(owners, img.Owner) {
			continue
		}
		if !matchFilters(filters(v), img.Tags, map[string]string{"name": img.Name, "architecture": img.Architecture, "state": img.State}) {
			continue
		}
		o.Images = append(o.Images, s.imageX(img))
		// A copy becomes available after it was seen pending once.
		if img.State == "pending" {
			img.State = "available"
		}
	}
	return o, nil
}

// describe returns the items of m (keyed by id) whose ids are asked for, all when none are, in
// id order; an id m lacks is an error with code and a message of format with the id, as EC2's
// Describe calls answer.
func describe[T any](m map[string]*T, ids []string, code, format string) ([]*T, *apiErr) {
	for _, id := range ids {
		if _, ok := m[id]; !ok {
			return nil, errf(code, format, id)
		}
	}
	var out []*T
	for _, id := range slices.Sorted(maps.Keys(m)) {
		if len(ids) == 0 || slices.Contains(ids, id) {
			out = append(out, m[id])
		}
	}
	return out, nil
}

func matchFilters(fs []filter, tags map[string]string, fields map[string]string) bool {
	for _, f := range fs {
		if handled, ok := matchTags(f, tags); handled {
			if !ok {
				return false
			}
			continue
		}
		val, known := fields[f.name]
		if !known || !matchAny(f.values, val) {
			return false
		}
	}
	return true
}

func (s *Server) describeSecurityGroups(v url.Values) (any, *apiErr) {
	type out struct {
		Groups []groupX `xml:"securityGroupInfo>item"`
	}
	var o out
	groups, err := describe(s.groups, list(v, "GroupId"), "InvalidGroup.NotFound", "The security group '%s' does not exist")
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if !matchFilters(filters(v), g.Tags, map[string]string{"vpc-id": g.VpcID, "group-name": g.Name, "group-id": g.ID}) {
			continue
		}
		o.Groups = append(o.Groups, g.x())
	}
	return o, nil
}

func (s *Server) createSecurityGroup(v url.Values) (any, *apiErr) {
	name, vpc := v.Get("GroupName"), v.Get("VpcId")
	if name == "" || v.Get("GroupDescription") == "" {
		return nil, errf("MissingParameter", "GroupName and GroupDescription are required")
	}
	for _, g := range s.groups {
		if g.Name == name && g.VpcID == vpc {
			return nil, errf("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpc)
		}
	}
	g := &Group{
		ID: s.nextID("sg"), Name: name, Description: v.Get("GroupDescription"), VpcID: vpc,
		Tags: tagSpec(v, "security-group"),
		// EC2 gives every new VPC security group an allow-all egress rule.
		Egress: []Permission{{Protocol: "-1", Ranges: []Range{{CIDR: "0.0.0.0/0"}}}},
	}
	s.groups[g.ID] = g
	type out struct {
		GroupID string `xml:"groupId"`
	}
	return out{g.ID}, nil
}

func permissions(v url.Values) ([]Permission, *apiErr) {
	var out []Permission
	for _, m := range members(v, "IpPermissions") {
		p := Permission{Protocol: m.Get("IpProtocol")}
		if p.Protocol != "-1" {
			from, err1 := strconv.Atoi(m.Get("FromPort"))
			to, err2 := strconv.Atoi(m.Get("ToPort"))
			if err1 != nil || err2 != nil || from < 0 || to > 65535 || from > to {
				return nil, errf("InvalidParameterValue", "invalid port range %q-%q", m.Get("FromPort"), m.Get("ToPort"))
			}
			p.From, p.To = from, to
		}
		for _, r := range members(m, "IpRanges") {
			p.Ranges = append(p.Ranges, Range{r.Get("CidrIp"), r.Get("Description")})
		}
		for _, r := range members(m, "Ipv6Ranges") {
			p.Ranges = append(p.Ranges, Range{r.Get("CidrIpv6"), r.Get("Description")})
		}
		out = append(out, p)
	}
	return out, nil
}

// flat lists one entry per destination so duplicates and removals compare one rule at a time.
type flatRule struct {
	proto    string
	from, to int
	cidr     string
}

func flatten(ps []Permission) []flatRule {
	var out []flatRule
	for _, p := range ps {
		for _, r := range p.Ranges {
			out = append(out, flatRule{p.Protocol, p.From, p.To, r.CIDR})
		}
	}
	return out
}

// egressChange is the group and the permissions an Authorize/RevokeSecurityGroupEgress call names.
func (s *Server) egressChange(v url.Values) (*Group, []Permission, *apiErr) {
	g, err := s.group(v.Get("GroupId"))
	if err != nil {
		return nil, nil, err
	}
	perms, err := permissions(v)
	return g, perms, err
}

// group is security group id, or EC2's error for an unknown one.
func (s *Server) group(id string) (*Group, *apiErr) {
	g, ok := s.groups[id]
	if !ok {
		return nil, errf("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	return g, nil
}

func (s *Server) revokeEgress(v url.Values) (any, *apiErr) {
	g, perms, err := s.egressChange(v)
	if err != nil {
		return nil, err
	}
	for _, rm := range flatten(perms) {
		found := false
		for pi := range g.Egress {
			p := &g.Egress[pi]
			if p.Protocol != rm.proto || p.From != rm.from || p.To != rm.to {
				continue
			}
			before := len(p.Ranges)
			p.Ranges = slices.DeleteFunc(p.Ranges, func(r Range) bool { return r.CIDR == rm.cidr })
			found = found || len(p.Ranges) < before
		}
		if !found {
			return nil, errf("InvalidPermission.NotFound", "The specified rule does not exist in this security group")
		}
	}
	g.Egress = slices.DeleteFunc(g.Egress, func(p Permission) bool { return len(p.Ranges) == 0 })
	return returnX{true}, nil
}

func (s *Server) authorizeEgress(v url.Values) (any, *apiErr) {
	g, perms, err := s.egressChange(v)
	if err != nil {
		return nil, err
	}
	existing := flatten(g.Egress)
	for _, r := range flatten(perms) {
		if slices.Contains(existing, r) {
			return nil, errf("InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, from port: %d, to port: %d, ALLOW\" already exists", r.cidr, r.proto, r.from, r.to)
		}
		existing = append(existing, r)
	}
	if len(existing) > 60 {
		return nil, errf("RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per security group has been reached.")
	}
	g.Egress = append(g.Egress, perms...)
	return returnX{true}, nil
}

func (s *Server) deleteSecurityGroup(v url.Values) (any, *apiErr) {
	id := v.Get("GroupId")
	if _, err := s.group(id); err != nil {
		return nil, err
	}
	for _, i := range s.instances {
		if i.State != "terminated" && slices.Contains(i.Groups, id) {
			return nil, errf("DependencyViolation", "resource %s has a dependent object", id)
		}
	}
	delete(s.groups, id)
	type out struct {
		Return  bool   `xml:"return"`
		GroupID string `xml:"groupId"`
	}
	return out{true, id}, nil
}

var instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)

func (s *Server) runInstances(v url.Values) (any, *apiErr) {
	img, ok := s.images[v.Get("ImageId")]
	if !ok || !s.canLaunch(img) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", v.Get("ImageId"))
	}
	if !instanceTypeRE.MatchString(v.Get("InstanceType")) {
		return nil, errf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", v.Get("InstanceType"))
	}
	if v.Get("MinCount") != "1" || v.Get("MaxCount") != "1" {
		return nil, errf("InvalidParameterValue", "the fake launches exactly one instance")
	}
	subnetID, groups := v.Get("SubnetId"), list(v, "SecurityGroupId")
	publicIP := false
	if nis := members(v, "NetworkInterface"); len(nis) > 0 {
		subnetID, groups = nis[0].Get("SubnetId"), list(nis[0], "SecurityGroupId")
		publicIP = nis[0].Get("AssociatePublicIpAddress") == "true"
	}
	sn, ok := s.subnets[subnetID]
	if !ok {
		return nil, errf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
	}
	for _, g := range groups {
		if sg, ok := s.groups[g]; !ok || sg.VpcID != sn.VpcID {
			return nil, errf("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", g, sn.VpcID)
		}
	}
	ud, derr := base64.StdEncoding.DecodeString(v.Get("UserData"))
	if derr != nil {
		return nil, errf("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
	}
	s.seq++
	inst := &Instance{
		ID: fmt.Sprintf("i-%017x", s.seq), ImageID: img.ID, Type: v.Get("InstanceType"), SubnetID: sn.ID, VpcID: sn.VpcID,
		Zone: sn.Zone, PrivateIP: fmt.Sprintf("10.0.%d.%d", s.seq/250, s.seq%250+4), State: "pending", Groups: groups,
		UserData: string(ud), HTTPTokens: "optional", HopLimit: 1, PublicIP: publicIP, RootDevice: img.RootDevice,
		Tags: tagSpec(v, "instance"), VolumeTags: tagSpec(v, "volume"), RootVolumeID: fmt.Sprintf("vol-%017x", s.seq),
	}
	for _, tags := range []map[string]string{inst.Tags, inst.VolumeTags} {
		if err := checkTags(tags); err != nil {
			return nil, err
		}
	}
	if t := v.Get("MetadataOptions.HttpTokens"); t != "" {
		inst.HTTPTokens = t
	}
	if h, err := strconv.Atoi(v.Get("MetadataOptions.HttpPutResponseHopLimit")); err == nil {
		inst.HopLimit = h
	}
	for _, b := range members(v, "BlockDeviceMapping") {
		if b.Get("DeviceName") == img.RootDevice {
			inst.RootVolumeGiB, _ = strconv.Atoi(b.Get("Ebs.VolumeSize"))
			inst.RootEncrypted = b.Get("Ebs.Encrypted") == "true"
		}
	}
	s.instances[inst.ID] = inst
	type out struct {
		ReservationID string      `xml:"reservationId"`
		OwnerID       string      `xml:"ownerId"`
		Instances     []instanceX `xml:"instancesSet>item"`
	}
	return out{"r-" + inst.ID[2:], "123456789012", []instanceX{inst.x()}}, nil
}

func (s *Server) describeInstances(v url.Values) (any, *apiErr) {
	type reservation struct {
		ReservationID string      `xml:"reservationId"`
		Instances     []instanceX `xml:"instancesSet>item"`
	}
	type out struct {
		Reservations []reservation `xml:"reservationSet>item"`
	}
	var o out
	instances, err := describe(s.instances, list(v, "InstanceId"), "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist")
	if err != nil {
		return nil, err
	}
	for _, i := range instances {
		if !matchFilters(filters(v), i.Tags, map[string]string{"instance-state-name": i.State}) {
			continue
		}
		o.Reservations = append(o.Reservations, reservation{"r-" + i.ID[2:], []instanceX{i.x()}})
		// Transitions complete after the caller has seen the intermediate state once.
		switch i.State {
		case "pending":
			i.State = "running"
		case "shutting-down":
			i.State = "terminated"
		}
	}
	return o, nil
}

func (s *Server) terminateInstances(v url.Values) (any, *apiErr) {
	type change struct {
		InstanceID string `xml:"instanceId"`
		Current    stateX `xml:"currentState"`
		Previous   stateX `xml:"previousState"`
	}
	type out struct {
		Changes []change `xml:"instancesSet>item"`
	}
	var o out
	for _, id := range list(v, "InstanceId") {
		i, ok := s.instances[id]
		if !ok {
			return nil, errf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		prev := i.State
		if i.State != "terminated" {
			i.State = "shutting-down"
		}
		o.Changes = append(o.Changes, change{id, stateX{stateCodes[i.State], i.State}, stateX{stateCodes[prev], prev}})
	}
	return o, nil
}

// taggable returns the tags of the resource id names, or EC2's error for an unknown id.
func (s *Server) taggable(id string) (map[string]string, *apiErr) {
	switch {
	case s.groups[id] != nil:
		return s.groups[id].Tags, nil
	case s.instances[id] != nil:
		return s.instances[id].Tags, nil
	case s.images[id] != nil:
		return s.images[id].Tags, nil
	}
	for _, i := range s.instances {
		if i.RootVolumeID == id && i.State != "terminated" {
			return i.VolumeTags, nil
		}
	}
	return nil, errf("InvalidID", "The ID '%s' is not valid", id)
}

// maxTags is EC2's limit of user tags per resource.
const maxTags = 50

// checkTags applies EC2's tag rules: at most 50 per resource, keys of 1-128 characters not
// starting with the reserved aws: prefix, values of at most 256.
func checkTags(tags map[string]string) *apiErr {
	if len(tags) > maxTags {
		return errf("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
	}
	for k, v := range tags {
		switch {
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return errf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		case k == "" || len(k) > 128:
			return errf("InvalidParameterValue", "Tag key must be between 1 and 128 characters: %q", k)
		case len(v) > 256:
			return errf("InvalidParameterValue", "Tag value exceeds the maximum length of 256 characters")
		}
	}
	return nil
}

// createTags adds or overwrites tags; like EC2 it checks every resource before changing any.
func (s *Server) createTags(v url.Values) (any, *apiErr) {
	tags := tagsOf(v, "Tag")
	ids := list(v, "ResourceId")
	for _, id := range ids {
		target, err := s.taggable(id)
		if err != nil {
			return nil, err
		}
		merged := maps.Clone(target)
		maps.Copy(merged, tags)
		if err := checkTags(merged); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		target, _ := s.taggable(id)
		maps.Copy(target, tags)
	}
	return returnX{true}, nil
}

// deleteTags removes tags by key; a Tag.N.Value given removes the tag only while it has that
// value, and a key the resource lacks is no error, as on EC2.
func (s *Server) deleteTags(v url.Values) (any, *apiErr) {
	ids := list(v, "ResourceId")
	for _, id := range ids {
		if _, err := s.taggable(id); err != nil {
			return nil, err
		}
	}
	tags := members(v, "Tag")
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(t.Get("Key")), "aws:") {
			return nil, errf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	for _, id := range ids {
		target, _ := s.taggable(id)
		for _, t := range tags {
			val, has := t["Value"]
			if !has || (len(val) > 0 && target[t.Get("Key")] == val[0]) {
				delete(target, t.Get("Key"))
			}
		}
	}
	return returnX{true}, nil
}

// modifyInstanceAttribute changes an instance's security groups (GroupId.N, the whole set),
// which EC2 requires to exist in the instance's VPC; other attributes are not modelled and
// are refused rather than ignored.
func (s *Server) modifyInstanceAttribute(v url.Values) (any, *apiErr) {
	inst, ok := s.instances[v.Get("InstanceId")]
	if !ok || inst.State == "terminated" {
		return nil, errf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", v.Get("InstanceId"))
	}
	groups := list(v, "GroupId")
	if len(groups) == 0 {
		return nil, errf("InvalidParameterCombination", "the fake models only GroupId.N of ModifyInstanceAttribute")
	}
	for _, g := range groups {
		if sg, ok := s.groups[g]; !ok || sg.VpcID != inst.VpcID {
			return nil, errf("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", g, inst.VpcID)
		}
	}
	inst.Groups = groups
	return returnX{true}, nil
}

// innerXML marshals v and drops its outer element, leaving the children that go inside
// <ActionResponse>.
func innerXML(v any) ([]byte, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	start, end := bytes.IndexByte(b, '>'), bytes.LastIndexByte(b, '<')
	if start < 0 || end < start || b[start-1] == '/' {
		return nil, nil
	}
	return b[start+1 : end], nil
}
