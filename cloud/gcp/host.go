package gcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/sizing"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/proto"
)

// Firewall priorities (lower wins). Ingress deny is at 0 so that no project-wide allow (such
// as the default network's default-allow-ssh at 65534) reaches a router host. Egress allows
// sit just ahead of the host's deny-all egress; only a rule with priority below 100 elsewhere
// in the network could widen the host's egress.
const (
	PriorityDenyIngress = 0
	PriorityAllowEgress = 100
	PriorityDenyEgress  = 101
)

// MetadataImage records the image a host was created from (the boot disk holds it too, but
// reading it there costs another call).
const MetadataImage = "ztna-image"

// NetworkTag is the tag the host's firewall rules target.
func NetworkTag(host string) string { return "ztna-router-" + host }

func firewallPrefix(host string) string { return "ztna-" + host + "-" }

// firewallFilter matches exactly the firewall rules created for host (and not those of a host
// whose name merely starts with the same letters).
func firewallFilter(host string) string {
	return fmt.Sprintf(`name eq "%s(egress-[0-9]+|deny-egress|deny-ingress)"`, regexp.QuoteMeta(firewallPrefix(host)))
}

// firewallRules renders the allowlist: one allow rule per destination range with its
// protocols and ports, then deny-all egress and deny-all ingress on the host's tag.
func firewallRules(host, network string, rules []egress.Rule) []*computepb.Firewall {
	tag := []string{NetworkTag(host)}
	var order []string
	ports := map[string]map[egress.Protocol][]string{}
	names := map[string][]string{}
	for _, r := range rules {
		cidr := r.FirewallCIDR()
		if ports[cidr] == nil {
			ports[cidr] = map[egress.Protocol][]string{}
			order = append(order, cidr)
		}
		ports[cidr][r.Protocol] = append(ports[cidr][r.Protocol], r.Ports.String())
		if !slices.Contains(names[cidr], r.Destination) {
			names[cidr] = append(names[cidr], r.Destination)
		}
	}
	var out []*computepb.Firewall
	for i, cidr := range order {
		var allowed []*computepb.Allowed
		for _, p := range slices.Sorted(maps.Keys(ports[cidr])) {
			allowed = append(allowed, &computepb.Allowed{IPProtocol: proto.String(string(p)), Ports: ports[cidr][p]})
		}
		out = append(out, &computepb.Firewall{
			Name:              proto.String(fmt.Sprintf("%segress-%d", firewallPrefix(host), i+1)),
			Description:       proto.String(truncate("ztna router host "+host+": egress to "+strings.Join(names[cidr], ", "), 2048)),
			Network:           proto.String(network),
			Direction:         proto.String(computepb.Firewall_EGRESS.String()),
			Priority:          proto.Int32(PriorityAllowEgress),
			DestinationRanges: []string{cidr},
			TargetTags:        tag,
			Allowed:           allowed,
		})
	}
	all := []*computepb.Denied{{IPProtocol: proto.String("all")}}
	out = append(out,
		&computepb.Firewall{
			Name:              proto.String(firewallPrefix(host) + "deny-egress"),
			Description:       proto.String("ztna router host " + host + ": deny all other egress"),
			Network:           proto.String(network),
			Direction:         proto.String(computepb.Firewall_EGRESS.String()),
			Priority:          proto.Int32(PriorityDenyEgress),
			DestinationRanges: []string{"0.0.0.0/0"},
			TargetTags:        tag,
			Denied:            all,
		},
		&computepb.Firewall{
			Name:         proto.String(firewallPrefix(host) + "deny-ingress"),
			Description:  proto.String("ztna router host " + host + ": no inbound connections"),
			Network:      proto.String(network),
			Direction:    proto.String(computepb.Firewall_INGRESS.String()),
			Priority:     proto.Int32(PriorityDenyIngress),
			SourceRanges: []string{"0.0.0.0/0"},
			TargetTags:   tag,
			Denied:       all,
		})
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

var labelRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
var labelValueRE = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)

// maxLabels is Compute Engine's limit of labels per resource.
const maxLabels = 64

// ValidateLabels checks tags against Compute Engine's label rules, so a plan can refuse what
// the API would.
func ValidateLabels(tags map[string]string) error {
	if len(tags) > maxLabels-2 { // the ownership labels take two
		return fmt.Errorf("gcp: %d tags, but an instance takes at most %d labels beside the two ztna adds: remove some", len(tags), maxLabels-2)
	}
	for k, v := range tags {
		if !labelRE.MatchString(k) || !labelValueRE.MatchString(v) {
			return fmt.Errorf("gcp: tag %q=%q is not a valid label: use lower-case letters, digits, '_' and '-' (keys start with a letter, at most 63 characters)", k, v)
		}
	}
	return nil
}

