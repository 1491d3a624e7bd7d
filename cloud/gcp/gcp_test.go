package gcp

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/gcp/computefake"
	"github.com/ztna/ztna/cloud/internal/clouddrivertest"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// newTestDriver returns a driver on a fresh fake holding network, subnetwork and router image,
// with its options changed by each non-nil edit.
func newTestDriver(t *testing.T, edits ...func(*Options)) (*Driver, *computefake.Server) {
	t.Helper()
	fake := computefake.New()
	t.Cleanup(fake.Close)
	fake.AddNetwork("projects/prod/global/networks/default")
	fake.AddSubnetwork("projects/prod/regions/europe-west1/subnetworks/routers")
	fake.AddImage("prod", &computepb.Image{Name: proto.String("ztna-router-1-2-0"), Family: proto.String("ztna-router"), CreationTimestamp: proto.String("2026-01-01T00:00:00.000-08:00")})
	opts := Options{Project: "prod", Zone: "europe-west1-b", Subnetwork: "routers", Endpoint: fake.URL,
		ClientOptions: []option.ClientOption{option.WithoutAuthentication()}}
	for _, edit := range edits {
		if edit != nil {
			edit(&opts)
		}
	}
	d, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, fake
}

func testSpec(t *testing.T, tier string) cloud.HostSpec {
	t.Helper()
	return clouddrivertest.Spec(t, tier, "ztna-router-1-2-0")
}

// The exact rule set: name destinations share one any-address rule limited to their ports;
// everything else is denied, and ingress is denied ahead of every other rule.
const wantFirewalls = `ztna-edge-a-deny-egress EGRESS 101 dst=[0.0.0.0/0] tags=[ztna-router-edge-a] denied=[all]
ztna-edge-a-deny-ingress INGRESS 0 src=[0.0.0.0/0] tags=[ztna-router-edge-a] denied=[all]
ztna-edge-a-egress-1 EGRESS 100 dst=[10.20.0.0/16] tags=[ztna-router-edge-a] allowed=[tcp:5432]
ztna-edge-a-egress-2 EGRESS 100 dst=[0.0.0.0/0] tags=[ztna-router-edge-a] allowed=[tcp:8000-8100,80,443,6262 udp:80,443,6262]`

