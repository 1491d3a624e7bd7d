package processes_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// dialErr tries one dial and closes what it got.
func dialErr(c *client.Client, target string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, target)
	if err == nil {
		err = echoOnce(conn, []byte("ping"))
		conn.Close()
	}
	return err
}

// within polls cond every 10 ms and returns how long it took to hold, failing after limit.
func within(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	took := harness.WaitFor(t, 5*time.Second, what, cond)
	if took > limit {
		t.Errorf("%s took %v, want within %v", what, took, limit)
	}
	t.Logf("%s: %v", what, took.Round(time.Millisecond))
	return took
}

// TestPolicyGovernsListAndDial: an identity without a policy neither lists nor dials the
// service; creating the policy lets it in within a second; deleting it stops new dials within a
// second. The hub decides from its pushed snapshot, the controller is never asked per dial.
func TestPolicyGovernsListAndDial(t *testing.T) {
	s := newSite(t, stack.Echo, false)
	if svcs, err := s.client.Services(context.Background()); err != nil || len(svcs) != 0 {
		t.Fatalf("without a policy Services = %+v, %v; want nothing", svcs, err)
	}
	if err := dialErr(s.client, s.target); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("without a policy Dial: %v, want not authorized", err)
	}

	policy := s.allow(t)
	within(t, time.Second, "policy created → first successful dial", func() bool { return dialErr(s.client, s.target) == nil })
	if svcs, err := s.client.Services(context.Background()); err != nil || len(svcs) != 1 || svcs[0].Name != "db" {
		t.Fatalf("with the policy Services = %+v, %v", svcs, err)
	}

	if err := s.c.API.DeleteServicePolicy(context.Background(), policy); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "policy deleted → dials refused", func() bool {
		return errors.Is(dialErr(s.client, s.target), client.ErrNotAuthorized)
	})
	if svcs, err := s.client.Services(context.Background()); err != nil || len(svcs) != 0 {
		t.Fatalf("after deletion Services = %+v, %v; want nothing", svcs, err)
	}
	if got := s.c.Metric(`ztna_hub_dials_total{result="not authorized"}`); got < 2 {
		t.Errorf("hub counted %v refused dials, want at least 2", got)
	}
}

// TestOtherIdentitiesAndAddressesRefused: with the policy in place, an identity of another role
// is refused, and the allowed identity cannot use the overlay for any other address — not the
// service's own socket by IP, not the controller's edge port.
func TestOtherIdentitiesAndAddressesRefused(t *testing.T) {
	s := newSite(t, stack.Echo, true)
	if err := dialErr(s.client, s.target); err != nil {
		t.Fatal(err)
	}
	_, outsider := s.c.NewIdentity(t, "outsider", "guests")
	if err := dialErr(harness.Client(t, outsider), s.target); !errors.Is(err, client.ErrNotAuthorized) {
		t.Errorf("identity without the role: %v, want not authorized", err)
	}
	_, port, _ := net.SplitHostPort(s.target)
	edge := s.c.Env["ZTNA_ADDR"][len("https://"):]
	for _, target := range []string{net.JoinHostPort("127.0.0.1", port), edge, serviceName + ":22"} {
		if err := dialErr(s.client, target); !errors.Is(err, client.ErrNotAuthorized) {
			t.Errorf("dial %s: %v, want not authorized", target, err)
		}
	}
}
