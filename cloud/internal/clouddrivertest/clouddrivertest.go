// Package clouddrivertest holds what the tests of the cloud drivers (aws, gcp, azure) share: a
// host spec with a real egress allowlist and a registration key to look for in what a driver
// sends, and the checks every driver must pass alike.
package clouddrivertest

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/ztna/ztna/cloud"
	"github.com/ztna/ztna/cloud/egress"
)

// Key is the registration key of Spec. Its secret, base64 inside it, is "s3cr3t".
const Key = "ztna-key-v1.eyJpZCI6InJrLTEiLCJzZWNyZXQiOiJzM2NyM3QifQ"

// Spec is host edge-a of tier on image, tagged team=platform, with the egress allowlist of a
// controller at ctrl.example.com, a service on 10.20.0.0/16 port 5432 and one named
// api.internal.example on ports 8000-8100.
func Spec(t testing.TB, tier, image string) cloud.HostSpec {
	t.Helper()
	rules, err := egress.Compute(egress.Input{
		Controllers: []egress.ControllerEndpoint{{Host: "ctrl.example.com"}},
		Services: []egress.ServiceTarget{
			{Address: "10.20.0.0/16", Ports: []egress.PortRange{egress.Port(5432)}},
			{Address: "api.internal.example", Ports: []egress.PortRange{{From: 8000, To: 8100}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cloud.HostSpec{Name: "edge-a", RegistrationKey: Key, Tier: tier, Image: image, Egress: rules, Tags: map[string]string{"team": "platform"}}
}

// Driver is what the helpers need of a driver.
type Driver interface {
	Create(ctx context.Context, spec cloud.HostSpec) (cloud.Host, error)
	Read(ctx context.Context, id string) (cloud.Host, error)
	Delete(ctx context.Context, id string) error
}

// Create creates the host of spec, failing the test when that fails.
func Create(t testing.TB, d Driver, spec cloud.HostSpec) cloud.Host {
	t.Helper()
	h, err := d.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// CheckGone checks that the deleted host id reads as cloud.ErrNotFound and that deleting it
// again succeeds (a retried delete must not fail).
func CheckGone(t testing.TB, d Driver, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Read(ctx, id); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Read after delete: %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, id); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

// CheckAPIError checks that err is a *cloud.APIError with code whose message says each of want.
func CheckAPIError(t testing.TB, err error, code string, want ...string) {
	t.Helper()
	var apiErr *cloud.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != code {
		t.Fatalf("err = %v, want an APIError %s", err, code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// EgressDriver is a driver that updates a host's firewall in place.
type EgressDriver interface {
	Driver
	UpdateEgress(ctx context.Context, id string, rules []egress.Rule) error
	EgressDrift(ctx context.Context, id string, rules []egress.Rule) ([]string, error)
}

// ChangedEgress is Spec's allowlist after a service was added (10.30.0.5 port 8443) and one
// removed (api.internal.example).
func ChangedEgress(t testing.TB) []egress.Rule {
	t.Helper()
	rules, err := egress.Compute(egress.Input{
		Controllers: []egress.ControllerEndpoint{{Host: "ctrl.example.com"}},
		Services: []egress.ServiceTarget{
			{Address: "10.20.0.0/16", Ports: []egress.PortRange{egress.Port(5432)}},
			{Address: "10.30.0.5", Ports: []egress.PortRange{egress.Port(8443)}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// CheckEgressUpdate creates a host of spec, changes its allowlist to ChangedEgress in place
// and checks that the firewall is then exactly the new allowlist (no drift against it, drift
// against the old one) while the instance stays the same. It returns the host.
func CheckEgressUpdate(t testing.TB, d EgressDriver, spec cloud.HostSpec) cloud.Host {
	t.Helper()
	ctx := context.Background()
	h := Create(t, d, spec)
	if drift, err := d.EgressDrift(ctx, h.ID, spec.Egress); err != nil || len(drift) != 0 {
		t.Fatalf("drift of a new host = %q, %v; want none", drift, err)
	}
	changed := ChangedEgress(t)
	if err := d.UpdateEgress(ctx, h.ID, changed); err != nil {
		t.Fatal(err)
	}
	if drift, err := d.EgressDrift(ctx, h.ID, changed); err != nil || len(drift) != 0 {
		t.Fatalf("drift after the update = %q, %v; want none", drift, err)
	}
	drift, err := d.EgressDrift(ctx, h.ID, spec.Egress)
	if err != nil || len(drift) == 0 {
		t.Fatalf("drift against the old allowlist = %q, %v; want the changed rules", drift, err)
	}
	after, err := d.Read(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != h.ID || after.PrivateAddress != h.PrivateAddress || len(after.Drift) != 0 {
		t.Fatalf("host after the egress update = %+v, want %+v unchanged", after, h)
	}
	// A second update with the same rules changes nothing and succeeds.
	if err := d.UpdateEgress(ctx, h.ID, changed); err != nil {
		t.Fatalf("repeated update: %v", err)
	}
	return h
}

// CheckDriftRepaired checks that what widen did to the host's firewall out of band shows as
// drift naming each of want, and that UpdateEgress removes it.
func CheckDriftRepaired(t testing.TB, d EgressDriver, id string, rules []egress.Rule, widen func(), want ...string) {
	t.Helper()
	ctx := context.Background()
	widen()
	drift, err := d.EgressDrift(ctx, id, rules)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(drift, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("drift %q does not name %q", drift, w)
		}
	}
	if err := d.UpdateEgress(ctx, id, rules); err != nil {
		t.Fatal(err)
	}
	if drift, err := d.EgressDrift(ctx, id, rules); err != nil || len(drift) != 0 {
		t.Fatalf("drift after the repair = %q, %v; want none", drift, err)
	}
}

// TagDriver is a driver that retags a host in place.
type TagDriver interface {
	Driver
	UpdateTags(ctx context.Context, id string, tags map[string]string) error
}

// NewTags are the tags CheckTagUpdate gives the host: team changed, owner added (and the
// spec's other tags, none, gone).
var NewTags = map[string]string{"team": "edge", "owner": "netops"}

// CheckTagUpdate creates the host of spec, checks Read reports its tags, retags it with
// NewTags in place and checks Read reports those, on the same host id. It returns the host.
func CheckTagUpdate(t testing.TB, d TagDriver, spec cloud.HostSpec) cloud.Host {
	t.Helper()
	ctx := context.Background()
	h := Create(t, d, spec)
	if !maps.Equal(h.Tags, spec.Tags) {
		t.Fatalf("created host reads tags %v, want %v", h.Tags, spec.Tags)
	}
	if err := d.UpdateTags(ctx, h.ID, NewTags); err != nil {
		t.Fatal(err)
	}
	after, err := d.Read(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != h.ID || !maps.Equal(after.Tags, NewTags) {
		t.Fatalf("after UpdateTags the host is %s with tags %v, want %s with %v", after.ID, after.Tags, h.ID, NewTags)
	}
	return after
}