func labels(tags map[string]string) (map[string]string, error) {
	if err := ValidateLabels(cloud.UserTags(tags)); err != nil {
		return nil, err
	}
	return tags, nil
}

// setLabelsAttempts bounds the retries of instances.setLabels when another writer changed the
// labels between our read and our write (the fingerprint went stale).
const setLabelsAttempts = 3

// UpdateTags makes the instance's user labels tags, in place, with instances.setLabels. The
// call carries the labelFingerprint of the labels it replaces, and Compute Engine refuses it
// (412 conditionNotMet) when they changed meanwhile; the labels are then read again and the
// write retried, so a concurrent change is never overwritten unseen. The ownership labels stay.
func (d *Driver) UpdateTags(ctx context.Context, id string, tags map[string]string) error {
	project, zone, name, err := parseID(id)
	if err != nil {
		return err
	}
	want, err := labels(cloud.HostSpec{Name: name, Tags: tags}.AllTags())
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		inst, err := d.instances.Get(ctx, &computepb.GetInstanceRequest{Project: project, Zone: zone, Instance: name})
		if err != nil {
			if isNotFound(err) {
				return fmt.Errorf("gcp: instance %s: %w", id, cloud.ErrNotFound)
			}
			return d.apiError("instances.get", err)
		}
		if maps.Equal(inst.GetLabels(), want) {
			return nil
		}
		op, err := d.instances.SetLabels(ctx, &computepb.SetLabelsInstanceRequest{
			Project: project, Zone: zone, Instance: name,
			InstancesSetLabelsRequestResource: &computepb.InstancesSetLabelsRequest{Labels: want, LabelFingerprint: proto.String(inst.GetLabelFingerprint())},
		})
		if isPreconditionFailed(err) && attempt < setLabelsAttempts {
			d.log.DebugContext(ctx, "labels changed meanwhile; reading them again", "instance", id, "attempt", attempt)
			continue
		}
		if err := d.finish(ctx, op, err, "instances.setLabels"); err != nil {
			return err
		}
		d.log.DebugContext(ctx, "updated labels", "instance", id, "labels", len(want))
		return nil
	}
}

// Create inserts the host's firewall rules (deny ingress first, so the instance is never
// reachable), then the instance, and returns it once the instance insert is done. On failure
// it deletes what it created.
func (d *Driver) Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error) {
	if err := spec.Validate(); err != nil {
		return cloud.Host{}, err
	}
	if d.opts.Zone == "" {
		return cloud.Host{}, errors.New("gcp: zone is empty: set the zone the router host goes in (for example europe-west1-b)")
	}
	if spec.Image == "" {
		return cloud.Host{}, errors.New("gcp: image is empty: set an image URL (for example from the ztna_image data source)")
	}
	machineType, diskGiB, err := spec.Size(sizing.GCP)
	if err != nil {
		return cloud.Host{}, err
	}
	lbls, err := labels(spec.AllTags())
	if err != nil {
		return cloud.Host{}, err
	}
	id := instanceID(d.opts.Project, d.opts.Zone, spec.Name)
	if _, err := d.instances.Get(ctx, &computepb.GetInstanceRequest{Project: d.opts.Project, Zone: d.opts.Zone, Instance: spec.Name}); err == nil {
		return cloud.Host{}, fmt.Errorf("gcp: instance %s already exists: choose another router host name or import it", id)
	} else if !isNotFound(err) {
		return cloud.Host{}, d.apiError("instances.get", err)
	}
	// Rules left by an earlier host of this name (whose instance was deleted out of band)
	// would collide by name; they are replaced.
	if err := d.deleteFirewalls(ctx, spec.Name); err != nil {
		return cloud.Host{}, err
	}
	rules := firewallRules(spec.Name, d.networkURL(), spec.Egress)
	slices.Reverse(rules) // deny ingress, deny egress, then the allows
	for _, fw := range rules {
		op, err := d.firewalls.Insert(ctx, &computepb.InsertFirewallRequest{Project: d.opts.Project, FirewallResource: fw})
		if err == nil {
			err = d.wait(ctx, op, "firewalls.insert")
		} else {
			err = d.apiError("firewalls.insert", err)
		}
		if err != nil {
			return cloud.Host{}, errors.Join(err, d.deleteFirewalls(ctx, spec.Name))
		}
	}
	op, err := d.instances.Insert(ctx, &computepb.InsertInstanceRequest{
		Project: d.opts.Project, Zone: d.opts.Zone,
		InstanceResource: d.instance(spec, machineType, diskGiB, lbls),
	})
	if err == nil {
		err = d.wait(ctx, op, "instances.insert")
	} else {
		err = d.apiError("instances.insert", err)
	}
	if err != nil {
		return cloud.Host{}, errors.Join(err, d.Delete(ctx, id))
	}
	d.log.DebugContext(ctx, "created instance", "instance", id, "machine_type", machineType)
	return d.Read(ctx, id)
}

