// Package clouddrivertest holds what the tests of the cloud drivers (aws, gcp, azure) share: a
// host spec with a real egress allowlist and a registration key to look for in what a driver
// sends, and the checks every driver must pass alike.
package clouddrivertest

import (
	"context"
	"errors"
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