func renderFirewalls(fws []*computepb.Firewall) string {
	var lines []string
	for _, fw := range fws {
		line := fw.GetName() + " " + fw.GetDirection() + " " + itoa(fw.GetPriority())
		if len(fw.GetDestinationRanges()) > 0 {
			line += " dst=[" + strings.Join(fw.GetDestinationRanges(), ",") + "]"
		}
		if len(fw.GetSourceRanges()) > 0 {
			line += " src=[" + strings.Join(fw.GetSourceRanges(), ",") + "]"
		}
		line += " tags=[" + strings.Join(fw.GetTargetTags(), ",") + "]"
		var parts []string
		for _, a := range fw.GetAllowed() {
			parts = append(parts, a.GetIPProtocol()+":"+strings.Join(a.GetPorts(), ","))
		}
		if len(parts) > 0 {
			line += " allowed=[" + strings.Join(parts, " ") + "]"
		}
		parts = nil
		for _, dn := range fw.GetDenied() {
			parts = append(parts, dn.GetIPProtocol())
		}
		if len(parts) > 0 {
			line += " denied=[" + strings.Join(parts, " ") + "]"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func TestCreateReadDelete(t *testing.T) {
	for _, tt := range []struct{ tier, wantType string }{{"low-med", "e2-standard-2"}, {"med", "e2-standard-4"}, {"high", "e2-standard-8"}} {
		t.Run(tt.tier, func(t *testing.T) {
			d, fake := newTestDriver(t)
			ctx := context.Background()
			h := clouddrivertest.Create(t, d, testSpec(t, tt.tier))
			if h.ID != "projects/prod/zones/europe-west1-b/instances/edge-a" || h.InstanceType != tt.wantType || h.PrivateAddress == "" ||
				h.FailureDomain != (cloud.FailureDomain{Cloud: "gcp", Region: "europe-west1", Zone: "europe-west1-b"}) ||
				h.Image != "projects/prod/global/images/ztna-router-1-2-0" || len(h.Drift) != 0 || h.State != "RUNNING" {
				t.Fatalf("host = %+v", h)
			}
			if got := renderFirewalls(fake.Firewalls()); got != wantFirewalls {
				t.Errorf("firewalls:\n%s\nwant:\n%s", got, wantFirewalls)
			}
			inst := fake.Instances()[0]
			var key string
			for _, it := range inst.GetMetadata().GetItems() {
				if it.GetKey() == cloud.RegistrationKeyMetadataKey {
					key = it.GetValue()
				}
			}
			if key != clouddrivertest.Key {
				t.Errorf("metadata key = %q", key)
			}
			if inst.GetTags().GetItems()[0] != "ztna-router-edge-a" || inst.GetLabels()["team"] != "platform" ||
				inst.GetLabels()[cloud.TagManagedBy] != "ztna" || len(inst.GetServiceAccounts()) != 0 ||
				inst.GetDisks()[0].GetInitializeParams().GetDiskSizeGb() != 20 || !inst.GetShieldedInstanceConfig().GetEnableSecureBoot() ||
				inst.GetNetworkInterfaces()[0].GetSubnetwork() != "projects/prod/regions/europe-west1/subnetworks/routers" {
				t.Errorf("instance = %v", inst)
			}

			if err := d.Delete(ctx, h.ID); err != nil {
				t.Fatal(err)
			}
			if n, f := len(fake.Instances()), len(fake.Firewalls()); n != 0 || f != 0 {
				t.Errorf("after delete: %d instances, %d firewalls", n, f)
			}
			clouddrivertest.CheckGone(t, d, h.ID)
		})
	}
}

func TestKeyOnlyInMetadata(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	if _, err := d.Read(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, r := range fake.Requests() {
		if strings.Contains(r.Path, clouddrivertest.Key) {
			t.Errorf("key in URL of %s %s", r.Method, r.Path)
		}
		if !strings.Contains(r.Body, clouddrivertest.Key) {
			continue
		}
		sent++
		inst := &computepb.Instance{}
		if r.Method != "POST" || !strings.HasSuffix(r.Path, "/instances") || protojson.Unmarshal([]byte(r.Body), inst) != nil {
			t.Fatalf("key sent in %s %s", r.Method, r.Path)
		}
		inst.Metadata = nil
		if b, _ := protojson.Marshal(inst); strings.Contains(string(b), clouddrivertest.Key) {
			t.Errorf("key outside metadata in instances.insert: %s", b)
		}
	}
	if sent != 1 {
		t.Errorf("key sent %d times, want once", sent)
	}
}

func TestDrift(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	h := clouddrivertest.Create(t, d, testSpec(t, "med"))
	fake.DeleteFirewallOutOfBand("prod", "ztna-edge-a-deny-ingress")
	got, err := d.Read(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Drift) != 1 || !strings.Contains(got.Drift[0], "ztna-edge-a-deny-ingress is missing") {
		t.Errorf("drift = %q", got.Drift)
	}
	fake.DeleteInstanceOutOfBand("prod", "europe-west1-b", "edge-a")
	if _, err := d.Read(ctx, h.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("Read of deleted instance: %v", err)
	}
	// Recreating replaces the leftover rules instead of failing on their names.
	if _, err := d.Create(ctx, testSpec(t, "med")); err != nil {
		t.Fatal(err)
	}
	if got := renderFirewalls(fake.Firewalls()); got != wantFirewalls {
		t.Errorf("firewalls after recreate:\n%s", got)
	}
	if _, err := d.Create(ctx, testSpec(t, "med")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate create: %v", err)
	}
}

// Rules of a host whose name extends another's are not touched.
func TestDeleteLeavesOtherHostsRules(t *testing.T) {
	d, fake := newTestDriver(t)
	ctx := context.Background()
	a := clouddrivertest.Create(t, d, testSpec(t, "med"))
	spec := testSpec(t, "med")
	spec.Name = "edge-a-2"
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, fw := range fake.Firewalls() {
		if !strings.HasPrefix(fw.GetName(), "ztna-edge-a-2-") {
			t.Errorf("left %s", fw.GetName())
		}
	}
	if n := len(fake.Firewalls()); n != 4 {
		t.Errorf("%d rules of edge-a-2 remain, want 4", n)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*computefake.Server)
		edit   func(*Options)
		code   string
		want   []string
	}{
		{"quota", func(f *computefake.Server) {
			f.FailOperation("instances.insert", 403, "QUOTA_EXCEEDED", "Quota 'CPUS' exceeded.  Limit: 8.0 in region europe-west1.")
		}, nil, "QUOTA_EXCEEDED", []string{"Quota 'CPUS'", "IAM & Admin > Quotas", "smaller size tier"}},
		{"unknown subnet", nil, func(o *Options) { o.Subnetwork = "nope" }, "notFound", []string{"subnetworks/nope", "check network and subnetwork"}},
		{"permission denied", func(f *computefake.Server) {
			f.FailHTTP("firewalls.insert", 403, "forbidden", "Required 'compute.firewalls.create' permission for 'projects/prod/global/firewalls/ztna-edge-a-deny-ingress'")
		}, nil, "forbidden", []string{"compute.firewalls.create", "roles/compute.securityAdmin"}},
		{"unknown machine type", nil, nil, "invalid", []string{"check instance_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fake := newTestDriver(t, tt.edit)
			if tt.inject != nil {
				tt.inject(fake)
			}
			spec := testSpec(t, "med")
			if tt.name == "unknown machine type" {
				spec.Tier, spec.InstanceType = "", "e2-huge-99"
			}
			_, err := d.Create(context.Background(), spec)
			clouddrivertest.CheckAPIError(t, err, tt.code, tt.want...)
			if n, f := len(fake.Instances()), len(fake.Firewalls()); n != 0 || f != 0 {
				t.Errorf("failed create left %d instances, %d firewalls", n, f)
			}
		})
	}
}

func TestInvalidLabels(t *testing.T) {
	d, _ := newTestDriver(t)
	spec := testSpec(t, "med")
	spec.Tags = map[string]string{"Team": "Platform"}
	if _, err := d.Create(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "not a valid label") {
		t.Fatalf("err = %v", err)
	}
}

// TestEgressInPlace: the firewall rules follow the allowlist (insert, patch, delete), the
// instance untouched, and an allow rule of the host widened out of band is drift that the
// next update patches back.
func TestEgressInPlace(t *testing.T) {
	d, fake := newTestDriver(t)
	h := clouddrivertest.CheckEgressUpdate(t, d, testSpec(t, "low-med"))
	const want = `ztna-edge-a-deny-egress EGRESS 101 dst=[0.0.0.0/0] tags=[ztna-router-edge-a] denied=[all]
ztna-edge-a-deny-ingress INGRESS 0 src=[0.0.0.0/0] tags=[ztna-router-edge-a] denied=[all]
ztna-edge-a-egress-1 EGRESS 100 dst=[10.20.0.0/16] tags=[ztna-router-edge-a] allowed=[tcp:5432]
ztna-edge-a-egress-2 EGRESS 100 dst=[0.0.0.0/0] tags=[ztna-router-edge-a] allowed=[tcp:80,443,6262 udp:80,443,6262]
ztna-edge-a-egress-3 EGRESS 100 dst=[10.30.0.5/32] tags=[ztna-router-edge-a] allowed=[tcp:8443]`
	if got := renderFirewalls(fake.Firewalls()); got != want {
		t.Fatalf("firewalls after the update:\n%s\nwant:\n%s", got, want)
	}
	var inserts, patches int
	for _, r := range fake.Requests() {
		switch {
		case r.Method == "PATCH":
			patches++
		case r.Method == "POST" && strings.HasSuffix(r.Path, "/instances"):
			inserts++
		case r.Method == "DELETE" && strings.Contains(r.Path, "/instances/"):
			t.Errorf("the egress update deleted the instance: %s", r.Path)
		}
	}
	if inserts != 1 || patches != 1 {
		t.Errorf("%d instance inserts and %d firewall patches, want 1 and 1 (egress-2 loses the name's ports)", inserts, patches)
	}
	clouddrivertest.CheckDriftRepaired(t, d, h.ID, clouddrivertest.ChangedEgress(t), func() {
		for _, fw := range fake.Firewalls() {
			if fw.GetName() == "ztna-edge-a-egress-1" {
				fw.DestinationRanges = []string{"0.0.0.0/0"}
				fw.Allowed = []*computepb.Allowed{{IPProtocol: proto.String("all")}}
				fake.AddFirewallOutOfBand("prod", fw)
			}
		}
	}, "ztna-edge-a-egress-1: EGRESS 100 allow all: dst=[0.0.0.0/0]")
}

// TestUpdateTags: labels change in place through instances.setLabels with the current
// labelFingerprint, the ownership labels kept; labels changed out of band are read again
// before the write. The instance is not re-created.
func TestUpdateTags(t *testing.T) {
	d, fake := newTestDriver(t)
	h := clouddrivertest.CheckTagUpdate(t, d, testSpec(t, "low-med"))
	inst := fake.Instances()[0]
	if inst.GetLabels()[cloud.TagRouterHost] != "edge-a" || inst.GetLabels()[cloud.TagManagedBy] != cloud.ManagedBy {
		t.Errorf("labels %v lost the ownership labels", inst.GetLabels())
	}
	fake.SetLabelsOutOfBand("prod", "europe-west1-b", "edge-a", map[string]string{"team": "someone-else"})
	if err := d.UpdateTags(context.Background(), h.ID, map[string]string{"team": "core"}); err != nil {
		t.Fatal(err)
	}
	after, err := d.Read(context.Background(), h.ID)
	if err != nil || !maps.Equal(after.Tags, map[string]string{"team": "core"}) {
		t.Fatalf("after the out-of-band change and the update: %v, %v", after.Tags, err)
	}
	inserts := 0
	for _, r := range fake.Requests() {
		switch {
		case r.Method == "POST" && strings.HasSuffix(r.Path, "/instances"):
			inserts++
		case r.Method == "DELETE" && strings.Contains(r.Path, "/instances/"):
			t.Errorf("the tag update deleted the instance: %s", r.Path)
		}
	}
	if inserts != 1 {
		t.Errorf("%d instance inserts, want the 1 of Create", inserts)
	}
}

// TestUpdateTagsStaleFingerprint: a fingerprint that stays stale (another writer keeps
// changing the labels) is retried a bounded number of times, then reported.
func TestUpdateTagsStaleFingerprint(t *testing.T) {
	d, fake := newTestDriver(t)
	h := clouddrivertest.Create(t, d, testSpec(t, "low-med"))
	fake.FailHTTP("instances.setLabels", http.StatusPreconditionFailed, "conditionNotMet", "Labels fingerprint either invalid or resource labels have changed")
	err := d.UpdateTags(context.Background(), h.ID, map[string]string{"team": "core"})
	clouddrivertest.CheckAPIError(t, err, "conditionNotMet")
	sets := 0
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/setLabels") {
			sets++
		}
	}
	if sets != setLabelsAttempts {
		t.Errorf("%d setLabels calls, want %d", sets, setLabelsAttempts)
	}
}

// TestFakeRefusesStaleFingerprint: the fake enforces the fingerprint as Compute Engine does.
func TestFakeRefusesStaleFingerprint(t *testing.T) {
	d, fake := newTestDriver(t)
	h := clouddrivertest.Create(t, d, testSpec(t, "low-med"))
	ctx := context.Background()
	old := fake.Instances()[0].GetLabelFingerprint()
	fake.SetLabelsOutOfBand("prod", "europe-west1-b", "edge-a", map[string]string{"team": "x"})
	op, err := d.instances.SetLabels(ctx, &computepb.SetLabelsInstanceRequest{Project: "prod", Zone: "europe-west1-b", Instance: "edge-a",
		InstancesSetLabelsRequestResource: &computepb.InstancesSetLabelsRequest{Labels: map[string]string{"team": "y"}, LabelFingerprint: proto.String(old)}})
	if err := d.finish(ctx, op, err, "instances.setLabels"); !isPreconditionFailed(err) {
		t.Fatalf("setLabels with a stale fingerprint: %v, want 412", err)
	}
	if got, _ := d.Read(ctx, h.ID); got.Tags["team"] != "x" {
		t.Errorf("labels %v changed by a refused write", got.Tags)
	}
}