func (d *Driver) instance(spec cloud.HostSpec, machineType string, diskGiB int, lbls map[string]string) *computepb.Instance {
	nic := &computepb.NetworkInterface{Network: proto.String(d.networkURL())}
	if s := d.subnetworkURL(); s != "" {
		nic.Subnetwork = proto.String(s)
	}
	if d.opts.AssignPublicIP {
		nic.AccessConfigs = []*computepb.AccessConfig{{Name: proto.String("external-nat"), Type: proto.String(computepb.AccessConfig_ONE_TO_ONE_NAT.String())}}
	}
	image := spec.Image
	if !strings.Contains(image, "/") {
		image = fmt.Sprintf("projects/%s/global/images/%s", d.opts.Project, image)
	}
	return &computepb.Instance{
		Name:        proto.String(spec.Name),
		MachineType: proto.String(fmt.Sprintf("zones/%s/machineTypes/%s", d.opts.Zone, machineType)),
		Labels:      lbls,
		Tags:        &computepb.Tags{Items: []string{NetworkTag(spec.Name)}},
		Disks: []*computepb.AttachedDisk{{
			Boot: proto.Bool(true), AutoDelete: proto.Bool(true),
			InitializeParams: &computepb.AttachedDiskInitializeParams{
				SourceImage: proto.String(image),
				DiskSizeGb:  proto.Int64(int64(diskGiB)),
				DiskType:    proto.String(fmt.Sprintf("zones/%s/diskTypes/pd-balanced", d.opts.Zone)),
				Labels:      lbls,
			},
		}},
		NetworkInterfaces: []*computepb.NetworkInterface{nic},
		Metadata: &computepb.Metadata{Items: []*computepb.Items{
			{Key: proto.String(cloud.RegistrationKeyMetadataKey), Value: proto.String(spec.RegistrationKey)},
			{Key: proto.String(MetadataImage), Value: proto.String(image)},
			// Project-wide SSH keys would open a login path nobody declared.
			{Key: proto.String("block-project-ssh-keys"), Value: proto.String("TRUE")},
		}},
		ShieldedInstanceConfig: &computepb.ShieldedInstanceConfig{
			EnableSecureBoot: proto.Bool(true), EnableVtpm: proto.Bool(true), EnableIntegrityMonitoring: proto.Bool(true),
		},
		// No service account: the router needs no Google API, so the host holds no credentials.
	}
}

func instanceID(project, zone, name string) string {
	return fmt.Sprintf("projects/%s/zones/%s/instances/%s", project, zone, name)
}

var idRE = regexp.MustCompile(`^projects/([^/]+)/zones/([^/]+)/instances/([^/]+)$`)

func parseID(id string) (project, zone, name string, err error) {
	m := idRE.FindStringSubmatch(id)
	if m == nil {
		return "", "", "", fmt.Errorf("gcp: router host id %q is invalid: use projects/PROJECT/zones/ZONE/instances/NAME", id)
	}
	return m[1], m[2], m[3], nil
}

