package hub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/hub"
)

// enrolledAt returns a snapshot listing router a as (re-)enrolled at t.
func enrolledAt(t time.Time) hub.Snapshot {
	snap := snapshot(map[string]int{"a": 0})
	snap.Routers[0].EnrolledAt = t
	return snap
}

// TestSupersededRouterCertificate: a router certificate issued before the router's latest
// enrolment (the snapshot's EnrolledAt) is refused at link setup, and a link up with one is cut
// by the snapshot that records the new enrolment; a certificate of the latest enrolment (or of
// a router never re-enrolled) links and stays.
func TestSupersededRouterCertificate(t *testing.T) {
	// The test PKI issues certificates as of now: an enrolment a minute ahead supersedes them.
	later, earlier := time.Now().Add(time.Minute), time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		name    string
		snap    hub.Snapshot
		refused bool
	}{
		{"enrolled again since", enrolledAt(later), true},
		{"this enrolment's certificate", enrolledAt(earlier), false},
		{"no enrolment recorded", enrolledAt(time.Time{}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			e.hub.Update(tc.snap)
			err := e.try(api.KindRouter, "a")
			if (err != nil) != tc.refused {
				t.Fatalf("link with a certificate issued now: %v, want refused %v", err, tc.refused)
			}
		})
	}

	t.Run("cut when enrolled again", func(t *testing.T) {
		e := startRevocation(t)
		e.hub.Update(enrolledAt(earlier))
		if !e.linked("a") {
			t.Fatal("router a's link was cut by a snapshot recording its own enrolment")
		}
		e.hub.Update(enrolledAt(later))
		waitFor(t, "router a's superseded link cut", func() bool { return !e.linked("a") })
		if got := e.counter("ztna_hub_links_revoked_total", "kind", api.KindRouter); got != 1 {
			t.Errorf("ztna_hub_links_revoked_total{kind=router} = %v, want 1", got)
		}
		waitFor(t, "the cut logged with its reason", func() bool { return strings.Contains(e.log.String(), hub.ErrSuperseded.Error()) })
		// The identity's link is untouched.
		if closed(e.client, quiet) {
			t.Fatal("the identity's link was cut with the router's")
		}
	})
}