// Read returns the host, or an error wrapping cloud.ErrNotFound when the instance is gone.
// Missing firewall rules or an ingress allow on the host's rules are reported as drift.
func (d *Driver) Read(ctx context.Context, id string) (cloud.Host, error) {
	project, zone, name, err := parseID(id)
	if err != nil {
		return cloud.Host{}, err
	}
	inst, err := d.instances.Get(ctx, &computepb.GetInstanceRequest{Project: project, Zone: zone, Instance: name})
	if err != nil {
		if isNotFound(err) {
			return cloud.Host{}, fmt.Errorf("gcp: instance %s: %w", id, cloud.ErrNotFound)
		}
		return cloud.Host{}, d.apiError("instances.get", err)
	}
	h := cloud.Host{
		ID: id, Name: name, InstanceType: last(inst.GetMachineType()), State: inst.GetStatus(),
		FailureDomain: cloud.FailureDomain{Cloud: string(sizing.GCP), Region: cloud.GCPZoneRegion(zone), Zone: zone},
	}
	h.Tags = cloud.UserTags(inst.GetLabels())
	if nics := inst.GetNetworkInterfaces(); len(nics) > 0 {
		h.PrivateAddress = nics[0].GetNetworkIP()
	}
	for _, it := range inst.GetMetadata().GetItems() {
		if it.GetKey() == MetadataImage {
			h.Image = it.GetValue()
		}
	}
	if !slices.Contains(inst.GetTags().GetItems(), NetworkTag(name)) {
		h.Drift = append(h.Drift, fmt.Sprintf("instance %s lost network tag %s, so its firewall rules no longer apply", name, NetworkTag(name)))
	}
	fws, err := d.listFirewalls(ctx, name)
	if err != nil {
		return cloud.Host{}, err
	}
	have := map[string]bool{}
	egressAllows := 0
	for _, fw := range fws {
		have[fw.GetName()] = true
		if strings.Contains(fw.GetName(), "-egress-") {
			egressAllows++
		}
		if fw.GetDirection() == computepb.Firewall_INGRESS.String() && len(fw.GetAllowed()) > 0 {
			h.Drift = append(h.Drift, fmt.Sprintf("firewall rule %s allows ingress; router hosts allow no ingress", fw.GetName()))
		}
	}
	for _, want := range []string{"deny-ingress", "deny-egress"} {
		if !have[firewallPrefix(name)+want] {
			h.Drift = append(h.Drift, fmt.Sprintf("firewall rule %s%s is missing", firewallPrefix(name), want))
		}
	}
	if egressAllows == 0 {
		h.Drift = append(h.Drift, fmt.Sprintf("egress allow rules %segress-N are missing", firewallPrefix(name)))
	}
	return h, nil
}

func (d *Driver) listFirewalls(ctx context.Context, host string) ([]*computepb.Firewall, error) {
	it := d.firewalls.List(ctx, &computepb.ListFirewallsRequest{Project: d.opts.Project, Filter: proto.String(firewallFilter(host))})
	var out []*computepb.Firewall
	for {
		fw, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, d.apiError("firewalls.list", err)
		}
		out = append(out, fw)
	}
}

func (d *Driver) deleteFirewalls(ctx context.Context, host string) error {
	fws, err := d.listFirewalls(ctx, host)
	if err != nil {
		return err
	}
	for _, fw := range fws {
		op, err := d.firewalls.Delete(ctx, &computepb.DeleteFirewallRequest{Project: d.opts.Project, Firewall: fw.GetName()})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return d.apiError("firewalls.delete", err)
		}
		if err := d.wait(ctx, op, "firewalls.delete"); err != nil {
			return err
		}
	}
	return nil
}

// Delete deletes the instance (its boot disk is auto-deleted with it) and then its firewall
// rules. Deleting a host that is already gone succeeds and still removes leftover rules.
func (d *Driver) Delete(ctx context.Context, id string) error {
	project, zone, name, err := parseID(id)
	if err != nil {
		return err
	}
	op, err := d.instances.Delete(ctx, &computepb.DeleteInstanceRequest{Project: project, Zone: zone, Instance: name})
	switch {
	case isNotFound(err):
	case err != nil:
		return d.apiError("instances.delete", err)
	default:
		if err := d.wait(ctx, op, "instances.delete"); err != nil {
			return err
		}
	}
	return d.deleteFirewalls(ctx, name)
}

// firewallKey is what a firewall rule enforces, in one string, so that rules compare by
// effect: direction, priority, what it allows or denies, where, and on which instances.
func firewallKey(fw *computepb.Firewall) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d", fw.GetDirection(), fw.GetPriority())
	for _, a := range fw.GetAllowed() {
		fmt.Fprintf(&b, " allow %s:%s", a.GetIPProtocol(), strings.Join(a.GetPorts(), ","))
	}
	for _, a := range fw.GetDenied() {
		fmt.Fprintf(&b, " deny %s:%s", a.GetIPProtocol(), strings.Join(a.GetPorts(), ","))
	}
	fmt.Fprintf(&b, " dst=%v src=%v tags=%v accounts=%v disabled=%t", fw.GetDestinationRanges(), fw.GetSourceRanges(),
		fw.GetTargetTags(), fw.GetTargetServiceAccounts(), fw.GetDisabled())
	return b.String()
}

// plannedFirewalls renders the allowlist for a host whose rules are live: an allow rule for
// a destination range that already has one keeps that rule's name, so changing ports patches
// the rule in place and adding a destination inserts a rule without renumbering the others
// (no allowed destination is ever cut off on the way).
func plannedFirewalls(host, network string, rules []egress.Rule, live []*computepb.Firewall) []*computepb.Firewall {
	want := firewallRules(host, network, rules)
	byDst := map[string]string{}
	used := map[string]bool{}
	for _, fw := range live {
		if strings.HasPrefix(fw.GetName(), firewallPrefix(host)+"egress-") {
			byDst[strings.Join(fw.GetDestinationRanges(), ",")] = fw.GetName()
			used[fw.GetName()] = true
		}
	}
	next := 1
	for _, fw := range want {
		if fw.GetDirection() != computepb.Firewall_EGRESS.String() || len(fw.GetAllowed()) == 0 {
			continue
		}
		if name, ok := byDst[strings.Join(fw.GetDestinationRanges(), ",")]; ok {
			fw.Name = proto.String(name)
			continue
		}
		for used[fmt.Sprintf("%segress-%d", firewallPrefix(host), next)] {
			next++
		}
		fw.Name = proto.String(fmt.Sprintf("%segress-%d", firewallPrefix(host), next))
		used[fw.GetName()] = true
	}
	return want
}

// UpdateEgress makes the host's firewall rules the allowlist, in place: new rules are
// inserted and changed ones patched (firewalls.patch) before rules no longer wanted are
// deleted. The instance is not touched.
func (d *Driver) UpdateEgress(ctx context.Context, id string, rules []egress.Rule) error {
	_, _, name, err := parseID(id)
	if err != nil {
		return err
	}
	live, err := d.listFirewalls(ctx, name)
	if err != nil {
		return err
	}
	byName := map[string]*computepb.Firewall{}
	for _, fw := range live {
		byName[fw.GetName()] = fw
	}
	want := plannedFirewalls(name, d.networkURL(), rules, live)
	keep := map[string]bool{}
	for _, fw := range want {
		keep[fw.GetName()] = true
		old, ok := byName[fw.GetName()]
		switch {
		case !ok:
			op, err := d.firewalls.Insert(ctx, &computepb.InsertFirewallRequest{Project: d.opts.Project, FirewallResource: fw})
			if err = d.finish(ctx, op, err, "firewalls.insert"); err != nil {
				return err
			}
		case firewallKey(old) != firewallKey(fw):
			op, err := d.firewalls.Patch(ctx, &computepb.PatchFirewallRequest{Project: d.opts.Project, Firewall: fw.GetName(), FirewallResource: fw})
			if err = d.finish(ctx, op, err, "firewalls.patch"); err != nil {
				return err
			}
		}
	}
	for _, fw := range live {
		if keep[fw.GetName()] {
			continue
		}
		op, err := d.firewalls.Delete(ctx, &computepb.DeleteFirewallRequest{Project: d.opts.Project, Firewall: fw.GetName()})
		if isNotFound(err) {
			continue
		}
		if err = d.finish(ctx, op, err, "firewalls.delete"); err != nil {
			return err
		}
	}
	return nil
}

// finish waits for an operation, or turns the call's error into an APIError.
func (d *Driver) finish(ctx context.Context, op *compute.Operation, err error, rpc string) error {
	if err != nil {
		return d.apiError(rpc, err)
	}
	return d.wait(ctx, op, rpc)
}

// EgressDrift lists how the host's firewall rules differ from the allowlist: rules missing
// or changed, and rules of the host beyond it.
func (d *Driver) EgressDrift(ctx context.Context, id string, rules []egress.Rule) ([]string, error) {
	_, _, name, err := parseID(id)
	if err != nil {
		return nil, err
	}
	live, err := d.listFirewalls(ctx, name)
	if err != nil {
		return nil, err
	}
	key := func(fw *computepb.Firewall) string { return fw.GetName() + ": " + firewallKey(fw) }
	var want, have []string
	for _, fw := range plannedFirewalls(name, d.networkURL(), rules, live) {
		want = append(want, key(fw))
	}
	for _, fw := range live {
		have = append(have, key(fw))
	}
	return cloud.EgressDiff("the firewall rules of "+name, want, have), nil
}
